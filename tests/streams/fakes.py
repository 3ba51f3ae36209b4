"""Fakes of the runtime's Kafka side for unit tests (the real one: the live worker tests)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from streams.state.memory import MemoryStateStore


@dataclass
class Msg:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    generation_id: int = 1


@dataclass
class Ev:
    message: Msg


class FakeKafka:
    """Deliveries resolve only when the test says so; commits record what the store held."""

    def __init__(self, store: MemoryStateStore) -> None:
        self.store = store
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        #: The partition asked for with each sent message (None: the key's).
        self.partitions: list[int | None] = []
        self.futures: list[asyncio.Future[None]] = []
        self.auto_deliver = True
        self.commits: list[tuple[dict[tuple[str, int], int], dict[str, int]]] = []
        self.seeks: list[tuple[tuple[str, int], int]] = []
        self.gen = 1

    async def send(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None) -> Any:
        self.sent.append((topic, key, value))
        self.partitions.append(partition)
        fut = asyncio.get_running_loop().create_future()
        if self.auto_deliver:
            fut.set_result(None)
        self.futures.append(fut)
        return fut

    def deliver_all(self) -> None:
        for f in self.futures:
            if not f.done():
                f.set_result(None)

    async def commit(self, positions: dict[tuple[str, int], int]) -> bool:
        counts = {u: s.event_count for u, s in self.store.users.items()}
        self.commits.append((dict(positions), counts))
        return True

    async def seek(self, tp: tuple[str, int], offset: int) -> None:
        self.seeks.append((tp, offset))

    def generation(self) -> int:
        return self.gen


def message(topic: str, offset: int, value: bytes, key: bytes | None, partition: int = 0, gen: int = 1) -> Ev:
    """One Faust-like event carrying a message."""
    return Ev(Msg(topic, partition, offset, key, value, gen))
