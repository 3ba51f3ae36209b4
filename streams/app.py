"""The Faust application: thin agents over :class:`streams.runtime.Runtime`.

One agent per input topic (click, upload, review), each taking batches with ``take_events`` so
Triton sees batches; Kafka keys are user ids, and the three topics are co-partitioned (Faust's
assignor gives partition ``p`` of all three to one worker), so a user's events are owned by one
worker at a time. The input topics are declared with acknowledgements off: Faust never commits
their offsets; the runtime does, after writing the states they cover (:mod:`streams.checkpoint`),
and this module wires its rebalance and shutdown hooks to Faust's signals. Every worker also
follows the compacted catalogue topic, so an item uploaded through any worker becomes
retrievable on all of them. The web routes (ops page, metrics, probes) are in
:mod:`streams.web.routes`; logging follows :mod:`recstream.logs`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer
from faust.types import TP

from recstream import logs, metrics
from recstream.settings import Settings
from serving.client.resilience import RetryPolicy
from streams import gcpause
from streams.errors import DependencyUnavailable
from streams.faust_transport import DEFAULT_FETCH_MAX_WAIT_MS, Transport
from streams.kafka_config import aiokafka_config, faust_credentials
from streams.runtime import Runtime
from streams.topics import catalog_topic, decode_catalog_item, input_topics, retry_topic
from streams.web.routes import OpsWeb
from streams.web.routes import register as register_routes

log = logging.getLogger("recstream.worker")


#: Builds the runtime once the app is starting (``recstream.cli.worker.build_runtime``).
RuntimeFactory = Callable[["RecstreamApp"], Awaitable[Runtime]]
#: Back-off between attempts to connect Cassandra and Triton at start (forever: a worker
#: started before its dependencies waits for them, not-ready, instead of exiting).
STARTUP_RETRY = RetryPolicy(max_attempts=None, base_delay_s=0.5, max_delay_s=10.0)


class RecstreamApp(faust.App):
    """Faust app whose start-up connects the runtime before any agent consumes."""

    runtime: Runtime | None = None
    runtime_factory: RuntimeFactory | None = None
    ops_web: OpsWeb | None = None
    #: Read by the consumer thread of :class:`streams.faust_transport.Transport`.
    fetch_max_wait_ms: int = DEFAULT_FETCH_MAX_WAIT_MS

    def _new_transport(self) -> Any:
        # Faust's transport, with the consumer of streams/faust_transport.py (fetch wait).
        return Transport(self.conf.broker_consumer, self)

    #: While starting: the dependency the worker waits for and why (``/readyz`` shows it).
    waiting_for: tuple[str, str] | None = None
    #: Partitions assigned before the runtime was up (handed to it once it is).
    pending_assignment: list[tuple[str, int]] | None = None
    _runtime_up: asyncio.Event | None = None

    async def on_start(self) -> None:
        await super().on_start()
        self._runtime_up = asyncio.Event()
        if self.runtime is not None:
            self._runtime_up.set()
        elif self.runtime_factory is not None:
            # In the background: the web server (and /readyz) start meanwhile, and the worker
            # waits for Cassandra and Triton instead of exiting when one is down at start.
            self.add_future(self._connect_runtime(self.runtime_factory))

    async def _connect_runtime(self, factory: RuntimeFactory) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                runtime = await factory(self)
                break
            except DependencyUnavailable as exc:
                self.waiting_for = (exc.dependency, str(exc))
                delay = max(0.2, STARTUP_RETRY.delay(attempt))
                log.warning("worker not ready: %s; retrying in %.1fs (attempt %d)", exc, delay, attempt)
                await asyncio.sleep(delay)
        # The start-up heap (catalogue, model, clients) is long-lived: collections skip it.
        frozen = gcpause.freeze_startup_heap()
        gcpause.observe_pauses()
        log.info("garbage collector: %d start-up objects frozen", frozen)
        # An assignment may arrive while the previous one is handed over: hand over the latest.
        handed: list[tuple[str, int]] | None = None
        while self.pending_assignment is not handed:
            handed = self.pending_assignment
            if handed is not None:
                await runtime.on_assign(handed, self.conf.id)
        self.runtime, self.waiting_for = runtime, None
        assert self._runtime_up is not None
        self._runtime_up.set()

    async def wait_runtime(self) -> Runtime:
        """The runtime, once Cassandra and Triton answered and the catalogue is loaded."""
        while self._runtime_up is None:  # noqa: ASYNC110 - before on_start ran
            await asyncio.sleep(0.05)
        await self._runtime_up.wait()
        assert self.runtime is not None
        return self.runtime

    def is_rebalancing(self) -> bool:
        """Whether the consumer group is rebalancing now.

        The factory hands it to the processor (``ProcessorDeps.rebalancing``): a click waiting
        for its item must not hold up a rebalance (which waits for the batches in flight) while
        the item's upload waits for that very rebalance.
        """
        return bool(self.rebalancing)

    async def on_stop(self) -> None:
        if self.runtime is not None:
            await self.runtime.shutdown()
        if self.ops_web is not None:
            await self.ops_web.close()
        await super().on_stop()


class FaustKafka:
    """:class:`streams.runtime.KafkaPort` over the Faust app's producer and consumer."""

    def __init__(self, app: faust.App) -> None:
        self.app = app

    async def send(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None) -> Any:
        return await self.app.producer.send(topic, key, value, partition, None, None)

    async def commit(self, positions: dict[tuple[str, int], int]) -> bool:
        # Consumer._commit is the transport's commit of explicit offsets (the public commit()
        # commits Faust's acknowledged offsets, which the input topics never have). It carries
        # the group generation: after a rebalance the broker refuses it and it returns False.
        offsets = {TP(t, p): off for (t, p), off in positions.items()}
        return bool(await self.app.consumer._commit(offsets))  # type: ignore[attr-defined]

    async def seek(self, tp: tuple[str, int], offset: int) -> None:
        consumer = self.app.consumer
        thread = getattr(consumer, "_thread", None)  # Faust's aiokafka consumer thread
        if thread is None:
            await consumer.seek(TP(*tp), offset)
            return
        # Faust's Consumer.seek calls the aiokafka consumer from this thread while the consumer
        # thread may be collecting fetched records: aiokafka's fetcher then crashed (KeyError).
        # Seek on the consumer's own thread, then reset Faust's read offset as its seek does.
        await thread.call_thread(thread.seek, TP(*tp), offset)
        consumer._read_offset[TP(*tp)] = offset if offset else None  # type: ignore[attr-defined]

    def generation(self) -> int:
        return int(self.app.consumer_generation_id)


def create_app(settings: Settings, runtime_factory: RuntimeFactory) -> RecstreamApp:
    """Build the app. ``runtime_factory(app)`` is awaited at start and returns the Runtime."""
    settings_session_timeout = 15.0
    # Faust creates its datadir without parents: a fresh stack dir would crash the worker.
    (settings.stack_dir / "faust").mkdir(parents=True, exist_ok=True)
    app = RecstreamApp(
        settings.consumer_group,
        broker=[f"kafka://{h.strip()}" for h in settings.kafka_bootstrap_servers.split(",")],
        broker_credentials=faust_credentials(settings),
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
        producer_acks=-1,
        # Lists leave in one produce request per few milliseconds rather than one per list.
        producer_linger=0.002,
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.topic_partitions,
        topic_allow_declare=False,
        store="memory://",
        # Faust writes table metadata under datadir (default: ./<app id>-data in the cwd).
        datadir=str(settings.stack_dir / "faust" / "{conf.name}-data"),
        # Faust's own commits: only for topics with acks (none of the inputs; see above).
        broker_commit_interval=1.0,
        # A dead worker's partitions move after this long without heartbeats (Faust's default,
        # 60 s, stalled them a minute; heartbeats run in the background every 3 s).
        broker_session_timeout=settings_session_timeout,
        stream_buffer_maxsize=max(4096, settings.batch_size * 4),
        # The worker's root logging (recstream.logs: JSON or text, secrets scrubbed); Faust's
        # worker applies it when it sets up logging, and adds no handlers of its own.
        logging_config=logs.logging_config(settings),
        loghandlers=[],
    )
    app.runtime_factory = runtime_factory
    app.fetch_max_wait_ms = settings.kafka_fetch_max_wait_ms

    def input_topic(name: str) -> faust.TopicT:
        # acks=False: Faust neither tracks nor commits these offsets (see the module docstring).
        return app.topic(name, key_serializer="raw", value_serializer="raw", acks=False)

    # One agent per input topic; deferred clicks (item unknown when first read) come back
    # through recstream's own retry topic.
    agents = {**settings.event_topics, "click_retry": retry_topic(settings)}
    for label, name in agents.items():

        async def agent(stream: faust.StreamT) -> None:
            # take_events (faust-streaming) yields events, whose messages carry topic/partition/offset.
            batches = stream.take_events(settings.batch_size, within=settings.batch_timeout_s)  # type: ignore[attr-defined]
            async for events in batches:
                runtime = app.runtime or await app.wait_runtime()
                await runtime.handle(events)

        app.agent(input_topic(name), name=f"recstream.{label}")(agent)

    # Both signals are awaited inside the rebalance: revocation finishes and commits before the
    # group hands the partitions over; assignment starts tracking at the group's commits.
    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # mode types async receivers oddly
    async def on_revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
        if app.runtime is not None:
            await app.runtime.on_revoke(timeout_s=min(10.0, settings_session_timeout / 3))

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, *args: Any, **kwargs: Any) -> None:
        assigned = args[0] if args else kwargs.get("assigned", ())
        inputs = set(input_topics(settings))
        mine = [(tp.topic, tp.partition) for tp in assigned if tp.topic in inputs]
        if app.runtime is None:
            # Still connecting (a dependency is down): the runtime takes this assignment when
            # it is up, and the agents wait for it; the rebalance is not held up meanwhile.
            app.pending_assignment = mine
            return
        await app.runtime.on_assign(mine, settings.consumer_group)

    @app.task
    async def checkpoints() -> None:
        """Write changed states and commit covered offsets every ``commit_interval_s``."""
        runtime = await app.wait_runtime()
        await runtime.checkpointer.run(settings.commit_interval_s)

    @app.task
    async def follow_catalogue() -> None:
        """Apply items uploaded through any worker to this worker's index."""
        runtime = await app.wait_runtime()
        consumer = AIOKafkaConsumer(
            catalog_topic(settings),
            group_id=None,  # every worker reads every partition
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            **aiokafka_config(settings),
        )
        await consumer.start()
        try:
            async for msg in consumer:
                if msg.value is None:
                    continue
                changed = runtime.processor.catalogue_changes([decode_catalog_item(msg.value)])
                if changed:  # new here, or re-uploaded with another title, image or features
                    runtime.processor.add_items(changed)
        finally:
            await consumer.stop()

    @app.timer(2.0)
    async def reread_stalled() -> None:
        """Messages Faust dropped at the tail of a partition are read again (streams/repair.py)."""
        runtime = app.runtime
        if runtime is None or not runtime.assigned:
            return
        inputs = set(input_topics(settings))
        try:
            assigned = [tp for tp in app.consumer.assignment() if tp.topic in inputs]
            if not assigned:
                return
            ends = await app.consumer.highwaters(*assigned)
        except Exception as exc:  # broker unavailable: next tick
            log.debug("log ends not available: %r", exc)
            return
        await runtime.reread_stalled({(tp.topic, tp.partition): end for tp, end in ends.items()})

    @app.timer(5.0)
    async def export_lag() -> None:
        """``recstream_consumer_lag``: log end offset minus next offset to read, per partition."""
        consumer = app.consumer
        try:
            assigned = consumer.assignment()
            if not assigned:
                return
            ends = await consumer.highwaters(*assigned)
        except Exception as exc:  # not yet assigned or broker unavailable: try again next tick
            log.debug("lag not available: %r", exc)
            return
        read = getattr(consumer, "_read_offset", {})  # Faust's last offset read per partition
        metrics.CONSUMER_LAG.clear()  # partitions that moved to another worker stop reporting
        for tp, end in ends.items():
            last = read.get(tp)
            lag = end if last is None else max(0, end - (last + 1))
            metrics.CONSUMER_LAG.labels(topic=tp.topic, partition=str(tp.partition)).set(lag)

    app.ops_web = register_routes(app, settings)
    return app
