"""``recstream bench``: print benchmark figures, write JSON, a PNG and docs/BENCHMARKS.md.

Layout of the JSON report (``--out``, default ``<reports_dir>/bench.json``: ``reports/`` of a
source checkout; the Markdown and PNG go to ``docs_dir``, ``docs/`` there); keys of earlier
versions keep their names and meaning::

    date, machine (one line), device, seconds, repeats   what ran, where (kept as before)
    results.{text_batch1,text_dynamic_c16,fusion_c16,cassandra_upserts}
                                      name, ops_per_s, p50_ms, p99_ms, n
    text_dynamic_batching_ratio       text encoder, dynamic batching at 16 callers / batch 1
    stream.<key>                      end to end, one worker (empty with --skip-stream):
        name, events_per_s, p50_ms, p95_ms, p99_ms, events, repeats   every key
        key click: click path bursts, plus cassandra_statements_per_event,
            cassandra_statements, cassandra_statements_by_kind.{read,write,items},
            cassandra_statements_settled (false: the group had not committed every click)
        key passthrough: bare aiokafka consume -> produce; faust_passthrough: a Faust agent
            doing the same ({name, error} when that baseline failed)
        key fresh (at --rate), fresh_1000, fresh_2000 (--fresh-rates): click events at a
            fixed offered rate, plus offered_per_s, sent_per_s, received_per_s (= events_per_s),
            received_vs_offered (1: the worker kept up) and runs[] (the same per repeat)
        key review: review path bursts (text encoder)
    stream_config                     clicks, rate, fresh_rates, fresh_seconds, reviews, ...
    load_average_1m.{start,end}
    provenance                        recstream.lab.provenance: commit, dirty, date, machine, settings
    targets                           recstream.lab.targets.outcomes_json: source, enforced, met,
                                      missed[], figures.<name>.{value,op,target,met,shortfall,unit}

``targets`` checks the required set (``--require``, exit 3 when one is missed) or, when none
is required, the documented set of docs/targets.toml (reported, never enforced).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from recstream.lab import targets as tg
from recstream.settings import load_settings

STREAM_ROWS = ("click", "passthrough", "faust_passthrough", "review")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``bench`` command."""
    p = sub.add_parser("bench", help="benchmarks against the local stack (figures checked only if --require)")
    p.add_argument("--seconds", type=float, default=8.0, help="duration of each measured loop")
    p.add_argument("--repeats", type=int, default=3, help="repeats per figure (medians reported)")
    p.add_argument("--out", type=Path, help="JSON report (default: <RECSTREAM_REPORTS_DIR>/bench.json)")
    p.add_argument(
        "--doc", type=Path, help="Markdown report, PNG beside (default: <RECSTREAM_DOCS_DIR>/BENCHMARKS.md)"
    )
    p.add_argument("--clicks", type=int, default=5000, help="clicks per click-path burst")
    p.add_argument("--rate", type=float, default=500.0, help="offered rate of the freshness run (events/s)")
    p.add_argument(
        "--fresh-rates",
        type=parse_rates,
        default=(1000.0, 2000.0),
        metavar="R,R",
        help="further freshness runs at these offered rates (default 1000,2000; '' for none)",
    )
    p.add_argument("--fresh-seconds", type=float, default=10.0, help="duration of each freshness run")
    p.add_argument("--reviews", type=int, default=300, help="reviews per review-path burst")
    p.add_argument("--skip-stream", action="store_true", help="only the Triton and Cassandra figures")
    tg.add_target_arguments(p, "bench")
    p.set_defaults(func=run)


def parse_rates(text: str) -> tuple[float, ...]:
    """``"1000,2000"`` as ``(1000.0, 2000.0)``; ``""`` as ``()`` (argparse type)."""
    try:
        rates = tuple(float(r) for r in text.split(",") if r.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of rates") from None
    if any(r <= 0 for r in rates):
        raise argparse.ArgumentTypeError("rates must be positive")
    return rates


def run(args: argparse.Namespace) -> int:
    """Bring the stack up if needed, measure, report; check the targets."""
    try:
        required, enforced = tg.targets_of(args, tg.BENCH_FIGURES)
    except tg.TargetError as exc:
        print(f"recstream bench: {exc}", file=sys.stderr)
        return 2
    if args.list_figures:
        print(tg.describe(tg.BENCH_FIGURES, required.targets))
        return 0
    import os

    from deploy.local.stack import Stack
    from recstream.lab.bench import bench_cassandra, bench_triton, machine
    from recstream.lab.bench_stream import WORKER_OVERRIDES, StreamBenchConfig, run_stream_benchmarks
    from recstream.lab.provenance import provenance
    from recstream.testing.workers import recstream_environ

    settings = load_settings()
    out: Path = args.out or settings.reports_dir / "bench.json"
    doc: Path = args.doc or settings.docs_dir / "BENCHMARKS.md"
    # Taken first: the code and machine as the run starts (the run rewrites docs/BENCHMARKS.md).
    prov = provenance(load_settings({**recstream_environ(), **WORKER_OVERRIDES}))
    load_before = os.getloadavg()[0]
    cfg = StreamBenchConfig(
        repeats=args.repeats,
        clicks=args.clicks,
        rate=args.rate,
        fresh_rates=args.fresh_rates,
        fresh_seconds=args.fresh_seconds,
        reviews=args.reviews,
    )
    started = Stack(settings).up(lambda m: print(f"[stack] {m}"))
    try:
        triton = asyncio.run(bench_triton(settings, args.seconds, args.repeats))
        cass = asyncio.run(bench_cassandra(settings, args.seconds, args.repeats))
        stream = {}
        if not args.skip_stream:
            stream = run_stream_benchmarks(settings, cfg, lambda m: print(f"[stream] {m}"))
    finally:
        if started:
            Stack(settings, started).down()
    load_after = os.getloadavg()[0]
    rows = [*triton.values(), cass]
    ratio = triton["text_dynamic_c16"].ops_per_s / triton["text_batch1"].ops_per_s
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    report: dict[str, Any] = {
        "date": when,
        "machine": machine(),
        "device": "CPU (no GPU visible)",
        "seconds": args.seconds,
        "repeats": args.repeats,
        "results": {k: asdict(v) for k, v in {**triton, "cassandra_upserts": cass}.items()},
        "text_dynamic_batching_ratio": ratio,
        "stream": stream,
        "stream_config": asdict(cfg),
        "load_average_1m": {"start": load_before, "end": load_after},
        "provenance": prov,
    }
    header = "| benchmark | ops/s | p50 ms | p99 ms | ops measured |\n|---|---:|---:|---:|---:|"
    table = "\n".join(
        [header]
        + [f"| {r.name} | {r.ops_per_s:,.1f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.n:,} |" for r in rows]
    )
    print(table)
    print(f"\ntext encoder: dynamic batching at concurrency 16 / batch 1 = {ratio:.2f}x")
    stream_md = stream_table(stream, required.targets)
    if stream:
        print(stream_md)
    status = tg.report_targets(report, required, enforced, tg.BENCH_FIGURES, "bench")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    doc.parent.mkdir(parents=True, exist_ok=True)
    png = doc.parent / "bench.png"
    plot(rows, when, png)
    doc.write_text(markdown_doc(report, table, stream_md, required, enforced))
    print(f"wrote {out}, {doc}, {png}")
    return status


def plot(rows: list[Any], when: str, png: Path) -> None:
    """Bar chart of the Triton and Cassandra loops (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.barh([r.name for r in rows], [r.ops_per_s for r in rows], color="#4a7ab5")
    ax.set_xscale("log")
    ax.set_xlabel("operations per second (log scale, medians)")
    ax.set_title(f"recstream bench, {when}")
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def markdown_doc(
    report: Mapping[str, Any], table: str, stream_md: str, required: tg.Required, enforced: bool
) -> str:
    """docs/BENCHMARKS.md."""
    from recstream.lab.provenance import describe

    load = report["load_average_1m"]
    t = report["targets"]
    batching = target_text(required.targets, "text_dynamic_batching_ratio")
    return (
        "# Benchmarks\n\n"
        "Produced by `make bench` (`recstream bench`); figures are medians over repeated runs on a\n"
        "shared machine, so compare ratios measured in one run rather than absolute numbers.\n"
        "How to read them, the profile's story and what stands in the way of 10,000 events/s per\n"
        "worker: [PERFORMANCE.md](PERFORMANCE.md).\n\n"
        f"- Date: {report['date']}\n- Code: {describe(report['provenance'])}\n"
        f"- Machine: {report['machine']}\n- Device: {report['device']}\n"
        f"- Each loop: {report['seconds']:.0f} s, {report['repeats']} repeats\n"
        f"- Load average (1 min) at start / end: {load['start']:.2f} / {load['end']:.2f} "
        "(anything else running on the machine shows here)\n\n"
        f"{table}\n\n"
        "Text encoder, dynamic batching at concurrency 16 vs batch 1: "
        f"**{report['text_dynamic_batching_ratio']:.2f}x**{batching}.\n\n"
        f"{stream_md}\n"
        f"## Targets\n\nFrom {t['source']}; "
        f"{'required in this run' if enforced else 'reported, not enforced (`--require` enforces them)'}: "
        f"**{'all met' if t['met'] else 'missed: ' + ', '.join(t['missed'])}**.\n\n"
        f"{tg.markdown(t['figures'])}\n\n"
        "![bench](bench.png)\n\n"
        "GPU figures: none recorded yet (no GPU machine was lent to the session that ran this).\n"
    )


def target_text(targets: Mapping[str, float], name: str) -> str:
    """`` (target >= 2,000)`` for a figure with a target, else ``""``."""
    if name not in targets:
        return ""
    f = tg.BENCH_FIGURES[name]
    return f" (target {f.op} {targets[name]:,g})"


def _row(r: Mapping[str, Any]) -> str:
    if "error" in r:
        return f"| {r['name']} | failed: {r['error']} | | | | |"
    return (
        f"| {r['name']} | {float(r['events_per_s']):,.0f} | {float(r['p50_ms']):.1f} | "
        f"{float(r['p95_ms']):.1f} | {float(r['p99_ms']):.1f} | {int(r['events']):,} |"
    )


def profile_table(profile: Mapping[str, Any]) -> str:
    """Where a click's time went on the worker (its stage histograms over the click bursts)."""
    from recstream.lab.bench import BATCH_STAGES

    stages = profile["stages"]
    order = [k for k in BATCH_STAGES if k in stages] + sorted(k for k in stages if k not in BATCH_STAGES)
    rows = [
        "### Where a click's time goes\n",
        f"The worker's stage histograms (`recstream_stage_seconds`) over the click bursts: "
        f"{int(profile['events']):,} clicks in {float(profile['wall_s']):.2f} s of burst wall time. "
        "Batch stages run one after another on the event loop; `state_flush` and `commit` run in "
        "the checkpoint task beside them (`commit` includes the flush).\n",
        "| stage | calls | ms per call | µs per click | share of wall time |",
        "|---|---:|---:|---:|---:|",
    ]
    for k in order:
        v = stages[k]
        rows.append(
            f"| {k} | {int(v['calls']):,} | {v['ms_per_call']:.2f} | {v['us_per_event']:.1f} | "
            f"{100 * v['share']:.1f} % |"
        )
    rows.append(
        f"| outside the batch stages (Faust and aiokafka delivering, the event loop, other "
        f"threads on shared cores) | | | | {100 * float(profile['outside_share']):.1f} % |"
    )
    return "\n".join(rows)


def fresh_keys(stream: Mapping[str, Any]) -> list[str]:
    """The freshness runs of a report's ``stream``, slowest offered rate first."""
    keys = [k for k in stream if k == "fresh" or k.startswith("fresh_")]
    return sorted(keys, key=lambda k: float(stream[k].get("offered_per_s", 0.0)))


def freshness_table(stream: Mapping[str, Any]) -> str:
    """Offered vs sent vs received rate of each freshness run (did the worker keep up?)."""
    rows = [
        "| offered events/s | sent events/s | lists received /s (each run) | received / offered | p99 ms |",
        "|---:|---:|---:|---:|---:|",
    ]
    for key in fresh_keys(stream):
        r = stream[key]
        if "offered_per_s" not in r:  # a report of an earlier version
            continue
        each = ", ".join(f"{float(x['received_per_s']):,.0f}" for x in r.get("runs", []))
        rows.append(
            f"| {float(r['offered_per_s']):,.0f} | {float(r['sent_per_s']):,.0f} | "
            f"{float(r['received_per_s']):,.0f} ({each}) | {float(r['received_vs_offered']):.3f} | "
            f"{float(r['p99_ms']):.1f} |"
        )
    return "\n".join(rows)


def stream_table(stream: Mapping[str, Any], targets: Mapping[str, float] | None = None) -> str:
    """Markdown of the end-to-end figures: rows, freshness rates, ratios to the passthroughs.

    ``targets`` (figure name -> target, e.g. the documented set) are quoted next to the figures.
    """
    targets = targets or {}
    if not stream:
        return "End-to-end stream figures: not measured in this run (--skip-stream).\n"
    rows = [
        "## End to end (one worker, Kafka + Cassandra + Triton on the same machine)\n",
        "| benchmark | events/s | p50 ms | p95 ms | p99 ms | events |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    order = [*STREAM_ROWS[:-1], *fresh_keys(stream), STREAM_ROWS[-1]]
    rows += [_row(stream[k]) for k in order if k in stream]
    click = stream["click"]
    bullets = []
    for key, fig in (
        ("passthrough", "click_vs_passthrough"),
        ("faust_passthrough", "click_vs_faust_passthrough"),
    ):
        value = tg.BENCH_FIGURES[fig].value({"stream": stream})
        if value is not None:
            bullets.append(
                f"- Click path / {stream[key]['name']}, same run: **{value:.2f}**{target_text(targets, fig)}."
            )
    bullets.insert(
        0,
        f"- Click path: **{float(click['events_per_s']):,.0f} events/s**"
        f"{target_text(targets, 'click_events_per_s')}, goal 10,000.",
    )
    per = click.get("cassandra_statements_per_event")
    if per is not None:
        kinds = ", ".join(f"{k} {v:,.0f}" for k, v in click["cassandra_statements_by_kind"].items())
        settled = "" if click.get("cassandra_statements_settled", True) else " (not all written when read)"
        bullets.append(
            f"- Cassandra statements per click: **{per:.3f}** ({kinds} over {int(click['events']):,} "
            f"clicks){settled}."
        )
    profile = click.get("profile")
    if "fresh" in stream:
        bullets.append(
            f"- Freshness p99 at {float(stream['fresh'].get('offered_per_s', 0)):,.0f} offered events/s: "
            f"**{float(stream['fresh']['p99_ms']):.1f} ms**{target_text(targets, 'freshness_p99_ms')}; "
            "measured from the event's timestamp to the list's arrival at an external consumer. When "
            "the worker cannot sustain the offered rate (received / offered below 1 in the table "
            "below), a backlog builds and these figures are queueing time."
        )
    bullets.append(
        "- Burst latencies (click, passthrough, review rows) are send -> list received for a "
        "burst produced as fast as possible, so they include queueing behind the burst."
    )
    goal = targets.get("freshness_received_vs_offered")
    caption = (
        "Freshness runs, did the worker keep up? Received: lists per second from the first event "
        "sent to the last list received"
        + ("." if goal is None else f"; target for received / offered at the fixed rate: >= {goal:g}.")
    )
    fresh = ["", caption, "", freshness_table(stream)] if "fresh" in stream else []
    prof = ["", profile_table(profile)] if profile else []
    return "\n".join([*rows, "", *bullets, *fresh, *prof]) + "\n"
