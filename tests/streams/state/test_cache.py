"""The partition-owned state cache: loads once, writes behind, fences, drops on revocation."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from streams.errors import PartitionNotOwned, StateError
from streams.state.base import SourcePos, StoredList, UserState, UserWrite
from streams.state.cache import StateCache
from streams.state.memory import MemoryStateStore
from streams.state.userstate import Contribution


def _c(n: int, user: str = "u", partition: int = 0) -> Contribution:
    e = np.zeros(4)
    e[n % 4] = 1.0
    return Contribution(f"e{n}", user, f"i{n}", 1_000 + n, e, 1.0, SourcePos("t", partition, n))


def _apply(cache: StateCache, user: str, n: int) -> None:
    u = cache.get(user)
    u.apply(_c(n, user), tau_s=60.0, seen_max=100, recent_max=100, model_version="m")
    cache.changed(u, StoredList(user, f"list{n}", f"e{n}", n))


class CountingStore(MemoryStateStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.fail_writes = False

    async def get_users(self, user_ids):  # type: ignore[no-untyped-def]
        self.reads += 1
        await asyncio.sleep(0.01)
        return await super().get_users(user_ids)

    async def write_users(self, writes):  # type: ignore[no-untyped-def]
        if self.fail_writes:
            raise StateError("cassandra down")
        await super().write_users(writes)


async def test_users_are_read_once_even_by_concurrent_batches() -> None:
    store = CountingStore()
    store.users["a"] = UserState("a", event_count=7)
    cache = StateCache(store)
    await asyncio.gather(cache.ensure([("a", 0), ("b", 0)]), cache.ensure([("a", 0), ("b", 0)]))
    assert store.reads == 1
    assert cache.get("a").event_count == 7 and cache.get("b").event_count == 0


async def test_flush_writes_changes_once_and_keeps_what_changed_during_a_failed_write() -> None:
    store = CountingStore()
    cache = StateCache(store)
    await cache.ensure([("u", 0)])
    _apply(cache, "u", 1)
    _apply(cache, "u", 2)
    assert await cache.flush() == 1
    assert store.users["u"].event_count == 2 and store.lists["u"].trigger_event_id == "e2"
    assert cache.dirty == 0 and await cache.flush() == 0
    store.fail_writes = True
    _apply(cache, "u", 3)
    with pytest.raises(StateError):
        await cache.flush()
    assert cache.dirty == 1 and store.users["u"].event_count == 2
    store.fail_writes = False
    assert await cache.flush() == 1
    assert store.users["u"].event_count == 3 and store.users["u"].recent_events[-1] == "e3"


async def test_a_stale_owner_cannot_overwrite_a_newer_state() -> None:
    store = MemoryStateStore()
    old_owner, new_owner = StateCache(store), StateCache(store)
    await old_owner.ensure([("u", 0)])
    _apply(old_owner, "u", 1)
    await old_owner.flush()
    # The partition moves; the new owner reads the state and applies two more events.
    await new_owner.ensure([("u", 0)])
    _apply(new_owner, "u", 2)
    _apply(new_owner, "u", 3)
    await new_owner.flush()
    # The paused old owner wakes up with one more event of its own and flushes it.
    _apply(old_owner, "u", 2)
    await old_owner.flush()
    assert store.users["u"].event_count == 3 and store.fenced == 1


async def test_revoked_partitions_are_dropped_and_refused() -> None:
    store = MemoryStateStore()
    cache = StateCache(store)
    cache.own({0, 1})
    await cache.ensure([("a", 0), ("b", 1)])
    _apply(cache, "a", 1)
    await cache.flush()
    cache.own({1})
    assert "a" not in cache and "b" in cache
    with pytest.raises(PartitionNotOwned):
        await cache.ensure([("a", 0)])


async def test_clean_users_are_evicted_beyond_the_bound_dirty_ones_never() -> None:
    store = MemoryStateStore()
    cache = StateCache(store, max_users=2)
    await cache.ensure([("a", 0), ("b", 0), ("c", 0)])
    _apply(cache, "c", 1)
    await cache.flush()  # writes c; evicts the least recently used clean users down to 2
    assert len(cache) == 2 and "c" in cache


def test_whole_write_covers_every_id() -> None:
    st = UserState("u", event_count=3, recent_events=("a", "b", "c"), seen=("x",), seen_count=1)
    w = UserWrite.whole(st)
    assert (w.new_events, w.new_seen, w.fence) == (3, 1, 3)
