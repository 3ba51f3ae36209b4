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
from dataclasses import dataclass, replace

import numpy as np

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


def is_duplicate(state: UserState, c: Contribution) -> bool:
    """Whether ``c`` was already applied to ``state``."""
    if c.source is not None and state.offsets.get(c.source.key, -1) >= c.source.offset:
        return True
    return c.event_id in state.recent_events


def apply_one(
    state: UserState,
    c: Contribution,
    *,
    tau_s: float,
    seen_max: int,
    recent_max: int,
    model_version: str,
) -> UserState:
    """The state after applying ``c`` (the caller checks :func:`is_duplicate` first)."""
    acc, ref = state.acc, state.ref_ts
    if c.embedding is not None:
        acc, ref = accumulate(state.acc, state.ref_ts, c.embedding, c.ts, c.weight, tau_s)
    else:
        ref = max(ref, c.ts) if state.acc is not None else ref
    seen = state.seen
    if c.item_id not in seen:
        seen = (*seen, c.item_id)[-seen_max:]
    offsets = state.offsets
    if c.source is not None:
        offsets = {**offsets, c.source.key: max(offsets.get(c.source.key, -1), c.source.offset)}
    return replace(
        state,
        acc=acc,
        ref_ts=ref,
        event_count=state.event_count + 1,
        model_version=model_version if c.embedding is not None else state.model_version,
        offsets=offsets,
        recent_events=(*state.recent_events, c.event_id)[-recent_max:],
        seen=seen,
    )


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
    """Apply a user's contributions in order.

    Returns:
        The final state, and per contribution ``(contribution, state after it, duplicate?)``:
        the state after each event is what that event's published list is computed from.
    """
    cur = state or UserState(user_id=user_id)
    steps: list[tuple[Contribution, UserState, bool]] = []
    for c in contributions:
        if is_duplicate(cur, c):
            steps.append((c, cur, True))
            continue
        cur = apply_one(
            cur,
            c,
            tau_s=tau_s,
            seen_max=seen_max,
            recent_max=recent_max,
            model_version=model_version,
        )
        steps.append((c, cur, False))
    return cur, steps
