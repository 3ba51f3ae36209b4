"""State records and the store interface every backend implements.

A user's state is the time-decayed sum of the embeddings of the events applied to it, kept
un-normalised (``acc``, float64) at a reference time ``ref_ts``; the embedding used for
retrieval is its normalisation. Keeping the sum (rather than re-normalising after every event)
makes the update commutative: the state depends on the *set* of applied events, not on the
order in which a user's click, upload and review topics happen to be interleaved, so replays,
rebalances and several workers converge to the same state. Idempotency comes from two guards:
the highest applied offset per source partition (exact for Kafka redelivery) and the ids of the
user's most recent events (for producers that replay the same event ids).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from recstream.resources import AsyncResource


@dataclass(frozen=True, slots=True)
class SourcePos:
    """Where an event was read: topic, partition, offset."""

    topic: str
    partition: int
    offset: int

    @property
    def key(self) -> str:
        """``topic:partition``: the key of the per-partition offset guard."""
        return f"{self.topic}:{self.partition}"


@dataclass(frozen=True, slots=True)
class UserState:
    """One user's state (immutable; updates build a new one).

    Attributes:
        user_id: The user.
        acc: Un-normalised decayed sum (float64) at ``ref_ts``; None before the first event.
        ref_ts: Reference time of ``acc`` (epoch ms): the latest event time applied.
        event_count: Events applied.
        model_version: Model version of the embeddings last applied.
        offsets: Highest applied offset per ``topic:partition``.
        recent_events: Ids of the newest applied events (bounded), oldest first.
        seen: Items the user interacted with (bounded, newest last).
        seen_count: Items ever added to ``seen`` (the ordinal of its newest entry).
    """

    user_id: str
    acc: np.ndarray | None = None
    ref_ts: int = 0
    event_count: int = 0
    model_version: str = ""
    offsets: dict[str, int] = field(default_factory=dict)
    recent_events: tuple[str, ...] = ()
    seen: tuple[str, ...] = ()
    seen_count: int = 0

    @property
    def embedding(self) -> np.ndarray | None:
        """The L2-normalised user embedding (float32), None for a new user."""
        if self.acc is None:
            return None
        norm = float(np.linalg.norm(self.acc))
        if norm == 0.0:
            return None
        return (self.acc / norm).astype(np.float32)


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """A catalogue item: its embedding (float32, unit norm) and where it came from."""

    item_id: str
    embedding: np.ndarray
    modalities: frozenset[str]
    model_version: str
    title: str = ""
    created_ts: int = 0


@dataclass(frozen=True, slots=True)
class StoredList:
    """The latest list published for a user (JSON payload as published)."""

    user_id: str
    payload: str
    trigger_event_id: str
    generated_at: int


@dataclass(frozen=True, slots=True)
class UserWrite:
    """One user's changes since its last write (see :meth:`StateStore.write_users`).

    Attributes:
        state: The whole state after the changes.
        new_events: How many of ``state.recent_events`` (the newest) were applied since the last
            write; a store keeping the window as appended rows writes only those.
        new_seen: Likewise for ``state.seen``.
        latest: The user's latest list, when it changed.
    """

    state: UserState
    new_events: int
    new_seen: int
    latest: StoredList | None = None

    @classmethod
    def whole(cls, state: UserState, latest: StoredList | None = None) -> UserWrite:
        """A write of the whole state (every id of its windows), e.g. a user's first write."""
        return cls(state, len(state.recent_events), len(state.seen), latest)

    @property
    def fence(self) -> int:
        """The write's fencing token: the user's applied-event count.

        It grows with every event applied to the user, whoever applies it, so a store keeps
        the write with the higher token: a worker that lost the user's partition (a long
        pause) cannot overwrite the newer state of the partition's new owner with its older
        one. Equal tokens mean the same set of events.
        """
        return self.state.event_count


class StateStore(AsyncResource):
    """Async access to user state, items and latest lists. Use as ``async with store:``."""

    @abstractmethod
    async def get_users(self, user_ids: Sequence[str]) -> dict[str, UserState]:
        """States of the given users; unknown users are absent from the result."""

    @abstractmethod
    async def write_users(self, writes: Sequence[UserWrite]) -> None:
        """Write users' changes, each atomically, fenced by :attr:`UserWrite.fence`.

        A write whose fence is below the stored one for the same user has no effect.
        """

    @abstractmethod
    async def put_items(self, items: Sequence[ItemRecord]) -> None:
        """Insert or replace catalogue items."""

    @abstractmethod
    async def load_items(self) -> list[ItemRecord]:
        """Every catalogue item (bootstrap of the retrieval index)."""

    @abstractmethod
    async def get_list(self, user_id: str) -> StoredList | None:
        """The latest list of a user, if any."""

    @property
    def statements(self) -> int:
        """Statements (requests) sent to the database so far (0 for stores without one)."""
        return 0
