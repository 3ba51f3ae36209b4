"""Messages the consumer layer did not deliver: found and read again, never processed past.

Faust drops messages it already fetched when a rebalance suspends its flow (it clears the
agents' buffers) and can resume a partition past them. Two shapes follow, both repaired here:

* **A hole.** A later message of the partition arrives: :class:`streams.offsets.OffsetTracker`
  sees an offset above the expected one and drops it (``Admit.GAP``). :meth:`PartitionRepair.gap`
  asks the broker what lies in the hole and seeks back to it, or past it when it is empty.
* **A lost tail.** No later message arrives (the skipped messages were the partition's last):
  nothing ever shows the hole, and the events would wait for the next rebalance. Every few
  seconds :meth:`PartitionRepair.reread_stalled` compares each owned partition's expected
  offset with the log end: a partition behind its log end that delivered nothing for
  :data:`STALL_S` is read again from the expected offset. Silence only counts while the
  partition's agent is idle (an agent busy with a batch, a click waiting for its item or a
  dependency retried, delivers nothing by design) and while the whole worker is quiet: under
  load Faust can starve one partition for seconds while it delivers others, which is not a
  lost tail. A false alarm costs a re-read of messages the tracker then skips as already seen;
  it never skips one.

The seek itself runs on the consumer's own thread (see ``FaustKafka.seek``): Faust's ``seek``
touches the aiokafka consumer from the event loop's thread, and a seek landing while the
consumer thread collects fetched records crashed aiokafka's fetcher (KeyError on the sought
partition; found by the 100,000-message chaos test).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from recstream import metrics
from streams.checkpoint import OffsetsReader
from streams.offsets import TP, OffsetTracker

log = logging.getLogger("recstream.worker")

#: A partition behind its log end that delivered nothing for this long is read again.
STALL_S = 5.0

SeekFn = Callable[[TP, int], Awaitable[None]]


class PartitionRepair:
    """Repairs of holes and lost tails of the owned input partitions (see the module docstring).

    Args:
        tracker: The runtime's offset bookkeeping.
        seek: Makes the consumer read a partition again from an offset.
        offsets: Broker-side offsets (what a hole holds); None in unit tests: holes are taken
            to hold records.
        clock: Monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        tracker: OffsetTracker,
        seek: SeekFn,
        offsets: OffsetsReader | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tracker = tracker
        self._seek = seek
        self._offsets = offsets
        self._clock = clock
        self._tasks: dict[TP, asyncio.Task[None]] = {}
        self._heard: dict[TP, float] = {}  # last delivery (or assignment, or re-read) per partition
        self._busy: dict[str, int] = {}  # topic -> batches in flight
        self._last_any = clock()  # last delivery on any partition

    def heard(self, tp: TP) -> None:
        """A message of ``tp`` was delivered (whatever the tracker made of it)."""
        self._heard[tp] = self._last_any = self._clock()

    def busy(self, topic: str, busy: bool) -> None:
        """An agent of ``topic`` starts (True) or ends (False) a batch: its silence is not a stall."""
        self._busy[topic] = self._busy.get(topic, 0) + (1 if busy else -1)
        if not busy:  # silence counts again from now
            now = self._clock()
            for tp in self.tracker.partitions:
                if tp[0] == topic:
                    self._heard[tp] = now

    def gap(self, tp: TP) -> None:
        """The tracker found a hole in ``tp``: resolve it in the background (once at a time)."""
        if tp not in self._tasks:
            self._tasks[tp] = asyncio.create_task(self._resolve(tp))

    async def _resolve(self, tp: TP) -> None:
        try:
            hole = self.tracker.hole(tp)
            if hole is None:
                return
            start, seen = hole
            records = True if self._offsets is None else await self._offsets.records_in(tp, start, seen)
            target = self.tracker.resolve(tp, records_in_hole=records)
            if target is None:
                return
            metrics.OFFSET_HOLES.labels(resolution="reread" if records else "empty").inc()
            log.warning(
                "offsets %d..%d of %s:%d were not delivered (%s); reading from %d",
                start,
                seen - 1,
                tp[0],
                tp[1],
                "records there: skipped by the consumer" if records else "no records there",
                target,
            )
            await self._seek(tp, target)
            self.heard(tp)
        except Exception:
            log.exception("repair of %s:%d failed; it is retried at the next hole", *tp)
        finally:
            self._tasks.pop(tp, None)

    async def reread_stalled(self, log_ends: Mapping[TP, int]) -> list[TP]:
        """Read again every owned partition that is behind ``log_ends`` and silent (see above).

        Returns the partitions sought back.
        """
        now = self._clock()
        out: list[TP] = []
        if now - self._last_any < STALL_S:  # the worker is receiving: not a lost tail
            return out
        for tp, end in log_ends.items():
            expected = self.tracker.expected(tp)
            if expected is None or end <= expected or tp in self._tasks or self.tracker.hole(tp):
                continue
            if self._busy.get(tp[0], 0) > 0:
                self._heard[tp] = now
                continue
            if now - self._heard.setdefault(tp, now) < STALL_S:
                continue
            metrics.OFFSET_HOLES.labels(resolution="stalled").inc()
            log.warning(
                "offsets %d..%d of %s:%d were not delivered for %.0f s (a lost tail); reading from %d",
                expected,
                end - 1,
                tp[0],
                tp[1],
                now - self._heard[tp],
                expected,
            )
            self._heard[tp] = now
            await self._seek(tp, expected)
            out.append(tp)
        return out
