"""Pure measurements of a fault run: lost and double-applied events, lists, state, recovery.

Nothing here does I/O; ``tests/chaos/test_accounting.py`` tests each function directly.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

#: How many event ids a user state keeps (``apply_contributions``' default ``recent_max``).
RECENT_MAX = 1000


@dataclass(frozen=True, slots=True)
class UserRow:
    """The parts of a stored user state the checks compare."""

    acc: np.ndarray | None
    event_count: int
    recent_events: tuple[str, ...]
    seen: tuple[str, ...] = ()
    ref_ts: int = 0

    @property
    def unit(self) -> np.ndarray | None:
        """The normalised user embedding (None before the first embedded event)."""
        if self.acc is None:
            return None
        norm = float(np.linalg.norm(self.acc))
        return None if norm == 0.0 else self.acc / norm


@dataclass(frozen=True, slots=True)
class EventAccount:
    """Events expected in the state vs what it records.

    Attributes:
        lost: Expected events the state never applied.
        duplicated: Applications beyond one per event (an event applied twice counts once).
        unexpected: Applied event ids nobody sent.
        lost_ids: Some of the lost ids (at most 20), for the failure message.
    """

    lost: int
    duplicated: int
    unexpected: int
    lost_ids: tuple[str, ...] = ()


def account_events(
    expected: Mapping[str, Iterable[str]], states: Mapping[str, UserRow], recent_max: int = RECENT_MAX
) -> EventAccount:
    """Compare the event ids sent per user with the states in Cassandra.

    A user whose ``event_count`` fits in ``recent_events`` is checked id by id; beyond that
    window (the catalogue user of a MovieLens replay uploads thousands of items) the count
    decides, and the embedding comparison with a clean run catches a double application.
    """
    lost = dup = unexpected = 0
    lost_ids: list[str] = []
    for user, ids in expected.items():
        want = set(ids)
        row = states.get(user)
        if row is None:
            lost += len(want)
            lost_ids += sorted(want)[:5]
            continue
        recent = set(row.recent_events)
        repeated = len(row.recent_events) - len(recent)
        unexpected += len(recent - want)
        if row.event_count <= recent_max:
            missing = want - recent
            lost += len(missing)
            lost_ids += sorted(missing)[:5]
            dup += repeated + max(0, row.event_count - len(row.recent_events))
        else:
            lost += max(0, len(want) - row.event_count)
            dup += max(0, row.event_count - len(want)) + repeated
    unexpected += sum(len(r.recent_events) for u, r in states.items() if u not in expected)
    return EventAccount(lost, dup, unexpected, tuple(lost_ids[:20]))


@dataclass(frozen=True, slots=True)
class ListAccount:
    """Lists read from ``recs.updated`` per trigger event.

    Attributes:
        missing: Events that never got a list.
        duplicate_lists: Extra lists for an event (re-published after a redelivery).
        unexpected: Lists naming an event nobody sent.
    """

    missing: int
    duplicate_lists: int
    unexpected: int


def account_lists(triggers: Iterable[str], expected_ids: Iterable[str]) -> ListAccount:
    """Count lists per ``trigger_event_id`` against the ids of the good events sent."""
    want = set(expected_ids)
    counts = Counter(triggers)
    return ListAccount(
        missing=len(want - set(counts)),
        duplicate_lists=sum(n - 1 for t, n in counts.items() if t in want),
        unexpected=sum(n for t, n in counts.items() if t not in want),
    )


@dataclass(frozen=True, slots=True)
class StateDiff:
    """A run's user states against a clean run of the same events.

    Attributes:
        users_missing: Users only the clean run has.
        users_extra: Users only this run has.
        count_mismatch: Users whose applied-event count differs.
        ids_mismatch: Users whose recent event-id set differs.
        seen_mismatch: Users whose seen-item set differs.
        max_embedding_dev: Largest absolute difference of normalised embeddings.
    """

    users_missing: int
    users_extra: int
    count_mismatch: int
    ids_mismatch: int
    seen_mismatch: int
    max_embedding_dev: float

    def equal(self, atol: float = 1e-6) -> bool:
        """Same users, counts, ids and seen items; embeddings within ``atol``."""
        return (
            not (
                self.users_missing
                or self.users_extra
                or self.count_mismatch
                or self.ids_mismatch
                or self.seen_mismatch
            )
            and self.max_embedding_dev <= atol
        )


def compare_states(clean: Mapping[str, UserRow], run: Mapping[str, UserRow]) -> StateDiff:
    """Differences of ``run`` from ``clean`` (see :class:`StateDiff`)."""
    common = set(clean) & set(run)
    dev = 0.0
    for user in common:
        a, b = clean[user].unit, run[user].unit
        if (a is None) != (b is None):
            dev = max(dev, 1.0)
        elif a is not None and b is not None:
            dev = max(dev, float(np.max(np.abs(a - b))))
    return StateDiff(
        users_missing=len(set(clean) - set(run)),
        users_extra=len(set(run) - set(clean)),
        count_mismatch=sum(clean[u].event_count != run[u].event_count for u in common),
        ids_mismatch=sum(set(clean[u].recent_events) != set(run[u].recent_events) for u in common),
        seen_mismatch=sum(set(clean[u].seen) != set(run[u].seen) for u in common),
        max_embedding_dev=dev,
    )


@dataclass(frozen=True, slots=True)
class Recovery:
    """How fast the pipeline caught up after a fault ended (seconds, None if never).

    Attributes:
        first_list_s: Fault end to the first list published after it.
        backlog_drained_s: Fault end to the last list of the events sent before the fault
            ended (the lag the fault built up is back to zero).
    """

    first_list_s: float | None
    backlog_drained_s: float | None


def recovery_times(
    fault_end_s: float, sent_at: Mapping[str, float], first_listed_at: Mapping[str, float]
) -> Recovery:
    """Recovery from send times and first-list times per event id (epoch seconds)."""
    after = [t for t in first_listed_at.values() if t >= fault_end_s]
    backlog = [eid for eid, t in sent_at.items() if t <= fault_end_s]
    drained: float | None = None
    if backlog and all(eid in first_listed_at for eid in backlog):
        drained = max(0.0, max(first_listed_at[eid] for eid in backlog) - fault_end_s)
    return Recovery(min(after) - fault_end_s if after else None, drained)


def first_list_times(records: Iterable[tuple[bytes, int]]) -> dict[str, float]:
    """Earliest publish time (Kafka timestamp, seconds) per ``trigger_event_id``."""
    out: dict[str, float] = {}
    for value, ts_ms in records:
        trigger = json.loads(value)["trigger_event_id"]
        t = ts_ms / 1000.0
        if trigger not in out or t < out[trigger]:
            out[trigger] = t
    return out
