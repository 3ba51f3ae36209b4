"""In-memory state store for the fast evaluation mode and unit tests (never in integration tests)."""

from __future__ import annotations

from collections.abc import Sequence

from streams.state.base import ItemRecord, StateStore, StoredList, UserState


class MemoryStateStore(StateStore):
    """Dict-backed :class:`StateStore` for one process."""

    def __init__(self) -> None:
        self.users: dict[str, UserState] = {}
        self.items: dict[str, ItemRecord] = {}
        self.lists: dict[str, StoredList] = {}

    async def get_users(self, user_ids: Sequence[str]) -> dict[str, UserState]:
        return {u: self.users[u] for u in user_ids if u in self.users}

    async def put_users(self, states: Sequence[UserState]) -> None:
        for s in states:
            self.users[s.user_id] = s

    async def put_items(self, items: Sequence[ItemRecord]) -> None:
        for it in items:
            self.items[it.item_id] = it

    async def load_items(self) -> list[ItemRecord]:
        return list(self.items.values())

    async def put_lists(self, lists: Sequence[StoredList]) -> None:
        for rec in lists:
            self.lists[rec.user_id] = rec

    async def get_list(self, user_id: str) -> StoredList | None:
        return self.lists.get(user_id)

    async def close(self) -> None:
        return None
