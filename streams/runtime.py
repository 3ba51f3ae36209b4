"""The worker's per-batch loop and its side of the commit protocol.

Agents call :meth:`Runtime.handle` with a batch of raw Kafka events. The runtime *admits* each
message (:class:`streams.offsets.OffsetTracker`: the next offset of an owned partition; a
redelivery, a stale batch or a skipped range is never processed twice or past), decodes it at
the edge (bad input goes to the dead-letter topic with its reason), has the
:class:`streams.processor.Processor` apply the batch to the in-memory state and score its lists,
and hands every message to the producer *without waiting for the broker*: the next batch is
processed while this one's lists travel. When a batch's messages are all delivered its offsets
are done; the :class:`streams.checkpoint.Checkpointer` writes the states and commits the done
positions every ``commit_interval_s``. Back-pressure: at most ``max_pending_events`` events are
taken and not done.

A failing dependency (Triton, Cassandra, Kafka) pauses the batch and retries it with backoff;
it never turns into dead letters and never advances a commit. A click whose item is still
unknown after its wait is re-queued (sent to recstream's own retry topic, same partition number) up to
``MAX_DEFERRALS`` times before it is applied without the item's embedding; the state that skips
it is written only after the copy is delivered, so a crash cannot lose it.

Rebalances: :meth:`Runtime.on_revoke` stops new batches, waits for the ones in flight, writes
the states and commits every owned position; :meth:`Runtime.on_assign` starts tracking the new
partitions at the group's committed offsets and keeps the cached users of the partitions that
stayed (only when that last commit was accepted: a worker the group had already replaced, after
a long pause, drops everything it held).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Sequence
from typing import Any, Protocol

from recstream import metrics
from recstream.settings import Settings
from schemas.deadletter import make_dead_letter
from schemas.edge import Rejection, decode_event
from schemas.limits import Limits
from serving.errors import InferenceError, TransientInferenceError
from streams.checkpoint import Checkpointer, OffsetsReader
from streams.delivery import Message, Publisher
from streams.errors import PartitionNotOwned, StateError
from streams.faults import FaultPoints
from streams.latest import record_published
from streams.offsets import TP, Admit, OffsetTracker
from streams.processor import Incoming, Outcome, Processor
from streams.repair import PartitionRepair
from streams.state.base import SourcePos
from streams.topics import encode_catalog_item, retry_topic

log = logging.getLogger("recstream.worker")

#: How often a click on an unknown item is re-queued before it is applied without the item.
MAX_DEFERRALS = 10


class KafkaPort(Protocol):
    """What the runtime needs of the Kafka client (the Faust app in the worker)."""

    async def send(
        self, topic: str, key: bytes | None, value: bytes, partition: int | None = None
    ) -> Awaitable[Any]:
        """Hand a message to the producer (to ``partition``, or the key's when None); the
        result resolves when the broker has it."""

    async def commit(self, positions: dict[TP, int]) -> bool:
        """Commit positions for the group; False when the broker refused (rebalanced)."""

    async def seek(self, tp: TP, offset: int) -> None:
        """Make the consumer read ``tp`` again from ``offset``."""

    def generation(self) -> int:
        """The consumer group generation of the current assignment."""


class Runtime:
    """Glue between Faust events, the :class:`Processor` and the commit protocol.

    Args:
        settings: Settings.
        processor: The batch logic (holds the state cache).
        kafka: Producer, commits and seeks.
        catalog_topic: Compacted topic on which new items are broadcast to all workers.
        offsets: Broker-side offsets (start positions, hole probes); None only in unit tests,
            which assign partitions themselves.
    """

    def __init__(
        self,
        settings: Settings,
        processor: Processor,
        kafka: KafkaPort,
        catalog_topic: str,
        offsets: OffsetsReader | None = None,
    ) -> None:
        self.settings = settings
        self.processor = processor
        self.kafka = kafka
        self.catalog_topic = catalog_topic
        self.offsets = offsets
        self.limits = Limits.from_settings(settings)
        self.tracker = OffsetTracker()
        self.faults = FaultPoints(settings.fault_hook)
        self.checkpointer = Checkpointer(self.tracker, processor.cache, kafka.commit, self.faults)
        self.publisher = Publisher(self.kafka.send)
        self.retry_topic = retry_topic(settings)
        self.paused_s = 0.0  # seconds a failing batch waited to retry
        self._deferrals: dict[str, int] = {}  # event id -> times re-queued (item still unknown)
        self._ready = asyncio.Event()  # partitions assigned and initialised
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._finishing: set[asyncio.Task[None]] = set()
        self.repair = PartitionRepair(self.tracker, self.kafka.seek, offsets)
        self._kept_ok = False  # the last revocation's commit was accepted

    # --- batches ---------------------------------------------------------------------------

    async def handle(self, raw_events: Sequence[Any]) -> None:
        """Process one batch of Faust events (``event.message`` carries topic/partition/offset)."""
        await self._ready.wait()
        msgs = self._admit(raw_events)
        if not msgs:
            return
        self._inflight += 1
        self._idle.clear()
        topics = {m.topic for m in msgs}
        for t in topics:
            self.repair.busy(t, True)
        try:
            await self._backpressure()
            await self._process(msgs)
        except Exception:
            # A bug, not a dependency (those are retried inside): nothing of the batch is done,
            # so nothing is committed past it; read it again rather than stall its partitions.
            log.exception("batch failed unexpectedly; its partitions are read again from its start")
            await self._rewind(msgs)
        finally:
            for t in topics:
                self.repair.busy(t, False)
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.set()

    def _admit(self, raw_events: Sequence[Any]) -> list[Any]:
        """The messages to process: next offsets of owned partitions of this generation."""
        generation = self.kafka.generation()
        out = []
        for ev in raw_events:
            msg = ev.message
            if getattr(msg, "generation_id", generation) != generation:
                continue  # fetched before the last rebalance: read again from the commit
            tp = (msg.topic, msg.partition)
            self.repair.heard(tp)
            verdict = self.tracker.admit(tp, msg.offset)
            if verdict is Admit.NEXT:
                if self.faults.drop_this():  # negative control of the chaos tests only
                    self.tracker.done(tp, [msg.offset])
                    continue
                out.append(msg)
            elif verdict is Admit.GAP:
                self.repair.gap(tp)
        return out

    async def _rewind(self, msgs: list[Any]) -> None:
        lows: dict[TP, list[int]] = defaultdict(list)
        for m in msgs:
            lows[(m.topic, m.partition)].append(m.offset)
        for tp, offs in lows.items():
            self.tracker.release(tp, offs)
            with contextlib.suppress(Exception):
                await self.kafka.seek(tp, min(offs))

    async def _backpressure(self) -> None:
        while self.tracker.pending_count() > self.settings.max_pending_events and self._finishing:
            await asyncio.wait(set(self._finishing), return_when=asyncio.FIRST_COMPLETED)

    async def _process(self, msgs: list[Any]) -> None:
        t0 = time.perf_counter()
        now_ms = int(time.time() * 1000)
        good: list[Incoming] = []
        good_msgs: list[Any] = []
        out: list[Message] = []  # dead letters, lists, catalogue items, deferred clicks
        raw = {(m.topic, m.partition, m.offset): m for m in msgs}
        for msg in msgs:
            # A deferred click read back from the retry topic is a click of the click topic.
            topic = self.settings.topic_click if msg.topic == self.retry_topic else msg.topic
            result = decode_event(
                msg.value, key=msg.key, topic=topic, limits=self.limits, now_ms=now_ms, require_key=True
            )
            if isinstance(result, Rejection):
                out.append(self._dead_letter(msg, result, now_ms))
            else:
                good.append(Incoming(result, SourcePos(msg.topic, msg.partition, msg.offset)))
                good_msgs.append(msg)
        metrics.stage("decode").observe(time.perf_counter() - t0)
        outcomes: list[Outcome] = []
        if good:
            try:
                outcomes = await self._process_with_retry(good, raw)
            except PartitionNotOwned:
                log.info("batch dropped: its partition was revoked while it was processed")
                return  # nothing published, nothing done: the new owner processes it
            except InferenceError as exc:
                # The server refused the input itself: retrying cannot help. Keep the events in
                # the dead-letter topic (bytes and reason) rather than stall the partition.
                log.error("model rejected batch: %s", exc)
                rej = Rejection("model_error", str(exc)[:500])
                out += [self._dead_letter(m, rej, now_ms) for m in good_msgs]
            else:
                for o in outcomes:
                    self._deferrals.pop(o.event.event_id, None)
        self.faults.hit("after_apply")
        recs = self.settings.topic_recs
        out += [(recs, o.event.user_id.encode(), o.payload) for o in outcomes]
        # Duplicates too: a worker killed after storing an item but before this broadcast only
        # gets here on redelivery, where the upload is a duplicate; without it, other workers
        # would never learn the item (followers ignore items they already have).
        for o in outcomes:
            if o.event.type == "upload":
                vec = self.processor.index.get(o.event.item_id)
                if vec is not None:
                    value = encode_catalog_item(
                        o.event.item_id, vec, self.processor.model.version, self._title(o)
                    )
                    out.append((self.catalog_topic, o.event.item_id.encode(), value))
        t1 = time.perf_counter()
        futures = await self.publisher.send_all(out)
        metrics.stage("produce").observe(time.perf_counter() - t1)
        task = asyncio.create_task(self._finish(msgs, out, futures, outcomes))
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    async def _finish(
        self,
        msgs: list[Any],
        messages: list[Message],
        futures: list[Awaitable[Any]],
        outcomes: list[Outcome],
    ) -> None:
        """Wait until the broker has every message of a batch, then mark its offsets done."""
        await self.publisher.delivered(messages, futures)
        published = time.time()
        if outcomes:
            record_published(outcomes, published, model_version=self.processor.model.version)
            fresh = metrics.FRESHNESS
            for o in outcomes:
                fresh.observe(max(0.0, published - o.event.ts / 1000.0))
        by_tp: dict[TP, list[int]] = defaultdict(list)
        for m in msgs:
            by_tp[(m.topic, m.partition)].append(m.offset)
        for tp, offs in by_tp.items():
            self.tracker.done(tp, offs)
        self.faults.hit("after_publish")

    def _title(self, o: Outcome) -> str:
        return self.processor.titles.get(o.event.item_id, "")

    async def _requeue(self, held: list[Incoming], raw: dict[tuple[str, int, int], Any]) -> None:
        """Send deferred clicks (item still unknown) to the retry topic, delivered.

        Each copy goes to the partition of the retry topic with its original's number, which
        this worker owns too (the input topics share their partition count), and is read later
        under a new offset; the original's offset is done with its batch. ``events.click`` never
        sees the copy, so its other consumers read each click once.
        """
        futures = []
        for x in held:
            eid = x.event.event_id
            self._deferrals[eid] = self._deferrals.get(eid, 0) + 1
            metrics.events(x.event.type, "deferred").inc()
            log.info("click %s: item %s unknown, re-queued (%d)", eid, x.event.item_id, self._deferrals[eid])
            assert x.source is not None
            msg = raw[(x.source.topic, x.source.partition, x.source.offset)]
            futures.append(
                await self.publisher.send(self.retry_topic, msg.key, msg.value, x.source.partition)
            )
        await asyncio.gather(*futures)

    def _may_defer(self, x: Incoming) -> bool:
        return self._deferrals.get(x.event.event_id, 0) < MAX_DEFERRALS

    def _dead_letter(self, msg: Any, rej: Rejection, now_ms: int) -> Message:
        dl = make_dead_letter(msg.value, msg.key, msg.topic, msg.partition, msg.offset, rej, now_ms)
        event_type = _topic_type(self.settings, msg.topic)
        metrics.events(event_type, "dead_letter").inc()
        metrics.dead_letters(rej.reason).inc()
        log.warning(
            "dead letter",
            extra={
                "topic": msg.topic,
                "partition": msg.partition,
                "offset": msg.offset,
                "reason": rej.reason,
            },
        )
        return (self.settings.topic_dlq, msg.key, dl.to_json_bytes())

    async def _process_with_retry(
        self, batch: list[Incoming], raw: dict[tuple[str, int, int], Any]
    ) -> list[Outcome]:
        async def requeue(held: list[Incoming]) -> None:
            await self._requeue(held, raw)

        attempt = 0
        failing = False
        try:
            while True:
                attempt += 1
                try:
                    return await self.processor.process(batch, defer=self._may_defer, requeue=requeue)
                except PartitionNotOwned:
                    raise
                except InferenceError as exc:
                    if not isinstance(exc, TransientInferenceError):
                        raise  # the server refused the input itself: the caller dead-letters it
                    failure: Exception = exc
                except Exception as exc:
                    # A dependency is down (StateError, connection, timeout) or a bug: retrying
                    # stalls this partition (visible as lag); nothing was applied yet.
                    if not isinstance(exc, (StateError, ConnectionError, TimeoutError)):
                        log.exception("unexpected error processing a batch; retrying it")
                    failure = exc
                if not self._ready.is_set():
                    # A rebalance is waiting for this batch: give it up (nothing is done, so
                    # nothing is committed past it); the partition's next owner processes it.
                    raise PartitionNotOwned("batch abandoned during a rebalance while failing")
                if not failing:
                    failing = True
                    self.processor.retry_started()
                delay = min(5.0, 0.1 * 2 ** min(attempt, 6)) * random.uniform(0.5, 1.0)
                log.warning("batch failed (%s); retry %d in %.2fs", failure, attempt, delay)
                self.paused_s += delay
                await asyncio.sleep(delay)
        finally:
            if failing:
                self.processor.retry_ended()

    # --- rebalances and shutdown -----------------------------------------------------------

    async def _drain(self, timeout_s: float) -> None:
        """Wait for batches in flight and their deliveries (bounded)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        if self._finishing:
            await asyncio.wait(set(self._finishing), timeout=timeout_s)

    @property
    def assigned(self) -> bool:
        """Partitions are assigned and initialised (no rebalance in progress)."""
        return self._ready.is_set()

    async def reread_stalled(self, log_ends: dict[TP, int]) -> None:
        """Read again owned partitions behind their log end and silent (see :mod:`streams.repair`)."""
        if self.assigned and not self.processor.stalled:
            await self.repair.reread_stalled(log_ends)

    async def on_revoke(self, timeout_s: float = 10.0) -> bool:
        """Partitions are being revoked: finish what is in flight, write states, commit all.

        Returns whether the commit was accepted (the group still counted this worker).
        """
        self._ready.clear()
        await self._drain(timeout_s)
        ok = False
        for attempt in range(3):
            try:
                ok = await self.checkpointer.checkpoint(every_owned=True)
                break
            except Exception as exc:
                log.warning("final checkpoint before the rebalance failed (%r), attempt %d", exc, attempt + 1)
                await asyncio.sleep(0.5)
        self._kept_ok = ok
        if not ok:
            log.warning("revocation: commit refused or states unwritten; cached users are dropped")
        return ok

    async def on_assign(self, assigned: Sequence[TP], group: str) -> None:
        """Partitions are assigned: track them from the group's committed offsets."""
        partitions = {p for _, p in assigned}
        if not self._kept_ok:
            self.processor.cache.own(set())  # forget everything: another worker may have moved on
        self.processor.cache.own(partitions)
        for tp in self.tracker.partitions:
            self.tracker.revoke(tp)
        if assigned:
            starts: dict[TP, int] = {}
            if self.offsets is not None:
                starts = await self.offsets.start_positions(group, list(assigned))
            for tp in assigned:
                self.tracker.assign((tp[0], tp[1]), starts.get((tp[0], tp[1]), 0))
                self.repair.heard((tp[0], tp[1]))
            log.info("assigned %s", {f"{t}:{p}": starts.get((t, p), 0) for t, p in assigned})
        self._kept_ok = True
        self._ready.set()

    def assign_for_tests(self, positions: dict[TP, int]) -> None:
        """Own ``positions`` directly (unit tests without a consumer group)."""
        for tp, pos in positions.items():
            self.tracker.assign(tp, pos)
        self._ready.set()

    async def shutdown(self, timeout_s: float = 10.0) -> None:
        """Graceful stop: finish what is in flight, write states, commit."""
        self._ready.clear()
        await self._drain(timeout_s)
        try:
            await self.checkpointer.checkpoint(every_owned=True)
        except Exception as exc:
            log.warning("final checkpoint at shutdown failed (%r); the next owner re-reads", exc)
        if self.offsets is not None:
            await self.offsets.__aexit__(None, None, None)
            self.offsets = None


def _topic_type(settings: Settings, topic: str) -> str:
    for event_type, name in settings.event_topics.items():
        if name == topic:
            return event_type
    return "click" if topic == retry_topic(settings) else "unknown"
