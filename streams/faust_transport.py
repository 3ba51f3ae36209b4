"""Faust's aiokafka transport with a consumer whose fetches are not held for 1.5 s.

Faust creates its worker consumer with ``fetch_max_wait_ms=1500`` (not configurable). aiokafka
keeps one fetch request in flight per broker and leaves out of it every partition that still
has fetched records waiting to be consumed. So while the worker consumes a partition's records,
the next request asks only for the idle partitions (for example the upload and review topics
during a run of clicks); the broker holds it until ``fetch_max_wait_ms``, and new clicks on the
busy partition are not fetched before it returns. Measured on the bench at 500 clicks/s:
freshness rose in a 1.7 s saw-tooth (p99 1.7 s, the worker fell behind); with 10 ms it kept up.

The wait comes from ``RECSTREAM_KAFKA_FETCH_MAX_WAIT_MS``. This subclasses Faust's consumer
thread and sets the aiokafka consumer's wait before it starts (``start()`` passes it to the
fetcher); the attribute is private to aiokafka, so the transport test checks it takes effect.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

__all__ = ["DEFAULT_FETCH_MAX_WAIT_MS", "Transport"]

#: aiokafka's own default, used when the app does not say (Faust's is 1,500 ms).
DEFAULT_FETCH_MAX_WAIT_MS = 500


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread; its aiokafka consumer uses the app's ``fetch_max_wait_ms``."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = int(getattr(self.app, "fetch_max_wait_ms", DEFAULT_FETCH_MAX_WAIT_MS))
        return consumer


class Consumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with :class:`ConsumerThread`."""

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with :class:`Consumer` (the producer is Faust's own)."""

    Consumer = Consumer
