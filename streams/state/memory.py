"""In-memory state store for the fast evaluation mode and unit tests (never in integration tests)."""

from __future__ import annotations

from collections.abc import Sequence

from streams.state.base import ItemRecord, StateStore, StoredList, UserState, UserWrite


class MemoryStateStore(StateStore):
    """Dict-backed :class:`StateStore` for one process, with the same fencing as Cassandra's."""

    def __init__(self) -> None:
        self.users: dict[str, UserState] = {}
        self.items: dict[str, ItemRecord] = {}
        self.lists: dict[str, StoredList] = {}
        self.writes = 0
        #: Writes ignored because a newer state (higher fence) was stored already.
        self.fenced = 0

    async def get_users(self, user_ids: Sequence[str]) -> dict[str, UserState]:
        return {u: self.users[u] for u in user_ids if u in self.users}

    async def write_users(self, writes: Sequence[UserWrite]) -> None:
        for w in writes:
            self.writes += 1
            old = self.users.get(w.state.user_id)
            if old is not None and old.event_count > w.fence:
                self.fenced += 1
                continue
            self.users[w.state.user_id] = w.state
            if w.latest is not None:
                self.lists[w.state.user_id] = w.latest

    async def put_items(self, items: Sequence[ItemRecord]) -> None:
        for it in items:
            self.items[it.item_id] = it

    async def load_items(self) -> list[ItemRecord]:
        return list(self.items.values())

    async def get_list(self, user_id: str) -> StoredList | None:
        return self.lists.get(user_id)

    async def close(self) -> None:
        return None
