"""Partition-owned user state held in memory, written behind to the store.

Kafka keys are user ids and the input topics are co-partitioned, so while a worker holds input
partition ``p`` it is the only writer of the users hashed to ``p``. :class:`StateCache` keeps
those users' states in memory (:class:`streams.state.userstate.LiveUser`): a user is loaded from the
store on first touch (one read for all the new users of a batch, shared by concurrent agents),
updated in place by every event, and written back by :meth:`StateCache.flush`, which the
checkpoint calls before committing the input offsets that the written states cover
(:mod:`streams.checkpoint`). A partition's users are dropped when it is revoked, after a final
flush. Clean users beyond ``max_users`` are evicted, least recently used first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable

from recstream import metrics
from streams.errors import PartitionNotOwned
from streams.state.base import StateStore, StoredList, UserState, UserWrite
from streams.state.userstate import LiveUser

log = logging.getLogger(__name__)


class StateCache:
    """In-memory states of the owned partitions' users; see the module docstring.

    Args:
        store: Where states are loaded from and written to.
        max_users: Clean users kept at most (dirty users are never evicted).
    """

    def __init__(self, store: StateStore, max_users: int = 1_000_000) -> None:
        self.store = store
        self.max_users = max_users
        self._users: OrderedDict[str, LiveUser] = OrderedDict()
        self._partition: dict[str, int] = {}
        self._dirty: set[str] = set()
        self._loading: dict[str, asyncio.Future[None]] = {}
        #: Partitions whose users may be held (None: any, as offline where there are none).
        self.owned: set[int] | None = None

    def __len__(self) -> int:
        return len(self._users)

    def __contains__(self, user_id: str) -> bool:
        return user_id in self._users

    @property
    def dirty(self) -> int:
        """Users with changes not written yet."""
        return len(self._dirty)

    async def ensure(self, users: Iterable[tuple[str, int]]) -> None:
        """Make sure ``(user id, partition)`` users are in memory (loads the missing in one read)."""
        missing: dict[str, int] = {}
        waits: list[asyncio.Future[None]] = []
        owned = self.owned
        for user, partition in users:
            if owned is not None and partition not in owned:
                raise PartitionNotOwned(f"partition {partition} of user {user!r} is not owned here")
            if user in self._users:
                self._users.move_to_end(user)
                continue
            fut = self._loading.get(user)
            if fut is not None:
                waits.append(fut)
            elif user not in missing:
                missing[user] = partition
        if missing:
            loop = asyncio.get_running_loop()
            mine = {u: loop.create_future() for u in missing}
            self._loading.update(mine)
            try:
                t0 = time.perf_counter()
                states = await self.store.get_users(list(missing))
                metrics.stage("state_load").observe(time.perf_counter() - t0)
                for user, partition in missing.items():
                    if self.owned is not None and partition not in self.owned:
                        continue  # revoked while reading: the new owner has it
                    st = states.get(user)
                    self._users[user] = LiveUser.from_state(st) if st is not None else LiveUser(user)
                    self._partition[user] = partition
                for fut in mine.values():
                    fut.set_result(None)
            except BaseException as exc:
                for fut in mine.values():
                    fut.set_exception(exc)
                    fut.exception()  # retrieved: waiters re-raise it, nobody else must
                raise
            finally:
                for user in mine:
                    self._loading.pop(user, None)
        for fut in waits:
            await fut
        metrics.STATE_USERS.set(len(self._users))
        if owned is not None and any(u not in self._users for u, _ in missing.items()):
            raise PartitionNotOwned("a partition of this batch was revoked while its users were read")

    def snapshots(self) -> dict[str, UserState]:
        """Immutable copies of every held user's state (evaluation freezes them at the cut)."""
        return {u: live.snapshot() for u, live in self._users.items()}

    def get(self, user_id: str) -> LiveUser:
        """A user made present by :meth:`ensure`."""
        return self._users[user_id]

    def pending_list(self, user_id: str) -> str | None:
        """The user's newest list not yet written to the store (None: not held here, or written)."""
        u = self._users.get(user_id)
        return None if u is None or u.latest is None else u.latest[0]

    def changed(self, user: LiveUser, latest: StoredList | None = None) -> None:
        """Note that ``user`` changed (and its newest list) so the next flush writes it."""
        if latest is not None:
            user.latest = (latest.payload, latest.trigger_event_id, latest.generated_at)
        self._dirty.add(user.user_id)

    def _writes(self) -> tuple[list[UserWrite], list[tuple[LiveUser, int, int, tuple[str, str, int] | None]]]:
        writes: list[UserWrite] = []
        taken: list[tuple[LiveUser, int, int, tuple[str, str, int] | None]] = []
        for user_id in self._dirty:
            u = self._users.get(user_id)
            if u is None:
                continue
            lst = u.latest
            latest = None if lst is None else StoredList(u.user_id, lst[0], lst[1], lst[2])
            writes.append(UserWrite(u.snapshot(), u.unwritten_events, u.unwritten_seen, latest))
            taken.append((u, u.unwritten_events, u.unwritten_seen, lst))
        return writes, taken

    async def flush(self) -> int:
        """Write every changed user (fenced by its event count); returns the users written.

        Changes made while the write is in flight stay pending for the next flush. On failure
        nothing is forgotten: the same users are written again next time.
        """
        if not self._dirty:
            return 0
        writes, taken = self._writes()
        t0 = time.perf_counter()
        await self.store.write_users(writes)
        metrics.stage("state_flush").observe(time.perf_counter() - t0)
        for u, events, seen, lst in taken:
            u.unwritten_events -= events
            u.unwritten_seen -= seen
            if u.latest is lst:
                u.latest = None
            if u.unwritten_events == 0 and u.unwritten_seen == 0 and u.latest is None:
                self._dirty.discard(u.user_id)
        metrics.STATE_DIRTY.set(len(self._dirty))
        self._evict()
        return len(writes)

    def own(self, partitions: set[int]) -> None:
        """Hold exactly the users of ``partitions`` from now on (the others are dropped)."""
        if self.owned is not None:
            self.drop_partitions(self.owned - partitions)
        self.owned = set(partitions)

    def drop_partitions(self, partitions: set[int]) -> int:
        """Forget the users of ``partitions`` (revoked; flushed by the caller). Returns the count."""
        if self.owned is not None:
            self.owned -= partitions
        gone = [u for u, p in self._partition.items() if p in partitions]
        for user in gone:
            self._users.pop(user, None)
            self._partition.pop(user, None)
            self._dirty.discard(user)
        metrics.STATE_USERS.set(len(self._users))
        metrics.STATE_DIRTY.set(len(self._dirty))
        return len(gone)

    def _evict(self) -> None:
        excess = len(self._users) - self.max_users
        if excess <= 0:
            return
        for user in list(self._users):
            if excess <= 0:
                break
            if user not in self._dirty and user not in self._loading:
                del self._users[user]
                self._partition.pop(user, None)
                excess -= 1
        metrics.STATE_USERS.set(len(self._users))
