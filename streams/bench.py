"""Benchmarks against the running local stack. Figures are printed, never asserted.

Each measurement runs for a fixed duration and reports throughput with latency percentiles;
``repeats`` runs give medians. Ratios (batched vs batch 1) come from the same run, since the
machines are shared and absolute numbers drift.
"""

from __future__ import annotations

import asyncio
import platform
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from recstream.settings import Settings

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
