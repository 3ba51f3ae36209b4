"""Pure functions that apply events to a user's state. No I/O; the worker and the in-process
evaluation both call these.

The state keeps ``S``, the un-normalised, time-decayed sum of weighted event embeddings, at a
reference time ``T`` (the latest event time applied)::

    T' = max(T, t)
    S' = exp(-(T' - T)/tau) * S  +  w * exp(-(T' - t)/tau) * e
    u  = S' / |S'|                      (the embedding used for retrieval)

For events in time order this is the issue's ``u <- normalise(exp(-dt/tau) u + w e)`` applied
to the un-normalised sum; keeping the sum makes the update commutative (a late or re-ordered
event lands exactly where its timestamp puts it), so the state depends only on the set of
events applied. Idempotency: an event is skipped when its offset is not above the highest
applied offset of its source partition, or its id is among the user's recent event ids.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from encoders.policy import event_weight as policy_weight
from recstream.settings import Settings
from schemas.events import ClickEvent, Event, ReviewEvent
from streams.state.base import SourcePos, UserState


@dataclass(frozen=True, slots=True)
class Contribution:
    """One event's effect on its user.

    Attributes:
        event_id: Unique event id (idempotency key).
        user_id: The user.
        item_id: Item the user touched (added to seen items).
        ts: Event time, epoch ms.
        embedding: Unit vector pulled into the user state (None: only counts and seen change,
            e.g. a click on an item the catalogue does not know yet).
        weight: Strength of the pull (type weight times the event's own weight).
        source: Kafka position (None for offline replay).
    """

    event_id: str
    user_id: str
    item_id: str
    ts: int
    embedding: np.ndarray | None
    weight: float
    source: SourcePos | None = None


def event_weight(event: Event, settings: Settings, rating_power: float) -> float:
    """How strongly an event pulls its user's state (:func:`encoders.policy.event_weight`, the one
    rule that training uses too).

    Args:
        event: The event.
        settings: Type weights (``weight_click``, ``weight_review``, ``weight_upload``).
        rating_power: The served model's exponent for star ratings carried as click weights
            (MovieLens replays); 0: the click's own weight multiplies ``weight_click``.
    """
    if isinstance(event, ClickEvent):
        kind, strength = "click", event.weight
    elif isinstance(event, ReviewEvent):
        kind, strength = "review", event.rating
    else:
        kind, strength = "upload", None
    return policy_weight(
        kind,
        strength,
        weight_click=settings.weight_click,
        weight_review=settings.weight_review,
        weight_upload=settings.weight_upload,
        rating_power=rating_power,
    )


def accumulate(
    acc: np.ndarray | None, ref_ts: int, e: np.ndarray, ts: int, weight: float, tau_s: float
) -> tuple[np.ndarray, int]:
    """Add ``weight * e`` observed at ``ts`` to the decayed sum ``acc`` held at ``ref_ts``.

    Returns:
        The new sum (float64) and its reference time ``max(ref_ts, ts)``.
    """
    e64 = np.asarray(e, dtype=np.float64)
    if acc is None:
        return weight * e64, ts
    new_ref = max(ref_ts, ts)
    tau_ms = tau_s * 1000.0
    decay_old = math.exp(-(new_ref - ref_ts) / tau_ms)
    decay_new = math.exp(-(new_ref - ts) / tau_ms)
    return decay_old * acc + (weight * decay_new) * e64, new_ref


class LiveUser:
    """A user's state as the worker holds it in memory: mutable, O(1) per applied event.

    The same rule as :func:`apply_contributions` (which is built on it): the decayed sum of
    :func:`accumulate`, the per-partition offset guard and the recent-event-id window for
    idempotency, and the bounded seen items. It also counts what changed since the state was
    last written (:meth:`snapshot`), so a write-behind store appends only the new ids.
    """

    __slots__ = (
        "acc",
        "event_count",
        "latest",
        "model_version",
        "offsets",
        "recent",
        "ref_ts",
        "seen",
        "seen_count",
        "seen_rows",
        "seen_rows_version",
        "unwritten_events",
        "unwritten_seen",
        "user_id",
    )

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.acc: np.ndarray | None = None
        self.ref_ts = 0
        self.event_count = 0
        self.model_version = ""
        self.offsets: dict[str, int] = {}
        self.recent: dict[str, None] = {}  # event ids, oldest first (insertion order)
        self.seen: dict[str, None] = {}  # item ids, oldest first
        self.seen_count = 0
        #: Retrieval-index rows of the seen items (maintained by the processor; None: rebuild).
        self.seen_rows: np.ndarray | None = None
        self.seen_rows_version = -1  # the index version the rows were built at
        self.unwritten_events = 0
        self.unwritten_seen = 0
        #: The latest list ``(payload, trigger event id, generated at)`` not yet written.
        self.latest: tuple[str, str, int] | None = None

    @classmethod
    def from_state(cls, state: UserState) -> LiveUser:
        """The live form of a stored state (nothing unwritten)."""
        u = cls(state.user_id)
        u.acc = None if state.acc is None else np.array(state.acc, dtype=np.float64)
        u.ref_ts = state.ref_ts
        u.event_count = state.event_count
        u.model_version = state.model_version
        u.offsets = dict(state.offsets)
        u.recent = dict.fromkeys(state.recent_events)
        u.seen = dict.fromkeys(state.seen)
        u.seen_count = max(state.seen_count, len(u.seen))
        return u

    def snapshot(self) -> UserState:
        """An immutable copy of the state."""
        return UserState(
            user_id=self.user_id,
            acc=None if self.acc is None else self.acc.copy(),
            ref_ts=self.ref_ts,
            event_count=self.event_count,
            model_version=self.model_version,
            offsets=dict(self.offsets),
            recent_events=tuple(self.recent),
            seen=tuple(self.seen),
            seen_count=self.seen_count,
        )

    def is_duplicate(self, c: Contribution) -> bool:
        """Whether ``c`` was already applied (offset guard, then the event-id window)."""
        if c.source is not None and self.offsets.get(c.source.key, -1) >= c.source.offset:
            return True
        return c.event_id in self.recent

    def apply(
        self, c: Contribution, *, tau_s: float, seen_max: int, recent_max: int, model_version: str
    ) -> bool:
        """Apply ``c`` unless it is a duplicate. Returns whether ``seen`` gained an item."""
        if c.embedding is not None:
            self.acc, self.ref_ts = accumulate(self.acc, self.ref_ts, c.embedding, c.ts, c.weight, tau_s)
            self.model_version = model_version
        elif self.acc is not None:
            self.ref_ts = max(self.ref_ts, c.ts)
        added = False
        if c.item_id not in self.seen:
            self.seen[c.item_id] = None
            self.seen_count += 1
            self.unwritten_seen += 1
            added = True
            if len(self.seen) > seen_max:
                del self.seen[next(iter(self.seen))]
                self.seen_rows = None  # the oldest left: rows must be rebuilt
        if c.source is not None:
            key = c.source.key
            if self.offsets.get(key, -1) < c.source.offset:
                self.offsets[key] = c.source.offset
        self.recent[c.event_id] = None
        if len(self.recent) > recent_max:
            del self.recent[next(iter(self.recent))]
        self.event_count += 1
        self.unwritten_events += 1
        return added

    @property
    def embedding(self) -> np.ndarray | None:
        """The L2-normalised user embedding (float32), None before the first embedded event."""
        if self.acc is None:
            return None
        norm = float(np.linalg.norm(self.acc))
        if norm == 0.0:
            return None
        return (self.acc / norm).astype(np.float32)


def is_duplicate(state: UserState, c: Contribution) -> bool:
    """Whether ``c`` was already applied to ``state``."""
    if c.source is not None and state.offsets.get(c.source.key, -1) >= c.source.offset:
        return True
    return c.event_id in state.recent_events


def apply_contributions(
    state: UserState | None,
    user_id: str,
    contributions: Sequence[Contribution],
    *,
    tau_s: float,
    seen_max: int,
    recent_max: int = 1000,
    model_version: str = "",
) -> tuple[UserState, list[tuple[Contribution, UserState, bool]]]:
    """Apply a user's contributions in order (the pure form of :class:`LiveUser`).

    Returns:
        The final state, and per contribution ``(contribution, state after it, duplicate?)``.
    """
    live = LiveUser.from_state(state) if state is not None else LiveUser(user_id)
    steps: list[tuple[Contribution, UserState, bool]] = []
    cur = state if state is not None else live.snapshot()  # unchanged while only duplicates
    for c in contributions:
        if live.is_duplicate(c):
            steps.append((c, cur, True))
            continue
        live.apply(c, tau_s=tau_s, seen_max=seen_max, recent_max=recent_max, model_version=model_version)
        cur = live.snapshot()
        steps.append((c, cur, False))
    return cur, steps
