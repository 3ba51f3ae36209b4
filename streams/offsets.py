"""Which input offsets may be committed: the worker's side of the commit protocol.

The worker commits its input offsets itself, never through Faust's acknowledgements (see
:mod:`streams.checkpoint`). :class:`OffsetTracker` is the pure bookkeeping behind that: per
input partition it knows the position the partition was assigned at (its committed offset),
every offset handed to the worker since, and which of them are *done* (applied to the in-memory
state and their list delivered to Kafka). The committable position of a partition is the lowest
offset that was delivered but is not done yet, or, when all are done, one past the highest
delivered offset: an offset is never committed ahead of an event that is not finished.

It also guards against the consumer layer skipping messages. A message whose offset is above
the next expected one means either that messages were not delivered (a client that drops
prefetched records across a rebalance, for example) or that the offsets in between hold no
record (transaction markers, compaction). Such a message is *not* processed: applying it would
move the user's per-partition offset guard past the missing ones, which would then count as
duplicates forever. The partition enters *repair*: its messages are dropped until the runtime
has asked the broker what lies in the hole (:class:`streams.checkpoint.HoleProbe`) and sought
back, to the hole's start if records are there, past it if not (:meth:`OffsetTracker.resolve`).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from enum import Enum

#: An input partition: ``(topic, partition)`` (Faust's ``TP`` named tuple is one).
TP = tuple[str, int]


class Admit(Enum):
    """What to do with a delivered message (see :meth:`OffsetTracker.admit`)."""

    #: The next message of its partition: process it.
    NEXT = "next"
    #: Delivered before (a redelivery after a seek): skip it, its effects are already taken.
    SEEN = "seen"
    #: Offsets below it were not delivered: drop it; the partition is in repair (``hole``).
    GAP = "gap"
    #: Its partition is not assigned to this worker (a batch that outlived a rebalance).
    NOT_OWNED = "not_owned"


@dataclass
class _Partition:
    """Bookkeeping of one assigned input partition."""

    #: Next offset expected from the consumer (one past the highest taken).
    expected: int
    #: Offsets taken but not done yet, ascending.
    pending: list[int] = field(default_factory=list)
    #: Offset last committed (or the assigned position).
    committed: int = 0
    #: While repairing a hole: ``(expected, first offset seen above it)``.
    hole: tuple[int, int] | None = None
    #: Holes found empty on the broker and skipped.
    empty_holes: int = 0


class OffsetTracker:
    """Per-partition positions of taken and done offsets; see the module docstring."""

    def __init__(self) -> None:
        self._parts: dict[TP, _Partition] = {}

    # --- ownership -----------------------------------------------------------------------

    def assign(self, tp: TP, position: int) -> None:
        """Start tracking ``tp`` at ``position`` (its committed offset, or the log start)."""
        self._parts[tp] = _Partition(expected=position, committed=position)

    def revoke(self, tp: TP) -> None:
        """Stop tracking ``tp`` (it moved to another worker)."""
        self._parts.pop(tp, None)

    def owns(self, tp: TP) -> bool:
        """Whether ``tp`` is assigned (and initialised) here."""
        return tp in self._parts

    @property
    def partitions(self) -> list[TP]:
        """The tracked partitions."""
        return list(self._parts)

    # --- delivery --------------------------------------------------------------------------

    def admit(self, tp: TP, offset: int) -> Admit:
        """Classify a delivered message and, for :attr:`Admit.NEXT`, take it (now pending)."""
        p = self._parts.get(tp)
        if p is None:
            return Admit.NOT_OWNED
        if offset < p.expected:
            return Admit.SEEN
        if offset > p.expected:
            if p.hole is None:
                p.hole = (p.expected, offset)
            return Admit.GAP
        p.hole = None
        p.pending.append(offset)
        p.expected = offset + 1
        return Admit.NEXT

    def expected(self, tp: TP) -> int | None:
        """The next offset ``tp`` should deliver (one past the highest taken); None if not owned."""
        p = self._parts.get(tp)
        return None if p is None else p.expected

    def hole(self, tp: TP) -> tuple[int, int] | None:
        """``(expected, first offset seen above it)`` while ``tp`` is in repair, else None."""
        p = self._parts.get(tp)
        return None if p is None else p.hole

    def resolve(self, tp: TP, *, records_in_hole: bool) -> int | None:
        """Settle the hole of ``tp``; returns the offset to seek the consumer to.

        Args:
            records_in_hole: Whether the broker holds records between the expected offset and
                the first one delivered: then they were skipped by the consumer and are read
                again; otherwise the hole is empty and the partition continues after it.
        """
        p = self._parts.get(tp)
        if p is None or p.hole is None:
            return None
        start, seen = p.hole
        if not records_in_hole:
            p.empty_holes += 1
            p.expected = seen
        p.hole = None
        return start if records_in_hole else seen

    def done(self, tp: TP, offsets: list[int]) -> None:
        """Mark taken offsets of ``tp`` as finished (state applied, list delivered)."""
        p = self._parts.get(tp)
        if p is None:
            return
        pending = p.pending
        for off in offsets:
            i = bisect.bisect_left(pending, off)
            if i < len(pending) and pending[i] == off:
                del pending[i]

    def release(self, tp: TP, offsets: list[int]) -> None:
        """Give back taken offsets that were not processed (re-read from the lowest of them).

        Used when a batch cannot be finished here (for example its partition is being revoked
        while a dependency is down): the partition is rewound so nothing is committed past them.
        """
        p = self._parts.get(tp)
        if p is None or not offsets:
            return
        low = min(offsets)
        p.pending = [o for o in p.pending if o < low]
        p.expected = min(p.expected, low)

    # --- commits ---------------------------------------------------------------------------

    def position(self, tp: TP) -> int | None:
        """The committable position of ``tp``: every offset below it is done."""
        p = self._parts.get(tp)
        if p is None:
            return None
        return p.pending[0] if p.pending else p.expected

    def committable(self) -> dict[TP, int]:
        """Positions that moved since the last :meth:`committed` call, per partition."""
        out: dict[TP, int] = {}
        for tp, p in self._parts.items():
            pos = p.pending[0] if p.pending else p.expected
            if pos > p.committed:
                out[tp] = pos
        return out

    def committed(self, positions: dict[TP, int]) -> None:
        """Record that ``positions`` were committed to Kafka."""
        for tp, pos in positions.items():
            p = self._parts.get(tp)
            if p is not None and pos > p.committed:
                p.committed = pos

    def pending_count(self) -> int:
        """Offsets taken and not done, over all partitions."""
        return sum(len(p.pending) for p in self._parts.values())

    def empty_holes(self, tp: TP) -> int:
        """Holes of ``tp`` that held no record and were skipped."""
        p = self._parts.get(tp)
        return 0 if p is None else p.empty_holes
