"""Benchmarks against the running local stack. Figures are printed, never asserted.

Each measurement runs for a fixed duration and reports throughput with latency percentiles;
``repeats`` runs give medians. Ratios (batched vs batch 1) come from the same run, since the
machines are shared and absolute numbers drift. The building blocks of the end-to-end
benchmarks (:mod:`recstream.lab.bench_stream`) live here too: a measured run and its medians, the
counters read from a worker's ``/metrics`` page, the benchmark events, and the two
passthrough baselines (bare aiokafka, a Faust agent).
"""

from __future__ import annotations

import asyncio
import math
import platform
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recstream.settings import Settings
from schemas.events import SCHEMA_VERSION, ClickEvent, ReviewEvent, UploadEvent
from streams.kafka_config import aiokafka_config

REVIEWS = [
    "Loved the soundtrack and the slow, patient camera work.",
    "The plot falls apart in the last act, but the cast is great.",
    "A clever heist film with a twist I did not see coming.",
    "Too long, and the jokes land only half of the time.",
]

SENTENCES = [
    "A gentle comedy about a family reunion that goes wrong in every possible way.",
    "Space marines defend a distant colony against an alien swarm.",
    "A detective in 1940s Los Angeles uncovers a conspiracy behind a string of murders.",
    "Two friends drive across the country and learn what matters most.",
]


@dataclass
class Measure:
    """Throughput and latency of one measured loop."""

    name: str
    ops_per_s: float
    p50_ms: float
    p99_ms: float
    n: int


async def closed_loop(
    name: str, op: Callable[[int], Awaitable[object]], concurrency: int, seconds: float
) -> Measure:
    """Run ``op`` from ``concurrency`` concurrent callers for ``seconds``; each call counts one op."""
    lat: list[float] = []
    stop = time.perf_counter() + seconds

    async def caller(cid: int) -> None:
        i = 0
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            await op(cid * 1_000_000 + i)
            lat.append(time.perf_counter() - t0)
            i += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(caller(c) for c in range(concurrency)))
    wall = time.perf_counter() - t0
    arr = np.array(lat) * 1000
    return Measure(
        name, len(lat) / wall, float(np.percentile(arr, 50)), float(np.percentile(arr, 99)), len(lat)
    )


def median_measure(runs: list[Measure]) -> Measure:
    """Median of each figure over repeated runs."""
    return Measure(
        runs[0].name,
        statistics.median(r.ops_per_s for r in runs),
        statistics.median(r.p50_ms for r in runs),
        statistics.median(r.p99_ms for r in runs),
        sum(r.n for r in runs),
    )


async def bench_triton(settings: Settings, seconds: float, repeats: int) -> dict[str, Measure]:
    """Text encoder at batch 1 vs dynamic batching at concurrency 16, and fusion calls/s."""
    from serving.client.base import FusionInputs
    from serving.client.triton import TritonClient

    out: dict[str, Measure] = {}
    async with TritonClient(settings.triton_grpc_url, max_concurrency=64) as client:
        info = await client.model_info()
        await client.encode_text(SENTENCES)  # warm-up

        async def one_sentence(i: int) -> object:
            return await client.encode_text([f"{SENTENCES[i % 4]} #{i}"])

        zeros_img = np.zeros((1, info.image_dim), dtype=np.float32)
        zeros_feat = np.zeros((1, info.feature_dim), dtype=np.float32)
        text = np.tile(np.float32(1 / np.sqrt(384)), (1, 384))

        async def one_fusion(i: int) -> object:
            mask = np.array([[1, 0, 0, 1]], dtype=np.float32)
            return await client.fuse(FusionInputs(text, zeros_img, zeros_feat, (str(i % 500),), mask))

        runs: dict[str, list[Measure]] = {"text_batch1": [], "text_dynamic_c16": [], "fusion_c16": []}
        for _ in range(repeats):
            runs["text_batch1"].append(
                await closed_loop("text_encoder, batch 1, 1 caller", one_sentence, 1, seconds)
            )
            runs["text_dynamic_c16"].append(
                await closed_loop("text_encoder, dynamic batching, 16 callers", one_sentence, 16, seconds)
            )
            runs["fusion_c16"].append(await closed_loop("fusion, 16 callers", one_fusion, 16, seconds))
        out = {k: median_measure(v) for k, v in runs.items()}
    return out


async def bench_cassandra(settings: Settings, seconds: float, repeats: int) -> Measure:
    """User-state upserts/s through the worker's store (whole-row writes, bounded concurrency)."""
    from streams.state.base import UserState, UserWrite
    from streams.state.cassandra import CassandraStateStore
    from streams.state.schema import apply_schema

    apply_schema(settings)
    store = CassandraStateStore.open(settings)
    rng = np.random.default_rng(0)
    tag = uuid.uuid4().hex[:6]
    states = [
        UserState(
            f"bench-{tag}-{i}",
            rng.normal(size=64),
            1_700_000_000_000,
            10,
            "bench",
            {"events.click:0": i},
            tuple(f"e{j}" for j in range(20)),
            tuple(f"i{j}" for j in range(50)),
        )
        for i in range(64)
    ]

    async def batch(i: int) -> None:
        await store.write_users([UserWrite.whole(s) for s in states])

    try:
        runs = [
            await closed_loop("cassandra user-state upserts (64 per call)", batch, 2, seconds)
            for _ in range(repeats)
        ]
    finally:
        await store.close()
    m = median_measure(runs)
    return Measure(m.name, m.ops_per_s * len(states), m.p50_ms, m.p99_ms, m.n * len(states))


def machine() -> str:
    """One line describing the machine."""
    import os

    return (
        f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )


# --- end-to-end figures (recstream.lab.bench_stream) ---------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\} (\S+)$", re.M)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass
class StreamMeasure:
    """One measured run: events, wall time, and per-event latencies (ms).

    A fixed-rate run also records its offered rate and how long sending took, so the report
    can set the rate lists were received at against the rate events were offered at.
    """

    name: str
    events: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    offered_per_s: float | None = None
    sent_seconds: float | None = None

    @property
    def events_per_s(self) -> float:
        """Events per second over the run (first send to last list received)."""
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def sent_per_s(self) -> float | None:
        """Events per second the producer actually sent (None for a burst)."""
        return self.events / self.sent_seconds if self.sent_seconds else None

    def pct(self, q: float) -> float:
        """Latency percentile ``q`` (0-100) in ms."""
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")


def summarise(runs: Sequence[StreamMeasure]) -> dict[str, Any]:
    """Medians over repeats of events/s and latency percentiles.

    For fixed-rate runs also ``offered_per_s``, ``sent_per_s`` and ``received_per_s``
    (medians; received is ``events_per_s``), ``received_vs_offered`` (1.0: the worker kept
    up) and ``runs``, the same figures of each repeat.
    """
    out: dict[str, Any] = {
        "name": runs[0].name,
        "events_per_s": statistics.median(r.events_per_s for r in runs),
        "p50_ms": statistics.median(r.pct(50) for r in runs),
        "p95_ms": statistics.median(r.pct(95) for r in runs),
        "p99_ms": statistics.median(r.pct(99) for r in runs),
        "events": sum(r.events for r in runs),
        "repeats": len(runs),
    }
    offered = runs[0].offered_per_s
    if offered:
        out["offered_per_s"] = offered
        out["sent_per_s"] = statistics.median(r.sent_per_s or 0.0 for r in runs)
        out["received_per_s"] = out["events_per_s"]
        out["received_vs_offered"] = out["received_per_s"] / offered
        out["runs"] = [
            {"offered_per_s": offered, "sent_per_s": r.sent_per_s, "received_per_s": r.events_per_s,
             "received_vs_offered": r.events_per_s / offered, "p99_ms": r.pct(99)}
            for r in runs
        ]  # fmt: skip
    return out


def counter_by_label(metrics_text: str, name: str, label: str) -> dict[str, float]:
    """Samples of counter ``name`` on a Prometheus text page, summed by the value of ``label``."""
    out: dict[str, float] = {}
    for m in _SAMPLE.finditer(metrics_text):
        if m.group(1) != name:
            continue
        labels = dict(_LABEL.findall(m.group(2)))
        if label in labels and not math.isnan(value := float(m.group(3))):
            out[labels[label]] = out.get(labels[label], 0.0) + value
    return out


def statements_per_event(
    before: Mapping[str, float], after: Mapping[str, float], events: int
) -> dict[str, Any]:
    """Cassandra statements per event between two readings of the counter, total and by kind."""
    by_kind = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in sorted({*before, *after})}
    total = sum(by_kind.values())
    return {
        "cassandra_statements": total,
        "cassandra_statements_by_kind": by_kind,
        "cassandra_statements_per_event": total / events if events else None,
    }


#: Stages of a batch on the worker's event path, in order (the checkpoint task's ``state_flush``
#: and ``commit`` run beside them, every commit interval).
BATCH_STAGES = ("decode", "state_ensure", "apply", "retrieval", "serialise", "produce")
STAGE_SUM, STAGE_COUNT = "recstream_stage_seconds_sum", "recstream_stage_seconds_count"


def stage_readings(metrics_text: str) -> dict[str, tuple[float, float]]:
    """``stage -> (seconds, calls)`` of the worker's ``recstream_stage_seconds`` histogram."""
    sums = counter_by_label(metrics_text, STAGE_SUM, "stage")
    counts = counter_by_label(metrics_text, STAGE_COUNT, "stage")
    return {k: (sums[k], counts.get(k, 0.0)) for k in sums}


def stage_profile(
    before: Mapping[str, tuple[float, float]],
    after: Mapping[str, tuple[float, float]],
    events: int,
    wall_s: float,
) -> dict[str, Any]:
    """Where the worker's time went between two readings of its stage histograms.

    Returns ``stages`` (per stage: ``calls``, ``ms_per_call``, ``us_per_event`` and ``share`` of
    the wall time ``wall_s``) and ``outside_share``: the part of the wall time no batch stage
    accounts for (Faust and aiokafka delivering the messages, the event loop, waiting for the
    producer and the other threads on a shared core).
    """
    stages: dict[str, dict[str, float]] = {}
    for k in sorted(after):
        s0, n0 = before.get(k, (0.0, 0.0))
        secs, calls = after[k][0] - s0, after[k][1] - n0
        if calls <= 0:
            continue
        stages[k] = {
            "calls": calls,
            "ms_per_call": 1000 * secs / calls,
            "us_per_event": 1e6 * secs / events if events else 0.0,
            "share": secs / wall_s if wall_s else 0.0,
        }
    inside = sum(v["share"] for k, v in stages.items() if k in BATCH_STAGES)
    return {"stages": stages, "outside_share": max(0.0, 1.0 - inside), "wall_s": wall_s, "events": events}


# --- events and passthrough baselines of the end-to-end benchmarks --------------------------


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


def faust_app_id(src: str) -> str:
    """The Faust passthrough's app id (its group; Faust names a topic after it, deleted after)."""
    return f"faust-passthrough-{src}"


def faust_passthrough(settings: Settings, src: str, dst: str) -> None:
    """What Faust itself costs: an agent taking batches of ``src`` and producing each to ``dst``.

    The same consumer set-up as the worker (``take_events`` batches, acks off, the producer
    not awaited per message), no work: its rate is the ceiling the worker's Faust layer allows.
    """
    import faust

    from streams.kafka_config import faust_credentials

    app = faust.App(
        faust_app_id(src),
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
