"""``recstream worker``: run one stream-processing worker (Faust)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

from recstream import logs
from recstream.settings import Settings, load_settings

if TYPE_CHECKING:  # the CLI imports the worker's modules only when it runs one
    from streams.app import RecstreamApp
    from streams.runtime import Runtime


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``worker`` command."""
    p = sub.add_parser(
        "worker",
        help="run one stream worker (consumes events, publishes lists)",
        description=(
            "Consumes events.click/upload/review, updates user state in Cassandra through the "
            "models served by Triton, and publishes recs.updated. Start several with the same "
            "RECSTREAM_CONSUMER_GROUP (and distinct --web-port) to share the partitions. "
            "Needs `recstream stack up` (or your own servers) and `recstream schema apply`. "
            "Serves the ops page /ops, /metrics, /healthz and /readyz on RECSTREAM_WEB_HOST:port; "
            "logs go to stderr as RECSTREAM_LOG_FORMAT (json or text)."
        ),
    )
    p.add_argument("--web-port", type=int, help="web server port (default RECSTREAM_WEB_PORT, 6066)")
    p.set_defaults(func=run)


async def build_runtime(settings: Settings, app: RecstreamApp) -> Runtime:
    """Connect Cassandra and Triton, load the catalogue, return the Runtime.

    The processor gets its collaborators in one :class:`streams.processor.ProcessorDeps`: the
    Cassandra store, the retrieval index, the Triton client, the served model, the wall clock,
    the Prometheus metrics and the app's rebalance signal.

    Raises:
        streams.errors.DependencyUnavailable: Cassandra, Triton or Kafka did not answer (what
            was opened is closed again; the app retries with back-off).
    """
    import asyncio

    from recstream import metrics
    from serving.client.resilience import RetryPolicy
    from serving.client.triton import TritonClient
    from streams.app import FaustKafka
    from streams.checkpoint import OffsetsReader
    from streams.errors import DependencyUnavailable, StateError
    from streams.processor import Processor, ProcessorDeps
    from streams.retrieval import make_index
    from streams.runtime import Runtime
    from streams.state.cassandra import CassandraStateStore
    from streams.topics import catalog_topic

    try:
        # In a thread: connecting blocks, and the web server (/readyz) runs meanwhile.
        store = await asyncio.to_thread(CassandraStateStore.open, settings)
    except StateError as exc:
        raise DependencyUnavailable("cassandra", str(exc)) from exc
    client = TritonClient(
        settings.triton_grpc_url,
        timeout_s=settings.triton_timeout_s,
        max_concurrency=settings.triton_max_concurrency,
        retry=RetryPolicy(max_attempts=None),  # a worker waits for Triton rather than drop events
    )

    async def unavailable(dependency: str, exc: Exception) -> DependencyUnavailable:
        await client.close()
        await store.close()
        return DependencyUnavailable(dependency, f"{type(exc).__name__}: {exc}")

    try:
        info = await client.model_info()
    except Exception as exc:  # grpc errors of every kind: the server is down or not ready
        raise await unavailable("triton", exc) from exc
    index = make_index(settings.ann_backend, info.out_dim)
    processor = Processor(
        settings,
        ProcessorDeps(client=client, store=store, index=index, model=info, rebalancing=app.is_rebalancing),
    )
    try:
        n = await processor.bootstrap()
    except StateError as exc:
        raise await unavailable("cassandra", exc) from exc
    try:
        offsets = await OffsetsReader(settings).__aenter__()
    except Exception as exc:  # aiokafka connection errors
        raise await unavailable("kafka", exc) from exc
    logging.getLogger("recstream.worker").info("catalogue bootstrapped with %d items", n)
    metrics.MODEL_INFO.info({"model_version": info.version})
    return Runtime(settings, processor, FaustKafka(app), catalog_topic(settings), offsets)


def run(args: argparse.Namespace) -> int:
    """Start the worker and block until it stops."""
    import faust

    from streams.app import create_app
    from streams.topics import TopicLayoutError, ensure_topics

    settings = load_settings(web_port=args.web_port)
    logs.configure(settings)  # the Faust worker re-applies the same config (app.conf.logging_config)
    try:
        ensure_topics(settings)
    except TopicLayoutError as exc:
        print(f"recstream worker: {exc}", file=sys.stderr)
        return 2

    async def factory(app: RecstreamApp) -> Runtime:
        return await build_runtime(settings, app)

    app = create_app(settings, factory)
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True)
    # No terminal spinner: it writes escape codes between log lines and, at WARNING and above,
    # lowers the root logger to DEBUG to spin on every record.
    worker.spinner = None
    worker.execute_from_commandline()
    return 0
