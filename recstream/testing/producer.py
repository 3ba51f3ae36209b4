"""The event producer: events (or raw messages) to a deployment's input topics, keyed by user id.

An :class:`~schemas.events.Event` goes to the topic of its type, keyed by its user id, as the
JSON of the schemas (:func:`event_message`); a test may also send a document or raw bytes that no
event model would produce (:meth:`EventProducer.send_doc`, :meth:`EventProducer.send_raw`).
:class:`EventProducer` is the kafka-python client of threads and scripts; it counts delivery
failures and raises :class:`DeliveryError` when it closes after one. :class:`AsyncEventProducer`
is the aiokafka client of code that runs in an event loop (the benchmarks, the pipeline
evaluation), where a blocking client would stall the loop that also reads the lists.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

from recstream.settings import Settings
from schemas.events import Event

#: ``(topic, key, value)``: one message as a producer sends it.
Message = tuple[str, bytes | None, bytes]

#: kafka-python options of a producer that rides out a broker restart: idempotent (per-partition
#: order and no duplicates through retries), retrying until delivered or 10 minutes passed.
DURABLE: dict[str, Any] = {
    "enable_idempotence": True,
    "retries": float("inf"),
    "delivery_timeout_ms": 600_000,
    "request_timeout_ms": 20_000,
    "reconnect_backoff_max_ms": 1000,
}


def event_message(settings: Settings, event: Event) -> Message:
    """``event`` as the message a producer sends: its type's topic, keyed by user id, JSON."""
    return settings.event_topics[event.type], event.kafka_key, event.to_json_bytes()


class DeliveryError(RuntimeError):
    """Some messages were not delivered (message: how many and the first error)."""

    def __init__(self, failures: int, first: BaseException | None) -> None:
        super().__init__(f"{failures} event(s) not delivered: {first}")
        self.failures = failures
        self.first = first


class EventProducer:
    """A kafka-python producer of events to the deployment's input topics (``acks="all"``).

    Use as ``with EventProducer(settings) as p: p.send(event); p.flush(30)``; leaving the block
    closes it (and raises :class:`DeliveryError` when a send failed, unless the block raised).
    """

    def __init__(
        self, settings: Settings, *, linger_ms: int = 5, durable: bool = True, client: Any | None = None
    ) -> None:
        """Connect to Kafka.

        Args:
            settings: Bootstrap servers, security and topic names.
            linger_ms: How long the client waits to fill a batch.
            durable: With :data:`DURABLE`'s options; else the client's defaults.
            client: A ready producer with kafka-python's ``send/flush/close`` (unit tests).

        Raises:
            kafka.errors.KafkaError: No broker could be reached.
        """
        self.settings = settings
        self.failures = 0
        self.first_error: BaseException | None = None
        self._closed = False
        if client is None:
            from kafka import KafkaProducer

            from streams.kafka_config import kafka_python_config

            options = DURABLE if durable else {}
            client = KafkaProducer(
                acks="all", linger_ms=linger_ms, **options, **kafka_python_config(settings)
            )
        self.client = client

    def send(self, event: Event) -> Any:
        """Queue ``event`` on the topic of its type; returns the client's future."""
        return self.send_raw(*event_message(self.settings, event))

    def send_doc(self, kind: str, key: str | bytes | None, doc: Mapping[str, Any] | bytes) -> Any:
        """Queue a document (``json.dumps``) or raw bytes on the topic of event type ``kind``."""
        value = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        raw_key = key.encode() if isinstance(key, str) else key
        return self.send_raw(self.settings.event_topics[kind], raw_key, value)

    def send_raw(self, topic: str, key: bytes | None, value: bytes) -> Any:
        """Queue one message as it is; a delivery failure is counted."""
        future = self.client.send(topic, value=value, key=key)
        future.add_errback(self._failed)
        return future

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        self.first_error = self.first_error or exc

    def flush(self, timeout_s: float | None = None) -> None:
        """Block until every queued message is sent (or ``timeout_s``: the client raises)."""
        self.client.flush(timeout=timeout_s)

    def close(self, timeout_s: float | None = None) -> None:
        """Flush and close the client; raise :class:`DeliveryError` if a send failed.

        Raises:
            DeliveryError: Some messages were not delivered.
        """
        if self._closed:
            return
        self._closed = True
        try:
            self.client.flush()
        finally:
            self.client.close(timeout=timeout_s)
        if self.failures:
            raise DeliveryError(self.failures, self.first_error)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.close()
        except DeliveryError:
            if et is None:  # never hide the block's own error behind this one
                raise


class AsyncEventProducer:
    """An aiokafka producer of events (``acks="all"``), for code running in an event loop.

    Use as ``async with AsyncEventProducer(settings) as p: await p.send(event)``.
    """

    def __init__(self, settings: Settings, *, linger_ms: int = 1) -> None:
        self.settings = settings
        self.linger_ms = linger_ms
        self.client: Any = None

    async def __aenter__(self) -> Self:
        from aiokafka import AIOKafkaProducer

        from streams.kafka_config import aiokafka_config

        self.client = AIOKafkaProducer(acks="all", linger_ms=self.linger_ms, **aiokafka_config(self.settings))
        await self.client.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.stop()

    async def send(self, event: Event, *, topic: str | None = None, key: bytes | None = None) -> Any:
        """Queue ``event`` (on ``topic`` and with ``key`` when given); returns the delivery future."""
        own_topic, own_key, value = event_message(self.settings, event)
        return await self.client.send(topic or own_topic, value, key=key or own_key)

    async def flush(self) -> None:
        """Wait until every queued message is sent."""
        await self.client.flush()
