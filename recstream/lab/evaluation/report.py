"""The evaluation report: JSON (figures and metadata), a Markdown table and a PNG plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from recstream.lab.evaluation.inprocess import SYSTEMS, RunResult
from recstream.lab.evaluation.protocol import COLD_ITEM_MAX

#: The scorable-event definition, stored in every report (see :mod:`recstream.lab.evaluation.protocol`).
SCORABLE = (
    "clicks (ratings) with interaction order >= ml.cut_order(cut) (ties in time keep file order), "
    "whose user had a previous event of any type, and whose item the user had not clicked before "
    "(reviews do not make an item 'had'); reviews and uploads are not scored"
)


def build_report(result: RunResult, metadata: dict[str, Any]) -> dict[str, Any]:
    """The JSON-ready report.

    Args:
        result: Output of :func:`recstream.lab.evaluation.inprocess.run_inprocess`.
        metadata: Extra fields (dataset, fingerprint, mode, total time, ...).
    """
    k = result.k
    order = [s for s in SYSTEMS if s in result.tallies] + [s for s in result.tallies if s not in SYSTEMS]
    systems = {name: result.tallies[name].figures(k) for name in order}
    return {
        "k": k,
        "systems": systems,
        "events": result.event_counts,
        "protocol": {
            "scorable": SCORABLE,
            "cold_item": f"fewer than {COLD_ITEM_MAX} interactions (clicks and reviews) before the event",
            "exclude": "items the user already had (recstream: its seen items, which include reviewed ones)",
        },
        "model": result.model,
        "timings": {key: round(v, 2) for key, v in result.timings.items()},
        **metadata,
    }


def markdown_table(report: dict[str, Any]) -> str:
    """A Markdown table of the headline figures of every system."""
    k = report["k"]
    cols = [
        (f"HR@{k}", f"hr@{k}"),
        (f"NDCG@{k}", f"ndcg@{k}"),
        (f"cold HR@{k}", f"cold_hr@{k}"),
        (f"warm-user HR@{k}", f"warm_user_hr@{k}"),
        ("events", "events"),
    ]
    lines = [
        "| system | " + " | ".join(c for c, _ in cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for name, fig in report["systems"].items():
        cells = [f"{fig[key]:.4f}" if isinstance(fig[key], float) else f"{fig[key]:,}" for _, key in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    any_fig: dict[str, Any] = next(iter(report["systems"].values()), {})
    if any_fig:
        lines.append("")
        lines.append(
            f"cold-item events: {any_fig['cold_events']:,}; warm-user events (history before the cut): "
            f"{any_fig['warm_user_events']:,}; model {report['model'].get('model_version', '?')}, "
            f"cut {report['model'].get('cut_frac')}"
        )
    return "\n".join(lines) + "\n"


def rolling(series: list[float], window: int) -> np.ndarray:
    """Trailing mean over ``window`` values (shorter at the start)."""
    x = np.asarray(series, dtype=np.float64)
    if len(x) == 0:
        return x
    c = np.cumsum(np.insert(x, 0, 0.0))
    idx = np.arange(1, len(x) + 1)
    lo = np.maximum(idx - window, 0)
    return np.asarray((c[idx] - c[lo]) / (idx - lo))


def plot_rolling_hr(result: RunResult, path: Path, window: int = 1000) -> Path:
    """PNG of HR@K over time: trailing mean over ``window`` scored events, one line per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    win = max(1, min(window, len(result.scored_ts) // 5 or 1))
    times = np.asarray(result.scored_ts, dtype="datetime64[ms]")
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for name, tally in result.tallies.items():
        if tally.series:
            ax.plot(times, rolling(tally.series, win), lw=1.2, label=name)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))
    ax.set_xlabel("event time of the scored click")
    ax.set_ylabel(f"HR@{result.k} (trailing {win} scored events)")
    ax.set_title("prequential HR over time")
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(report: dict[str, Any], result: RunResult, out: Path) -> dict[str, Path]:
    """Write ``out`` (JSON), ``out`` with ``.md`` and ``.png`` suffixes; returns the paths."""
    out.parent.mkdir(parents=True, exist_ok=True)
    md = out.with_suffix(".md")
    png = out.with_suffix(".png")
    plot_rolling_hr(result, png)
    report = {**report, "files": {"markdown": md.name, "plot": png.name}}  # beside the JSON
    out.write_text(json.dumps(report, indent=1, sort_keys=False) + "\n")
    md.write_text(markdown_table(report))
    return {"json": out, "markdown": md, "plot": png}
