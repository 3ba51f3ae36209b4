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
    """

    user_id: str
    acc: np.ndarray | None = None
    ref_ts: int = 0
    event_count: int = 0
    model_version: str = ""
    offsets: dict[str, int] = field(default_factory=dict)
    recent_events: tuple[str, ...] = ()
    seen: tuple[str, ...] = ()

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


class StateStore(AsyncResource):
    """Async access to user state, items and latest lists. Use as ``async with store:``."""

    @abstractmethod
    async def get_users(self, user_ids: Sequence[str]) -> dict[str, UserState]:
        """States of the given users; unknown users are absent from the result."""

    @abstractmethod
    async def put_users(self, states: Sequence[UserState]) -> None:
        """Write whole user states (each write is atomic per user)."""

    @abstractmethod
    async def put_items(self, items: Sequence[ItemRecord]) -> None:
        """Insert or replace catalogue items."""

    @abstractmethod
    async def load_items(self) -> list[ItemRecord]:
        """Every catalogue item (bootstrap of the retrieval index)."""

    @abstractmethod
    async def put_lists(self, lists: Sequence[StoredList]) -> None:
        """Store the latest list of each user."""

    @abstractmethod
    async def get_list(self, user_id: str) -> StoredList | None:
        """The latest list of a user, if any."""
