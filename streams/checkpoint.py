"""The commit protocol: user states are written before the input offsets that cover them.

The worker, not Faust, decides which input offsets are committed (its input topics are
declared with acknowledgements off, so Faust's own ack-and-commit never commits them):

1. An event is *taken* when its batch starts (:class:`streams.offsets.OffsetTracker`) and *done*
   when it is applied to the in-memory state and its list (or dead letter) is delivered.
2. Every ``commit_interval_s``, at every revocation and at shutdown, :meth:`Checkpointer.checkpoint`
   notes the committable positions (every offset below them done), then writes every changed
   user state (:meth:`streams.state.cache.StateCache.flush`), then commits those positions.

So a committed offset never runs ahead of the state it covers: a crash before the write
redelivers the events and re-applies them; a crash after it redelivers events the state already
holds, which the per-partition offset guard skips. States may be written ahead of the commit
(they hold events the commit does not cover yet), never behind. The commit carries the consumer
group generation: a worker that lost its partitions cannot commit for them, and its late state
writes are fenced by the store (:attr:`streams.state.base.UserWrite.fence`). This is the
checkpointing of quix-streams (state transactions flushed before the offset commit) and the
record cache of Kafka Streams, with Faust agents as the consumers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence

from recstream import metrics
from recstream.settings import Settings
from streams.faults import FaultPoints
from streams.kafka_config import aiokafka_config
from streams.offsets import TP, OffsetTracker
from streams.state.cache import StateCache

log = logging.getLogger("recstream.worker")

#: Commits positions; False when the broker refused them (the group rebalanced).
CommitFn = Callable[[dict[TP, int]], Awaitable[bool]]


class Checkpointer:
    """Flush-then-commit, periodically and on demand; see the module docstring.

    Args:
        tracker: Taken and done offsets.
        cache: The user states to write before committing.
        commit: Commits positions to the consumer group.
        faults: Test-only kill points (``after_flush``).
    """

    def __init__(
        self, tracker: OffsetTracker, cache: StateCache, commit: CommitFn, faults: FaultPoints | None = None
    ) -> None:
        self.tracker = tracker
        self.cache = cache
        self._commit = commit
        self._faults = faults or FaultPoints(None)
        self._lock = asyncio.Lock()
        #: Wall-clock time of the last successful flush (for readiness and back-pressure).
        self.last_ok = time.time()
        self.failures = 0

    async def checkpoint(self, only: Iterable[TP] | None = None, *, every_owned: bool = False) -> bool:
        """Write changed states, then commit positions. Returns whether the commit was accepted.

        Args:
            only: Commit only these partitions (states are always all written).
            every_owned: Commit every owned partition, moved or not: at a revocation this
                proves to the broker that the group still counts this worker as their owner.

        Raises:
            streams.errors.StateError: The states could not be written (nothing committed).
        """
        async with self._lock:
            if every_owned:
                positions: dict[TP, int] = {
                    tp: pos
                    for tp in self.tracker.partitions
                    if (pos := self.tracker.position(tp)) is not None
                }
            else:
                positions = self.tracker.committable()
            if only is not None:
                keep = set(only)
                positions = {tp: p for tp, p in positions.items() if tp in keep}
            t0 = time.perf_counter()
            written = await self.cache.flush()
            self.last_ok = time.time()
            if written:
                self._faults.hit("after_flush")
            if not positions:
                return True
            ok = await self._commit(positions)
            metrics.stage("commit").observe(time.perf_counter() - t0)
            metrics.COMMITS.labels(outcome="ok" if ok else "rejected").inc()
            if ok:
                self.tracker.committed(positions)
            return ok

    async def run(self, interval_s: float) -> None:
        """Checkpoint every ``interval_s`` until cancelled; a failed write is retried next time."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.checkpoint()
                self.failures = 0
            except Exception as exc:
                # Cassandra down: nothing is committed, the states stay pending and are written
                # again next time; events keep their lists meanwhile (they are redelivered and
                # skipped, or re-applied, after a crash).
                self.failures += 1
                log.warning("checkpoint failed (%r); states stay pending, retry in %.1fs", exc, interval_s)


class OffsetsReader:
    """Broker-side offsets the tracker needs: group commits, log starts, what a hole holds.

    Uses its own clients (an admin client and a consumer outside the group), so reading never
    disturbs the worker's consumer. Start with ``async with``.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> OffsetsReader:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.admin import AIOKafkaAdminClient

        kafka = aiokafka_config(self.settings)
        self._admin = AIOKafkaAdminClient(**kafka)
        self._consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **kafka)
        await self._admin.start()
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def start_positions(self, group: str, tps: Sequence[TP]) -> dict[TP, int]:
        """Where the group resumes each partition: its committed offset, else the log start."""
        from aiokafka import TopicPartition

        parts = [TopicPartition(t, p) for t, p in tps]
        async with self._lock:
            committed = await self._admin.list_consumer_group_offsets(group, partitions=parts)
            out: dict[TP, int] = {}
            missing = []
            for tp in parts:
                meta = committed.get(tp)
                if meta is not None and meta.offset >= 0:
                    out[(tp.topic, tp.partition)] = meta.offset
                else:
                    missing.append(tp)
            if missing:
                starts = await self._consumer.beginning_offsets(missing)
                for tp, off in starts.items():
                    out[(tp.topic, tp.partition)] = off
        return out

    async def records_in(self, tp: TP, start: int, end: int) -> bool:
        """Whether the partition holds a record with an offset in ``[start, end)``.

        Unsure (no answer in time) counts as yes: reading the range again is always safe,
        skipping it is not.
        """
        from aiokafka import TopicPartition

        part = TopicPartition(*tp)
        async with self._lock:
            self._consumer.assign([part])
            self._consumer.seek(part, start)
            for _ in range(5):
                got = await self._consumer.getmany(part, timeout_ms=1000, max_records=1)
                recs = got.get(part)
                if recs:
                    return bool(recs[0].offset < end)
        return True
