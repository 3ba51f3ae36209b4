"""The worker's per-batch loop: decode at the edge, process, publish, count.

Agents call :meth:`Runtime.handle` with a batch of raw Kafka events and return only when every
event is either dead-lettered or applied with its list published: Faust acknowledges the batch
(and later commits its offsets) after that, so a crash at any point re-delivers the batch and
the idempotent state update makes the redelivery harmless. A failing dependency (Triton,
Cassandra, Kafka) pauses the batch and retries with backoff; it never turns into dead letters.
Nothing may escape :meth:`Runtime.handle`: Faust's ``take_events`` acks a batch in a
``finally``, so an exception would mark unprocessed events as done. A click whose item is still
unknown after its wait is re-queued (its message is sent again, to the back of its partition)
up to ``MAX_DEFERRALS`` times before it is applied without the item's embedding.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np

from recstream import metrics
from recstream.settings import Settings
from schemas.deadletter import make_dead_letter
from schemas.edge import Rejection, decode_event
from schemas.limits import Limits
from serving.errors import InferenceError, TransientInferenceError
from streams.errors import StateError
from streams.latest import record_published
from streams.processor import Incoming, Outcome, Processor
from streams.state.base import ItemRecord, SourcePos

log = logging.getLogger("recstream.worker")

#: send(topic, key, value) -> awaitable that resolves when the broker has the message.
Send = Callable[[str, bytes | None, bytes], Awaitable[Awaitable[Any]]]
#: A message to publish: (topic, key, value).
Message = tuple[str, bytes | None, bytes]
#: How often a click on an unknown item is re-queued before it is applied without the item.
MAX_DEFERRALS = 10


class Runtime:
    """Glue between Faust events and the :class:`Processor`.

    Args:
        settings: Settings.
        processor: The batch logic.
        send: Publishes one message and returns its delivery future.
        catalog_topic: Compacted topic on which new items are broadcast to all workers.
    """

    def __init__(self, settings: Settings, processor: Processor, send: Send, catalog_topic: str) -> None:
        self.settings = settings
        self.processor = processor
        self.send = send
        self.catalog_topic = catalog_topic
        self.limits = Limits.from_settings(settings)
        self.paused_s = 0.0
        self._deferrals: dict[str, int] = {}  # event id -> times re-queued (item still unknown)

    async def handle(self, raw_events: Sequence[Any]) -> list[Outcome]:
        """Process one batch of Faust events (``event.message`` carries topic/partition/offset)."""
        t0 = time.perf_counter()
        now_ms = int(time.time() * 1000)
        good: list[Incoming] = []
        good_msgs: list[Any] = []
        out: list[Message] = []  # dead letters, lists, catalogue items, deferred clicks
        for ev in raw_events:
            msg = ev.message
            result = decode_event(msg.value, key=msg.key, topic=msg.topic, limits=self.limits, now_ms=now_ms)
            if isinstance(result, Rejection):
                out.append(self._dead_letter(msg, result, now_ms))
            else:
                good.append(Incoming(result, SourcePos(msg.topic, msg.partition, msg.offset)))
                good_msgs.append(msg)
        metrics.stage("decode").observe(time.perf_counter() - t0)
        outcomes: list[Outcome] = []
        if good:
            try:
                outcomes = await self._process_with_retry(good)
            except InferenceError as exc:
                # The server refused the input itself: retrying cannot help. Keep the events in
                # the dead-letter topic (bytes and reason) rather than stall the partition.
                log.error("model rejected batch: %s", exc)
                rej = Rejection("model_error", str(exc)[:500])
                out += [self._dead_letter(m, rej, now_ms) for m in good_msgs]
            else:
                out += self._deferred(good, good_msgs, outcomes)
        t1 = time.perf_counter()
        for o in outcomes:
            out.append((self.settings.topic_recs, o.recs.user_id.encode(), o.recs.to_json_bytes()))
        # Duplicates too: a worker killed after storing an item but before this broadcast only
        # gets here on redelivery, where the upload is a duplicate; without it, other workers
        # would never learn the item (followers ignore items they already have).
        new_items = [o for o in outcomes if o.event.type == "upload"]
        for o in new_items:
            item = self.processor.index.get(o.event.item_id)
            if item is not None:
                out.append(
                    (
                        self.catalog_topic,
                        o.event.item_id.encode(),
                        encode_catalog_item(o.event.item_id, item, o.recs.model_version, self._title(o)),
                    )
                )
        # The broker must have every message before the batch is acked.
        await self._publish(out)
        published = time.time()
        metrics.stage("publish").observe(time.perf_counter() - t1)
        record_published(outcomes, published)  # ops page: latest lists, freshness window
        for o in outcomes:
            outcome = "duplicate" if o.duplicate else ("processed" if o.embedded else "unknown_item")
            metrics.events(o.event.type, outcome).inc()
            metrics.FRESHNESS.observe(max(0.0, published - o.event.ts / 1000.0))
        return outcomes

    def _title(self, o: Outcome) -> str:
        return self.processor.titles.get(o.event.item_id, "")

    def _deferred(self, good: list[Incoming], msgs: list[Any], outcomes: list[Outcome]) -> list[Message]:
        """Clicks the processor deferred (item still unknown): their original message, re-queued."""
        done = {o.event.event_id for o in outcomes}
        for eid in done:
            self._deferrals.pop(eid, None)
        again: list[Message] = []
        for x, msg in zip(good, msgs, strict=True):
            eid = x.event.event_id
            if eid not in done:
                self._deferrals[eid] = self._deferrals.get(eid, 0) + 1
                metrics.events(x.event.type, "deferred").inc()
                log.info(
                    "click %s: item %s unknown, re-queued (%d)", eid, x.event.item_id, self._deferrals[eid]
                )
                again.append((msg.topic, msg.key, msg.value))
        return again

    def _may_defer(self, x: Incoming) -> bool:
        return self._deferrals.get(x.event.event_id, 0) < MAX_DEFERRALS

    async def _publish(self, messages: Sequence[Message]) -> None:
        """Send every message and wait until the broker has them all; retry the lot on failure.

        An exception escaping :meth:`handle` would let Faust ack the batch unprocessed (its
        ``take_events`` acks in a ``finally``): a publish failure is retried, never raised. A
        retry may publish a list twice, which consumers tolerate.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                futures = [await self.send(topic, key, value) for topic, key, value in messages]
                await asyncio.gather(*futures)
                return
            except Exception as exc:
                delay = min(5.0, 0.1 * 2 ** min(attempt, 6)) * random.uniform(0.5, 1.0)
                log.warning("publish failed (%r); retry %d in %.2fs", exc, attempt, delay)
                self.paused_s += delay
                await asyncio.sleep(delay)

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

    async def _process_with_retry(self, batch: list[Incoming]) -> list[Outcome]:
        attempt = 0
        failing = False
        try:
            while True:
                attempt += 1
                try:
                    return await self.processor.process(batch, defer=self._may_defer)
                except InferenceError as exc:
                    if not isinstance(exc, TransientInferenceError):
                        raise  # the server refused the input itself: the caller dead-letters it
                    failure: Exception = exc
                except Exception as exc:
                    # A dependency is down (StateError, connection, timeout) or a bug: retrying
                    # stalls this partition (visible as lag), raising would let Faust ack the
                    # batch unprocessed, i.e. lose it.
                    if not isinstance(exc, (StateError, ConnectionError, TimeoutError)):
                        log.exception("unexpected error processing a batch; retrying it")
                    failure = exc
                # Pause this partition and retry the same batch; idempotency makes partial earlier
                # attempts harmless. While it fails, the processor counts as stalled (clicks then
                # keep waiting for their items instead of using up their wait).
                if not failing:
                    failing = True
                    self.processor.failing_batches += 1
                delay = min(5.0, 0.1 * 2 ** min(attempt, 6)) * random.uniform(0.5, 1.0)
                log.warning("batch failed (%s); retry %d in %.2fs", failure, attempt, delay)
                self.paused_s += delay
                await asyncio.sleep(delay)
        finally:
            if failing:
                self.processor.failing_batches -= 1


def _topic_type(settings: Settings, topic: str) -> str:
    for event_type, name in settings.event_topics.items():
        if name == topic:
            return event_type
    return "unknown"


def encode_catalog_item(item_id: str, vec: np.ndarray, model_version: str, title: str) -> bytes:
    """Catalogue broadcast message (JSON; the vector as a float list)."""
    return json.dumps(
        {
            "item_id": item_id,
            "embedding": [float(x) for x in vec],
            "model_version": model_version,
            "title": title,
        }
    ).encode()


def decode_catalog_item(value: bytes) -> ItemRecord:
    """Inverse of :func:`encode_catalog_item`."""
    data = json.loads(value)
    return ItemRecord(
        data["item_id"],
        np.asarray(data["embedding"], dtype=np.float32),
        frozenset(),
        data.get("model_version", ""),
        data.get("title", ""),
    )
