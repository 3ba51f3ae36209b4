"""The read API: a user's current list, for services that cannot consume the whole topic.

``GET /v1/users/{user_id}/recommendations`` answers with the latest list of the user in the
``recs.updated`` format, byte for byte the document that was published (its ``seq`` tells a
client which of two lists is newer). Where it comes from:

1. this worker's memory, when it owns the user's partition and holds a list not yet written
   to Cassandra (write-behind);
2. Cassandra (``user_state_v2.list_payload``) read through, when it owns the user and the
   list is written;
3. otherwise Cassandra through a small cache of ``ttl_s`` (1 s by default), so a burst of
   reads for one user costs one query.

On the worker that owns the user the answer is the last published list; on another worker it
is at most ``commit_interval_s`` + ``ttl_s`` behind it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from streams.state.base import StateStore
from streams.state.cache import StateCache

#: The contract's id bounds (``$defs.id`` of the JSON Schemas).
MAX_ID_CHARS = 256


def user_id_problem(user_id: str) -> str | None:
    """Why ``user_id`` cannot be a user id of the contract, or None."""
    if not user_id:
        return "user_id is empty"
    if len(user_id) > MAX_ID_CHARS:
        return f"user_id is longer than {MAX_ID_CHARS} characters"
    return None


class ListReader:
    """Latest lists by user: owned in-memory lists first, then Cassandra through a TTL cache.

    Args:
        store: The state store (``get_list``).
        cache: The worker's partition-owned states (their unwritten lists).
        ttl_s: How long a list read from the store is reused.
        max_entries: Users cached at most (least recently read go first).
        clock: Monotonic clock (injectable for tests).
    """

    def __init__(
        self,
        store: StateStore,
        cache: StateCache,
        *,
        ttl_s: float = 1.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.cache = cache
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes | None]] = OrderedDict()

    async def latest(self, user_id: str) -> bytes | None:
        """The user's latest list document, or None when no list was ever stored for them.

        Raises:
            streams.errors.StateError: Cassandra did not answer.
        """
        pending = self.cache.pending_list(user_id)
        if pending is not None:
            return pending.encode()
        if user_id in self.cache:
            # Owned here, list written: the store has the newest, and a cached answer may be
            # older than it (read before the flush), so read through.
            return await self._read(user_id)
        now = self.clock()
        hit = self._entries.get(user_id)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        payload = await self._read(user_id)
        self._entries[user_id] = (now, payload)
        self._entries.move_to_end(user_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return payload

    async def _read(self, user_id: str) -> bytes | None:
        stored = await self.store.get_list(user_id)
        return None if stored is None else stored.payload.encode()
