"""End-to-end stream benchmarks: a real worker in an isolated deployment on the running stack.

* click path: sustained events/s from the first produce to the last list received, for a burst of
  clicks, next to a bare aiokafka consume -> produce passthrough (the Python client's own
  ceiling) measured the same way in the same run;
* freshness: event timestamp -> list received by an external consumer, at a fixed offered rate;
* review path: reviews go through the Triton text encoder; events/s and per-event latency.

Lists are paired with events by ``trigger_event_id``; each run's event ids carry a unique
prefix, so nothing of an earlier run is counted. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recstream.settings import Settings
from schemas.events import SCHEMA_VERSION, ClickEvent, Event, ReviewEvent, UploadEvent
from streams.kafka_config import aiokafka_config

REVIEWS = [
    "Loved the soundtrack and the slow, patient camera work.",
    "The plot falls apart in the last act, but the cast is great.",
    "A clever heist film with a twist I did not see coming.",
    "Too long, and the jokes land only half of the time.",
]


@dataclass
class StreamMeasure:
    """One measured run: events, wall time, and per-event latencies (ms)."""

    name: str
    events: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def events_per_s(self) -> float:
        """Events per second over the run."""
        return self.events / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        """Latency percentile ``q`` (0-100) in ms."""
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")


def summarise(runs: list[StreamMeasure]) -> dict[str, float | int | str]:
    """Medians over repeats of events/s and latency percentiles."""
    return {
        "name": runs[0].name,
        "events_per_s": statistics.median(r.events_per_s for r in runs),
        "p50_ms": statistics.median(r.pct(50) for r in runs),
        "p95_ms": statistics.median(r.pct(95) for r in runs),
        "p99_ms": statistics.median(r.pct(99) for r in runs),
        "events": sum(r.events for r in runs),
        "repeats": len(runs),
    }


def now_ms() -> int:
    """Wall clock, epoch ms (the event timestamps of the benchmarks)."""
    return time.time_ns() // 1_000_000


def upload(i: int, tag: str) -> UploadEvent:
    """A catalogue item with a title and tags (text encoder and fusion)."""
    return UploadEvent(
        type="upload",
        schema_version=SCHEMA_VERSION,
        event_id=f"{tag}-up-{i}",
        user_id="bench-catalogue",
        item_id=f"{tag}-item-{i}",
        ts=now_ms(),
        title=f"Bench item {i}",
        tags=("drama" if i % 2 else "comedy", f"group{i % 7}"),
    )


def click(i: int, tag: str, items: int, users: int) -> ClickEvent:
    """A click of user ``i % users`` on a catalogue item."""
    return ClickEvent(
        type="click",
        schema_version=SCHEMA_VERSION,
        event_id=f"{tag}-c-{i}",
        user_id=f"{tag}-u{i % users}",
        item_id=f"{tag}-item-{(i * 7919) % items}",
        ts=now_ms(),
    )


def review(i: int, tag: str, items: int, users: int) -> ReviewEvent:
    """A review with text (goes through the text encoder)."""
    return ReviewEvent(
        type="review",
        schema_version=SCHEMA_VERSION,
        event_id=f"{tag}-r-{i}",
        user_id=f"{tag}-u{i % users}",
        item_id=f"{tag}-item-{(i * 104729) % items}",
        ts=now_ms(),
        text=f"{REVIEWS[i % len(REVIEWS)]} (#{i})",
        rating=float(1 + i % 5),
    )


class Harness:
    """A producer to the deployment's input topics and a consumer of its output topic."""

    def __init__(self, settings: Settings, out_topic: str | None = None) -> None:
        self.settings = settings
        self.out_topic = out_topic or settings.topic_recs
        self.sent_at: dict[str, float] = {}
        self.event_ts: dict[str, int] = {}
        self.received: dict[str, float] = {}
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    async def __aenter__(self) -> Harness:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

        kafka = aiokafka_config(self.settings)
        self.producer = AIOKafkaProducer(acks="all", linger_ms=1, **kafka)
        self.consumer = AIOKafkaConsumer(
            self.out_topic, group_id=None, auto_offset_reset="latest", enable_auto_commit=False, **kafka
        )
        await self.producer.start()
        await self.consumer.start()
        # "latest" is resolved at the first fetch: fetch once so nothing produced later is missed.
        await self.consumer.getmany(timeout_ms=200)
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self.producer.stop()
        await self.consumer.stop()

    async def _read(self) -> None:
        import json

        async for msg in self.consumer:
            if msg.value is None:
                continue
            t = time.perf_counter()
            try:
                trigger = json.loads(msg.value).get("trigger_event_id") or (msg.key or b"").decode()
            except ValueError:
                trigger = (msg.key or b"").decode()  # passthrough copies: the key is the event id
            self.received.setdefault(trigger, t)

    async def send(self, ev: Event, topic: str | None = None, key: bytes | None = None) -> None:
        """Produce one event (to its type's topic unless ``topic``) and note when."""
        self.sent_at[ev.event_id] = time.perf_counter()
        self.event_ts[ev.event_id] = ev.ts
        await self.producer.send(
            topic or self.settings.event_topics[ev.type], ev.to_json_bytes(), key=key or ev.kafka_key
        )

    async def wait_for(self, ids: list[str], timeout_s: float = 300.0) -> None:
        """Until every id in ``ids`` has its output (raises TimeoutError with a count)."""
        await self.producer.flush()
        deadline = time.monotonic() + timeout_s
        while any(i not in self.received for i in ids):
            if time.monotonic() > deadline:
                missing = sum(i not in self.received for i in ids)
                raise TimeoutError(f"{missing} of {len(ids)} outputs missing after {timeout_s:.0f} s")
            await asyncio.sleep(0.01)

    def measure(self, name: str, ids: list[str]) -> StreamMeasure:
        """Wall time first send -> last output, and per-event send -> output latencies."""
        first = min(self.sent_at[i] for i in ids)
        last = max(self.received[i] for i in ids)
        lat = [(self.received[i] - self.sent_at[i]) * 1000 for i in ids]
        return StreamMeasure(name, len(ids), last - first, lat)


async def burst(h: Harness, events: Sequence[Event], name: str, topic: str | None = None) -> StreamMeasure:
    """Produce ``events`` as fast as the producer goes; measure until the last output."""
    for ev in events:
        await h.send(ev, topic=topic, key=ev.event_id.encode() if topic else None)
    ids = [e.event_id for e in events]
    await h.wait_for(ids)
    return h.measure(name, ids)


async def paced(
    h: Harness, make: Callable[[int], Event], rate: float, seconds: float, name: str
) -> StreamMeasure:
    """Produce at ``rate`` events/s for ``seconds``; latency = list received - event timestamp."""
    n = int(rate * seconds)
    t0 = time.perf_counter()
    wall0 = time.time()
    ids = []
    for i in range(n):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        ev = make(i)
        ids.append(ev.event_id)
        await h.send(ev)
    await h.wait_for(ids)
    # Freshness from the event's own timestamp (epoch ms) to the receipt, on one clock.
    offset = wall0 - t0
    lat = [((h.received[i] + offset) * 1000 - h.event_ts[i]) for i in ids]
    return StreamMeasure(name, n, time.perf_counter() - t0, lat)


async def passthrough(settings: Settings, src: str, dst: str, stop: asyncio.Event) -> None:
    """The baseline: a bare aiokafka consumer copying every message of ``src`` to ``dst``."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    kafka = aiokafka_config(settings)
    consumer = AIOKafkaConsumer(
        src, group_id=f"passthrough-{uuid.uuid4().hex[:6]}", auto_offset_reset="earliest", **kafka
    )
    producer = AIOKafkaProducer(acks="all", linger_ms=1, **kafka)
    await consumer.start()
    await producer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=500)
            for msgs in batches.values():
                for m in msgs:
                    await producer.send(dst, m.value, key=m.key)
            await producer.flush()
    finally:
        await producer.stop()
        await consumer.stop()


@dataclass
class StreamBenchConfig:
    """Sizes of the stream benchmarks (defaults: a few minutes on 2 cores)."""

    repeats: int = 3
    clicks: int = 5000
    rate: float = 500.0
    fresh_seconds: float = 10.0
    reviews: int = 300
    items: int = 500
    users: int = 1000


def run_stream_benchmarks(
    settings: Settings, cfg: StreamBenchConfig, say: Callable[[str], None] = print
) -> dict[str, dict[str, float | int | str]]:
    """Click path vs passthrough, freshness at a fixed rate, review path; medians over repeats."""
    import subprocess
    import sys

    from kafka.admin import KafkaAdminClient, NewTopic

    from streams.kafka_config import kafka_python_config
    from streams.workerproc import Deployment, recstream_environ

    tag = "b" + uuid.uuid4().hex[:6]
    runs: dict[str, list[StreamMeasure]] = {"click": [], "passthrough": [], "fresh": [], "review": []}
    overrides = {"RECSTREAM_LOG_LEVEL": "WARNING", "RECSTREAM_K": "20"}
    logs = Path(tempfile.mkdtemp(prefix="recstream-bench-"))
    partitions = settings.topic_partitions
    with Deployment.create(recstream_environ(), logs, partitions=partitions, **overrides) as dep:
        dep.start_worker()
        s = dep.settings
        src, dst = f"{s.consumer_group}.pt.in", f"{s.consumer_group}.pt.out"
        admin = KafkaAdminClient(**kafka_python_config(s))
        try:
            admin.create_topics(
                [NewTopic(t, num_partitions=s.topic_partitions, replication_factor=1) for t in (src, dst)]
            )
        finally:
            admin.close()

        async def worker_runs() -> None:
            async with Harness(s) as h:
                say(f"catalogue: uploading {cfg.items} items through the worker")
                await burst(h, [upload(i, tag) for i in range(cfg.items)], "uploads")
                warm = [click(i, tag, cfg.items, cfg.users) for i in range(cfg.users)]
                await burst(h, warm, "warm-up")  # every user has a state row before measuring
                n = cfg.users
                for r in range(cfg.repeats):
                    evs = [click(n + i, tag, cfg.items, cfg.users) for i in range(cfg.clicks)]
                    n += cfg.clicks
                    runs["click"].append(await burst(h, evs, "click path, 1 worker"))
                    say(f"click path run {r + 1}: {runs['click'][-1].events_per_s:,.0f} events/s")
                for r in range(cfg.repeats):
                    base = n

                    def make(i: int, base: int = base) -> Event:
                        return click(base + i, tag, cfg.items, cfg.users)

                    n += int(cfg.rate * cfg.fresh_seconds)
                    m = await paced(
                        h, make, cfg.rate, cfg.fresh_seconds, f"freshness at {cfg.rate:.0f} events/s"
                    )
                    runs["fresh"].append(m)
                    say(f"freshness run {r + 1}: p99 {m.pct(99):.1f} ms")
                for r in range(cfg.repeats):
                    revs = [
                        review(r * cfg.reviews + i, tag, cfg.items, cfg.users) for i in range(cfg.reviews)
                    ]
                    runs["review"].append(await burst(h, revs, "review path (text encoder), 1 worker"))
                    say(f"review path run {r + 1}: {runs['review'][-1].events_per_s:,.0f} events/s")

        asyncio.run(worker_runs())

        proc = subprocess.Popen(
            [sys.executable, "-m", "streams.bench_stream", src, dst],
            env={**os.environ, **dep.env},
            start_new_session=True,
        )
        try:

            async def passthrough_runs() -> None:
                async with Harness(s, out_topic=dst) as h:
                    n = 0
                    for r in range(cfg.repeats):
                        evs = [click(n + i, tag + "p", cfg.items, cfg.users) for i in range(cfg.clicks)]
                        n += cfg.clicks
                        runs["passthrough"].append(
                            await burst(h, evs, "aiokafka consume -> produce passthrough", topic=src)
                        )
                        say(f"passthrough run {r + 1}: {runs['passthrough'][-1].events_per_s:,.0f} events/s")

            asyncio.run(passthrough_runs())
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return {k: summarise(v) for k, v in runs.items()}


def faust_passthrough(settings: Settings, src: str, dst: str) -> None:
    """What Faust itself costs: an agent taking batches of ``src`` and producing each to ``dst``.

    The same consumer set-up as the worker (``take_events`` batches, acks off, the producer
    not awaited per message), no work: its rate is the ceiling the worker's Faust layer allows.
    """
    import faust

    from streams.kafka_config import faust_credentials

    app = faust.App(
        f"faust-passthrough-{uuid.uuid4().hex[:6]}",
        broker=[f"kafka://{h.strip()}" for h in settings.kafka_bootstrap_servers.split(",")],
        broker_credentials=faust_credentials(settings),
        web_enabled=False,
        producer_acks=-1,
        producer_linger=0.002,
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=False,
        store="memory://",
        datadir=tempfile.mkdtemp(prefix="faust-pt-"),
    )
    source = app.topic(src, key_serializer="raw", value_serializer="raw", acks=False)

    @app.agent(source)
    async def copy(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.batch_size, within=settings.batch_timeout_s):  # type: ignore[attr-defined]
            futs = [
                await app.producer.send(dst, e.message.key, e.message.value, None, None, None) for e in events
            ]
            await asyncio.gather(*futs)

    worker = faust.Worker(app, loglevel="warning", quiet=True)
    worker.spinner = None
    worker.execute_from_commandline()


def passthrough_main(argv: list[str] | None = None) -> int:
    """``python -m streams.bench_stream [--faust] SRC DST``: run a passthrough until killed."""
    from recstream.settings import load_settings

    p = argparse.ArgumentParser(prog="python -m streams.bench_stream")
    p.add_argument("--faust", action="store_true", help="a Faust agent instead of bare aiokafka")
    p.add_argument("src")
    p.add_argument("dst")
    args = p.parse_args(argv)
    if args.faust:
        faust_passthrough(load_settings(), args.src, args.dst)
    else:
        asyncio.run(passthrough(load_settings(), args.src, args.dst, asyncio.Event()))
    return 0


if __name__ == "__main__":
    raise SystemExit(passthrough_main())
