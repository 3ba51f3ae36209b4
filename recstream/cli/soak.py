"""``recstream soak``: a real worker at a fixed offered rate for minutes, measured from outside.

Creates an isolated deployment (own topics, consumer group, keyspace) on the stack the
``RECSTREAM_*`` settings name, starts one worker, sends MovieLens events (cycled, stamped with
the wall clock) at ``--rate`` for ``--minutes``, then waits for the backlog to drain. Writes
the JSON report (RECSTREAM_REPORTS_DIR), a PNG plot and the soak section of RELIABILITY.md
(RECSTREAM_DOCS_DIR: docs/ of a source checkout). Exit code 1 when an
event got no list, the worker died, or the lag never returned to zero; 3 when the run worked
but missed a target required with --require (docs/targets.toml, set [soak]: 500 events/s for
10 minutes, freshness p99 <= 100 ms, lag back to 0 within 10 s, RSS flat after the warm-up).
The report records its provenance (commit, tree state, machine, worker settings) and the
targets it was checked against.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
from pathlib import Path
from typing import Any

from recstream.lab import targets as tg
from recstream.settings import REPO_ROOT

#: The sample dataset of the source checkout (read only; not part of an installed wheel).
SAMPLE = REPO_ROOT / "deploy" / "local" / "sample" / "movielens"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``soak`` command."""
    p = sub.add_parser(
        "soak",
        help="fixed-rate soak of one real worker: throughput, freshness p99, peak RSS, lag",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--rate", type=float, default=200.0, help="offered events per second (default 200)")
    p.add_argument("--minutes", type=float, default=10.0, help="how long to offer them (default 10)")
    p.add_argument(
        "--dataset", default=f"movielens:{SAMPLE}", metavar="movielens:DIR", help="events to cycle through"
    )
    p.add_argument("--out", type=Path, help="JSON (default: <RECSTREAM_REPORTS_DIR>/chaos/soak.json)")
    p.add_argument("--doc", type=Path, help="Markdown doc (default: <RECSTREAM_DOCS_DIR>/RELIABILITY.md)")
    p.add_argument("--keep", action="store_true", help="keep the deployment's topics and keyspace")
    tg.add_target_arguments(p, "soak")
    p.set_defaults(func=run)


def plot(report: dict[str, Any], png: Path) -> None:
    """Throughput, freshness p99, lag and RSS over time, one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tl = report["timeline"]
    t = [r["t"] for r in tl]
    fig, axes = plt.subplots(4, 1, figsize=(9, 9), sharex=True)
    win = [10 * (i + 0.5) for i in range(len(report["throughput_windows"]))]
    axes[0].plot(win, report["throughput_windows"], label="lists published /s")
    axes[0].axhline(report["offered_rate_per_s"], color="grey", ls="--", label="offered /s")
    axes[0].set_ylabel("events/s")
    axes[0].legend(loc="lower right")
    p99 = [v / 1000 if not math.isnan(v) else None for v in report["freshness_p99_windows_ms"]]
    axes[1].plot(win, p99, color="#c0504d")
    axes[1].set_ylabel("freshness p99 (s)")
    axes[1].set_yscale("log")
    axes[2].plot(t, [r["lag"] if r["lag"] is not None else float("nan") for r in tl], color="#9bbb59")
    axes[2].set_ylabel("consumer lag")
    axes[2].axvline(report["seconds"], color="grey", ls=":")
    axes[3].plot(t, [r["rss_kib"] / 1024 for r in tl], color="#4a7ab5")
    axes[3].set_ylabel("worker RSS (MiB)")
    axes[3].set_xlabel("seconds since start (dotted: sending stops)")
    fig.suptitle(f"recstream soak: {report['offered_rate_per_s']:.0f} events/s offered, {report['date']}")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)


def required_args(args: argparse.Namespace) -> str:
    """The target options of the command line, as typed (for the report's ``command``)."""
    out = ""
    if args.require is not None:
        out += " --require" + (f" {args.require}" if args.require else "")
    if args.require_file is not None:
        out += f" --require-file {args.require_file}"
    if args.target_set != "soak":
        out += f" --target-set {args.target_set}"
    return out


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def outcome(worked: bool, target_status: int) -> str:
    """The run's one-word verdict: a run that worked but missed a required target is no pass."""
    if not worked:
        return "FAIL"
    return "pass" if target_status == 0 else "missed required targets"


def summary(report: dict[str, Any], png_name: str) -> str:
    """The soak section of docs/RELIABILITY.md."""
    from recstream.lab.provenance import describe

    f, rss, lag = report["freshness_ms"], report["rss_mib"], report["lag"]
    zero = "never" if lag["zero_after_s"] is None else f"{lag['zero_after_s']:.0f} s"
    growth = rss.get("growth_after_warmup_pct")
    flat = (
        f"| worker RSS after the warm-up ({rss['warmup_s']:.0f} s) / end of sending / growth | "
        f"{_mib(rss['after_warmup'])} / {_mib(rss['end_of_sending'])} MiB / "
        f"{'-' if growth is None else f'{growth:+.1f} %'} |\n"
        if "warmup_s" in rss
        else ""
    )
    code = f"Code: {describe(report['provenance'])}.\n\n" if "provenance" in report else ""
    t = report.get("targets")
    targets = (
        f"\n\nTargets ({t['source']}, {'required' if t['enforced'] else 'not enforced'}): "
        f"**{'all met' if t['met'] else 'missed: ' + ', '.join(t['missed'])}**.\n\n"
        f"{tg.markdown(t['figures'])}"
        if t
        else ""
    )
    return (
        f"Outcome: **{report['outcome']}** ({report['date']}, `{report['command']}`, stack: "
        f"{report['stack']}, dataset {report['dataset']}).\n\n{code}"
        "| figure | value |\n|---|---:|\n"
        f"| offered rate | {report['offered_rate_per_s']:.0f} events/s for {report['seconds']:.0f} s |\n"
        f"| events sent / got a list | {report['sent']:,} / {report['lists_distinct']:,} |\n"
        f"| throughput (lists of distinct events while sending) | {report['throughput_per_s']:.1f} /s |\n"
        f"| freshness p50 / p95 / p99 / max | {f['p50'] / 1000:.2f} / {f['p95'] / 1000:.2f} / "
        f"{f['p99'] / 1000:.2f} / {f['max'] / 1000:.2f} s |\n"
        f"| worker RSS start / end / peak | {rss['start']:.0f} / {rss['end']:.0f} / {rss['peak']:.0f} MiB |\n"
        f"{flat}"
        f"| consumer lag: max / back to 0 after sending stopped | {lag['max']:,.0f} / {zero} |"
        f"{targets}\n\n"
        f"![soak]({png_name})"
    )


def run(args: argparse.Namespace) -> int:
    """Run the soak and write the report, plot and doc section; check the targets."""
    try:
        required, enforced = tg.targets_of(args, tg.SOAK_FIGURES)
    except tg.TargetError as exc:
        print(f"recstream soak: {exc}", file=sys.stderr)
        return 2
    if args.list_figures:
        print(tg.describe(tg.SOAK_FIGURES, required.targets))
        return 0
    from recstream.lab.datasets import load_movielens, parse_dataset_arg
    from recstream.lab.provenance import provenance
    from recstream.lab.replay import movielens_events
    from recstream.lab.soak import SoakConfig, replace_section, run_soak
    from recstream.settings import load_settings
    from recstream.testing.workers import Deployment, recstream_environ

    settings = load_settings()
    out: Path = args.out or settings.reports_dir / "chaos" / "soak.json"
    doc_path: Path = args.doc or settings.docs_dir / "RELIABILITY.md"
    base = recstream_environ()
    base.setdefault("RECSTREAM_LOG_LEVEL", "WARNING")
    events = list(movielens_events(load_movielens(parse_dataset_arg(args.dataset))))
    deployment = Deployment.create(base, out.parent / "logs" / "soak")
    prov = provenance(deployment.settings)  # the code and machine as the run starts
    print(f"[soak] {len(events):,} events to cycle; deployment {deployment.settings.consumer_group}")
    try:
        report = run_soak(deployment, events, SoakConfig(rate=args.rate, seconds=args.minutes * 60))
    finally:
        if args.keep:
            deployment.stop_all()
        else:
            deployment.drop()
    ok = report["missing"] == 0 and report["worker_alive"] and report["lag"]["zero_after_s"] is not None
    report.update(
        outcome=outcome(ok, 0),
        date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        command=f"recstream soak --rate {args.rate:g} --minutes {args.minutes:g} --dataset {args.dataset}"
        + required_args(args),
        stack=f"Kafka {settings.kafka_bootstrap_servers}, Cassandra :{settings.cassandra_port}, "
        f"Triton {settings.triton_grpc_url}",
        dataset=args.dataset.split("/")[-1],
        minutes=args.minutes,
        provenance=prov,
    )
    status = tg.report_targets(report, required, enforced, tg.SOAK_FIGURES, "soak")
    report["outcome"] = outcome(ok, status)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    doc_path.parent.mkdir(parents=True, exist_ok=True)
    png = doc_path.parent / "soak.png"
    plot(report, png)
    doc = doc_path.read_text() if doc_path.exists() else "# Reliability\n"
    doc_path.write_text(replace_section(doc, "soak", summary(report, png.name)))
    print(summary(report, png.name))
    print(f"[soak] report {out}, plot {png}, doc {doc_path}", file=sys.stderr)
    return status if ok else 1
