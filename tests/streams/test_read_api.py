"""The read API's sources (pure, memory store): owned unwritten list, owned written, others cached.

The live check against a worker and Cassandra is in tests/streams/test_read_api_live.py.
"""

from __future__ import annotations

import asyncio

from streams.state.base import StoredList
from streams.state.cache import StateCache
from streams.state.memory import MemoryStateStore
from streams.web.recommendations import MAX_ID_CHARS, ListReader, user_id_problem


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _doc(user: str, n: int) -> str:
    return f'{{"user_id":"{user}","items":[],"trigger_event_id":"e{n}"}}'


def test_ids_are_checked_against_the_contract_bounds() -> None:
    assert user_id_problem("u1") is None and user_id_problem("a/b c") is None
    assert user_id_problem("") is not None
    assert user_id_problem("x" * MAX_ID_CHARS) is None
    assert user_id_problem("x" * (MAX_ID_CHARS + 1)) is not None


def test_an_owned_user_gets_the_newest_list_before_and_after_the_flush() -> None:
    async def run() -> None:
        store = MemoryStateStore()
        cache = StateCache(store)
        cache.own({0})
        reader = ListReader(store, cache, clock=Clock())
        await cache.ensure([("ann", 0)])
        assert await reader.latest("ann") is None  # nothing yet: 404
        user = cache.get("ann")
        cache.changed(user, StoredList("ann", _doc("ann", 1), "e1", 1))
        assert await reader.latest("ann") == _doc("ann", 1).encode()  # unwritten, from memory
        await cache.flush()
        assert store.lists["ann"].payload == _doc("ann", 1)
        cache.changed(user, StoredList("ann", _doc("ann", 2), "e2", 2))
        assert await reader.latest("ann") == _doc("ann", 2).encode()
        await cache.flush()
        # Written: read through the store, never a cached older answer.
        assert await reader.latest("ann") == _doc("ann", 2).encode()

    asyncio.run(run())


def test_users_of_other_workers_are_read_from_the_store_through_a_short_cache() -> None:
    async def run() -> None:
        store = MemoryStateStore()
        cache = StateCache(store)
        cache.own({0})
        clock = Clock()
        reader = ListReader(store, cache, ttl_s=1.0, max_entries=2, clock=clock)
        store.lists["bob"] = StoredList("bob", _doc("bob", 1), "e1", 1)
        assert await reader.latest("bob") == _doc("bob", 1).encode()
        store.lists["bob"] = StoredList("bob", _doc("bob", 2), "e2", 2)  # another worker wrote
        clock.t = 0.5
        assert await reader.latest("bob") == _doc("bob", 1).encode()  # within the TTL
        clock.t = 1.01
        assert await reader.latest("bob") == _doc("bob", 2).encode()
        for user in ("c1", "c2", "c3"):
            await reader.latest(user)
        assert len(reader._entries) == 2  # bounded

    asyncio.run(run())
