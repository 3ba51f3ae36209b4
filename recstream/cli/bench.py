"""``recstream bench``: print benchmark figures, write JSON, a PNG and docs/BENCHMARKS.md."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
from dataclasses import asdict
from pathlib import Path

from recstream.settings import REPO_ROOT, load_settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``bench`` command."""
    p = sub.add_parser("bench", help="benchmarks against the local stack (figures printed, never asserted)")
    p.add_argument("--seconds", type=float, default=8.0, help="duration of each measured loop")
    p.add_argument("--repeats", type=int, default=3, help="repeats per figure (medians reported)")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "reports" / "bench.json", help="JSON report")
    p.add_argument("--doc", type=Path, default=REPO_ROOT / "docs" / "BENCHMARKS.md", help="Markdown report")
    p.add_argument("--clicks", type=int, default=5000, help="clicks per click-path burst")
    p.add_argument("--rate", type=float, default=500.0, help="offered rate of the freshness run (events/s)")
    p.add_argument("--fresh-seconds", type=float, default=10.0, help="duration of each freshness run")
    p.add_argument("--reviews", type=int, default=300, help="reviews per review-path burst")
    p.add_argument("--skip-stream", action="store_true", help="only the Triton and Cassandra figures")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Bring the stack up if needed, measure, report."""
    import matplotlib

    matplotlib.use("Agg")
    import os

    import matplotlib.pyplot as plt

    from deploy.local.stack import Stack
    from streams.bench import bench_cassandra, bench_triton, machine
    from streams.bench_stream import StreamBenchConfig, run_stream_benchmarks

    settings = load_settings()
    load_before = os.getloadavg()[0]
    started = Stack(settings).up(lambda m: print(f"[stack] {m}"))
    try:
        triton = asyncio.run(bench_triton(settings, args.seconds, args.repeats))
        cass = asyncio.run(bench_cassandra(settings, args.seconds, args.repeats))
        stream = {}
        if not args.skip_stream:
            cfg = StreamBenchConfig(
                repeats=args.repeats,
                clicks=args.clicks,
                rate=args.rate,
                fresh_seconds=args.fresh_seconds,
                reviews=args.reviews,
            )
            stream = run_stream_benchmarks(settings, cfg, lambda m: print(f"[stream] {m}"))
    finally:
        if started:
            Stack(settings, started).down()
    load_after = os.getloadavg()[0]
    rows = [*triton.values(), cass]
    ratio = triton["text_dynamic_c16"].ops_per_s / triton["text_batch1"].ops_per_s
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    report = {
        "date": when,
        "machine": machine(),
        "device": "CPU (no GPU visible)",
        "seconds": args.seconds,
        "repeats": args.repeats,
        "results": {k: asdict(v) for k, v in {**triton, "cassandra_upserts": cass}.items()},
        "text_dynamic_batching_ratio": ratio,
        "stream": stream,
        "load_average_1m": {"start": load_before, "end": load_after},
    }
    header = "| benchmark | ops/s | p50 ms | p99 ms | ops measured |\n|---|---:|---:|---:|---:|"
    table = "\n".join(
        [header]
        + [f"| {r.name} | {r.ops_per_s:,.1f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.n:,} |" for r in rows]
    )
    print(table)
    print(f"\ntext encoder: dynamic batching at concurrency 16 / batch 1 = {ratio:.2f}x")
    stream_md = stream_table(stream)
    if stream:
        print(stream_md)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    png = args.doc.parent / "bench.png"
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.barh([r.name for r in rows], [r.ops_per_s for r in rows], color="#4a7ab5")
    ax.set_xscale("log")
    ax.set_xlabel("operations per second (log scale, medians)")
    ax.set_title(f"recstream bench, {when}")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    args.doc.write_text(
        "# Benchmarks\n\n"
        "Produced by `make bench` (`recstream bench`); figures are medians over repeated runs on a\n"
        "shared machine, so compare ratios measured in one run rather than absolute numbers.\n\n"
        f"- Date: {when}\n- Machine: {report['machine']}\n- Device: {report['device']}\n"
        f"- Each loop: {args.seconds:.0f} s, {args.repeats} repeats\n"
        f"- Load average (1 min) at start / end: {load_before:.2f} / {load_after:.2f} (2 cores; "
        "anything else running on the machine shows here)\n\n"
        f"{table}\n\n"
        f"Text encoder, dynamic batching at concurrency 16 vs batch 1: **{ratio:.2f}x** (target >= 3x).\n\n"
        f"{stream_md}\n"
        "![bench](bench.png)\n\n"
        "GPU figures: none recorded yet (no GPU machine was lent to the session that ran this).\n"
    )
    print(f"wrote {args.out}, {args.doc}, {png}")
    return 0


def stream_table(stream: dict[str, dict[str, float | int | str]]) -> str:
    """Markdown of the end-to-end figures, with the click path's ratio to the passthrough."""
    if not stream:
        return "End-to-end stream figures: not measured in this run (--skip-stream).\n"
    rows = [
        "## End to end (one worker, Kafka + Cassandra + Triton on the same machine)\n",
        "| benchmark | events/s | p50 ms | p95 ms | p99 ms | events |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key in ("click", "passthrough", "fresh", "review"):
        r = stream[key]
        rows.append(
            f"| {r['name']} | {float(r['events_per_s']):,.0f} | {float(r['p50_ms']):.1f} | "
            f"{float(r['p95_ms']):.1f} | {float(r['p99_ms']):.1f} | {int(r['events']):,} |"
        )
    ratio = float(stream["click"]["events_per_s"]) / float(stream["passthrough"]["events_per_s"])
    rows += [
        "",
        f"- Click path / bare aiokafka passthrough, same run: **{ratio:.2f}** "
        f"(click path {float(stream['click']['events_per_s']):,.0f} events/s; target >= 2,000, goal 10,000).",
        f"- Freshness p99 at the fixed offered rate: **{float(stream['fresh']['p99_ms']):.1f} ms** "
        "(target <= 50 ms); measured from the event's timestamp to the list's arrival at an "
        "external consumer. When the worker cannot sustain the offered rate, a backlog builds "
        "and these figures are queueing time.",
        "- Burst latencies (click, passthrough, review rows) are send -> list received for a "
        "burst produced as fast as possible, so they include queueing behind the burst.",
    ]
    return "\n".join(rows) + "\n"
