"""Required figures ("targets") of ``recstream bench`` and ``recstream soak``: parse and check.

The documented targets live in one file of the repository, ``docs/targets.toml`` (part of the
docs, not of an installed wheel: run from one, there is no documented set and ``--require-file
PATH`` names a targets file explicitly): one table per named set
(``[bench]``, ``[soak]``), each mapping a figure name to its target. A figure's direction is
fixed by the catalogue of the command (:data:`BENCH_FIGURES`, :data:`SOAK_FIGURES`): rates
and ratios are minima, latencies, delays, growth and counts are maxima, so ``name = value``
is all a target needs, in the file and on the command line (``--require a=1,b=2``).

Parsing and checking are pure functions; the commands load the targets before running (a
typo fails in seconds, not after a ten-minute soak) and check the finished report with
:func:`check`. The last section is the command-line glue both commands share.
"""

from __future__ import annotations

import argparse
import math
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recstream.settings import source_checkout

_CHECKOUT = source_checkout()
#: The documented targets, ``docs/targets.toml`` of the source checkout the code runs from;
#: None when there is none (an installed wheel).
TARGETS_FILE: Path | None = _CHECKOUT / "docs" / "targets.toml" if _CHECKOUT else None
#: What a report names as the source of its targets when there is no documented file.
NO_DOCUMENTED = "no documented targets (not a source checkout; --require-file PATH names a file)"
#: Exit status of a command whose run worked but missed a required target.
EXIT_TARGET_MISSED = 3


class TargetError(ValueError):
    """A target specification that cannot be used (syntax, unknown figure, missing set)."""


@dataclass(frozen=True)
class Figure:
    """One figure a report carries, and which way is better.

    Attributes:
        name: What targets call it.
        path: Dotted path of the value in the report (``stream.click.events_per_s``).
        at_least: True: the figure must reach the target (>=); False: stay within it (<=).
        unit: Shown after values.
        description: What it measures, for ``--list-figures``.
        per: Optional dotted path of a divisor (the figure is then ``path / per``).
    """

    name: str
    path: str
    at_least: bool
    unit: str
    description: str
    per: str | None = None

    @property
    def op(self) -> str:
        """``>=`` or ``<=``."""
        return ">=" if self.at_least else "<="

    def value(self, report: Mapping[str, Any]) -> float | None:
        """The figure in ``report``; None when the report lacks it (not measured)."""
        top = lookup(report, self.path)
        if top is None or self.per is None:
            return top
        bottom = lookup(report, self.per)
        return None if not bottom else top / bottom


def lookup(report: Mapping[str, Any], path: str) -> float | None:
    """The number at dotted ``path`` of ``report``; None when absent, not a number, or NaN."""
    node: Any = report
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, int | float) or math.isnan(node):
        return None
    return float(node)


def _catalogue(*figures: Figure) -> dict[str, Figure]:
    return {f.name: f for f in figures}


def _freshness(suffix: str, key: str, what: str) -> tuple[Figure, ...]:
    return (
        Figure(f"freshness{suffix}_rate_per_s", f"stream.{key}.offered_per_s", True, "events/s",
               f"offered rate of the {what} freshness run"),
        Figure(f"freshness{suffix}_p99_ms", f"stream.{key}.p99_ms", False, "ms",
               f"freshness p99 (event timestamp -> list received), {what} run"),
        Figure(f"freshness{suffix}_received_vs_offered", f"stream.{key}.received_vs_offered", True, "x",
               f"lists received per second / offered per second, {what} run (1: the worker kept up)"),
    )  # fmt: skip


#: Figures of ``recstream bench`` (paths into reports/bench.json).
BENCH_FIGURES = _catalogue(
    Figure("click_events_per_s", "stream.click.events_per_s", True, "events/s",
           "click path, one worker, events/s over a burst"),
    Figure("click_vs_passthrough", "stream.click.events_per_s", True, "x",
           "click path / bare aiokafka consume -> produce passthrough, same run",
           per="stream.passthrough.events_per_s"),
    Figure("click_vs_faust_passthrough", "stream.click.events_per_s", True, "x",
           "click path / Faust agent passthrough (no work), same run",
           per="stream.faust_passthrough.events_per_s"),
    Figure("passthrough_events_per_s", "stream.passthrough.events_per_s", True, "events/s",
           "bare aiokafka consume -> produce passthrough"),
    Figure("faust_passthrough_events_per_s", "stream.faust_passthrough.events_per_s", True, "events/s",
           "Faust agent consume -> produce passthrough"),
    Figure("cassandra_statements_per_event", "stream.click.cassandra_statements_per_event", False,
           "statements", "Cassandra requests per click over the measured click bursts"),
    *_freshness("", "fresh", "fixed-rate (--rate)"),
    *_freshness("_1000", "fresh_1000", "1,000 events/s"),
    *_freshness("_2000", "fresh_2000", "2,000 events/s"),
    Figure("review_events_per_s", "stream.review.events_per_s", True, "events/s",
           "review path (text encoder), one worker, events/s over a burst"),
    Figure("text_dynamic_batching_ratio", "text_dynamic_batching_ratio", True, "x",
           "text encoder, dynamic batching at 16 callers / batch 1"),
)  # fmt: skip

#: Figures of ``recstream soak`` (paths into reports/chaos/soak.json).
SOAK_FIGURES = _catalogue(
    Figure("offered_rate_per_s", "offered_rate_per_s", True, "events/s", "offered rate"),
    Figure("minutes", "minutes", True, "min", "how long the rate was offered"),
    Figure("events_per_s", "throughput_per_s", True, "events/s",
           "lists of distinct events published per second while sending"),
    Figure("freshness_p99_ms", "freshness_ms.p99", False, "ms",
           "freshness p99 (event timestamp -> list published)"),
    Figure("lag_zero_after_s", "lag.zero_after_s", False, "s",
           "consumer lag back to 0 this long after sending stopped (never: missed)"),
    Figure("rss_growth_after_warmup_pct", "rss_mib.growth_after_warmup_pct", False, "%",
           "worker RSS growth from the end of the warm-up to the end of sending"),
    Figure("missing", "missing", False, "events", "events that never got a list"),
)  # fmt: skip

FIGURE_SETS: dict[str, dict[str, Figure]] = {"bench": BENCH_FIGURES, "soak": SOAK_FIGURES}


def _number(name: str, raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise TargetError(f"target {name!r}: {raw!r} is not a number")
    try:
        value = float(raw)
    except ValueError:
        raise TargetError(f"target {name!r}: {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise TargetError(f"target {name!r}: {raw!r} is not a finite number")
    return value


def _known(names: Sequence[str], catalogue: Mapping[str, Figure]) -> None:
    unknown = [n for n in names if n not in catalogue]
    if unknown:
        raise TargetError(f"unknown figure(s) {', '.join(unknown)}; known: {', '.join(catalogue)}")


def parse_require(spec: str, catalogue: Mapping[str, Figure]) -> dict[str, float]:
    """``"a=1,b=2.5"`` as ``{"a": 1.0, "b": 2.5}``; every name must be in ``catalogue``.

    Raises:
        TargetError: Not ``name=number`` pairs, a repeated name, or an unknown figure.
    """
    out: dict[str, float] = {}
    for item in (p.strip() for p in spec.split(",")):
        if not item:
            continue
        name, sep, raw = (s.strip() for s in item.partition("="))
        if not sep or not name or not raw:
            raise TargetError(f"{item!r} is not NAME=NUMBER")
        if name in out:
            raise TargetError(f"target {name!r} given twice")
        out[name] = _number(name, raw)
    if not out:
        raise TargetError(f"no target in {spec!r}")
    _known(list(out), catalogue)
    return out


def parse_target_file(text: str, set_name: str, catalogue: Mapping[str, Figure]) -> dict[str, float]:
    """The ``[set_name]`` table of a targets file's TOML ``text``.

    Raises:
        TargetError: Invalid TOML, no such table, a value not a number, or an unknown figure.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(f"not valid TOML: {exc}") from None
    table = doc.get(set_name)
    if not isinstance(table, dict) or not table:
        sets = [k for k, v in doc.items() if isinstance(v, dict)]
        raise TargetError(f"no target set [{set_name}] (sets: {', '.join(sets) or 'none'})")
    out = {name: _number(name, raw) for name, raw in table.items()}
    _known(list(out), catalogue)
    return out


def shown(path: Path) -> str:
    """``path`` relative to the source checkout when inside it (how reports name a targets file)."""
    if _CHECKOUT is None:
        return str(path)
    try:
        return str(path.resolve().relative_to(_CHECKOUT))
    except ValueError:
        return str(path)


def load_target_file(path: Path, set_name: str, catalogue: Mapping[str, Figure]) -> dict[str, float]:
    """:func:`parse_target_file` of the file at ``path`` (errors name the file)."""
    try:
        return parse_target_file(path.read_text(), set_name, catalogue)
    except OSError as exc:
        raise TargetError(f"{path}: {exc.strerror or exc}") from None
    except TargetError as exc:
        raise TargetError(f"{path}: {exc}") from None


@dataclass(frozen=True)
class Required:
    """The targets a run must meet, and where they came from (for the report)."""

    targets: dict[str, float]
    source: str


def resolve(
    require: str | None,
    require_file: Path | None,
    set_name: str,
    catalogue: Mapping[str, Figure],
    documented: Path | None = TARGETS_FILE,
) -> Required | None:
    """The targets asked for on a command line; None when none were asked for.

    ``require`` is the value of ``--require``: None when absent, ``""`` when given without a
    value (the set ``set_name`` of ``require_file``, or of the documented file), else
    ``NAME=NUMBER,...``, which overrides the same names of ``require_file`` when both are given.

    Raises:
        TargetError: Also when the documented set is asked for and there is no documented file
            (``documented`` None: not a source checkout).
    """
    if require is None and require_file is None:
        return None
    targets: dict[str, float] = {}
    sources = []
    if require_file is not None or not require:
        path = require_file or documented
        if path is None:
            raise TargetError(
                "--require without a value means the documented targets, and there are none outside "
                "a source checkout: name a targets file with --require-file PATH"
            )
        targets.update(load_target_file(path, set_name, catalogue))
        sources.append(f"{shown(path)} [{set_name}]")
    if require:
        targets.update(parse_require(require, catalogue))
        sources.append(f"--require {require}")
    return Required(targets, " + ".join(sources))


@dataclass(frozen=True)
class Outcome:
    """One figure of a report against its target."""

    figure: Figure
    target: float
    value: float | None

    @property
    def met(self) -> bool:
        """Measured and on the right side of the target (equality meets it)."""
        if self.value is None:
            return False
        return self.value >= self.target if self.figure.at_least else self.value <= self.target

    @property
    def shortfall(self) -> float | None:
        """How far the value is on the wrong side (0 when met, None when not measured)."""
        if self.value is None:
            return None
        return max(0.0, (self.target - self.value) if self.figure.at_least else (self.value - self.target))

    def line(self) -> str:
        """``name: value unit, target >= t: met`` or ``...: MISSED by x unit (y %)``."""
        f = self.figure
        head = f"{f.name}: {_fmt(self.value)} {f.unit}, target {f.op} {_fmt(self.target)}"
        if self.value is None:
            return f"{head}: MISSED (not measured in this run)"
        if self.met:
            return f"{head}: met"
        by = self.shortfall or 0.0
        rel = f" ({by / abs(self.target):.0%})" if self.target else ""
        return f"{head}: MISSED by {_fmt(by)} {f.unit}{rel}"


def _fmt(v: float | None) -> str:
    if v is None:
        return "not measured"
    if v != 0 and abs(v) < 10:
        return f"{v:.3g}"
    return f"{v:,.1f}".removesuffix(".0")


def check(
    targets: Mapping[str, float], report: Mapping[str, Any], catalogue: Mapping[str, Figure]
) -> list[Outcome]:
    """Each target against the figure in ``report``, in the order of ``targets``."""
    _known(list(targets), catalogue)
    return [Outcome(catalogue[n], t, catalogue[n].value(report)) for n, t in targets.items()]


def outcomes_json(outcomes: Sequence[Outcome], source: str, enforced: bool) -> dict[str, Any]:
    """The ``targets`` entry of a report."""
    return {
        "source": source,
        "enforced": enforced,
        "met": all(o.met for o in outcomes),
        "missed": [o.figure.name for o in outcomes if not o.met],
        "figures": {
            o.figure.name: {"value": o.value, "op": o.figure.op, "target": o.target, "met": o.met,
                            "shortfall": o.shortfall, "unit": o.figure.unit}
            for o in outcomes
        },
    }  # fmt: skip


def markdown(figures: Mapping[str, Mapping[str, Any]]) -> str:
    """A Markdown table of the ``figures`` entry of :func:`outcomes_json` (a report's targets)."""
    rows = ["| figure | target | measured | met |", "|---|---:|---:|---|"]
    for name, f in figures.items():
        if f["met"]:
            met = "yes"
        elif f["value"] is None:
            met = "**no** (not measured)"
        else:
            met = f"**no** (by {_fmt(f['shortfall'])})"
        rows.append(f"| {name} | {f['op']} {_fmt(f['target'])} {f['unit']} | {_fmt(f['value'])} | {met} |")
    return "\n".join(rows)


def describe(catalogue: Mapping[str, Figure], documented: Mapping[str, float]) -> str:
    """One line per figure: name, direction, documented target (if any), description."""
    lines = []
    for f in catalogue.values():
        t = f"{f.op} {_fmt(documented[f.name])}" if f.name in documented else f"{f.op} (no target)"
        lines.append(f"{f.name:38} {t:>16} {f.unit:10} {f.description}")
    return "\n".join(lines)


# --- command line (recstream bench, recstream soak) ------------------------------------------


def add_target_arguments(p: argparse.ArgumentParser, command: str) -> None:
    """``--require``, ``--require-file``, ``--target-set``, ``--list-figures`` (bench and soak)."""
    p.add_argument(
        "--require",
        nargs="?",
        const="",
        metavar="NAME=N,...",
        help=f"exit {EXIT_TARGET_MISSED} when a figure misses its target; no value: the documented "
        f"set [{command}] of docs/targets.toml in a source checkout (or of --require-file)",
    )
    p.add_argument("--require-file", type=Path, metavar="PATH", help="targets file (TOML, sets as tables)")
    p.add_argument(
        "--target-set", default=command, metavar="NAME", help=f"set of the file (default {command})"
    )
    p.add_argument("--list-figures", action="store_true", help="list the figures targets can name, and exit")


def targets_of(args: argparse.Namespace, catalogue: Mapping[str, Figure]) -> tuple[Required, bool]:
    """The targets to check: the required set (enforced) or the documented one (reported only).

    Raises:
        TargetError: A bad ``--require``/``--require-file``, or a documented set that cannot be read.
    """
    required = resolve(args.require, args.require_file, args.target_set, catalogue, TARGETS_FILE)
    if required is not None:
        return required, True
    if TARGETS_FILE is None:
        return Required({}, NO_DOCUMENTED), False
    documented = load_target_file(TARGETS_FILE, args.target_set, catalogue)
    return Required(documented, f"{shown(TARGETS_FILE)} [{args.target_set}]"), False


def report_targets(
    report: dict[str, Any],
    required: Required,
    enforced: bool,
    catalogue: Mapping[str, Figure],
    command: str,
) -> int:
    """Check ``report``, store the outcome in it as ``targets``, print it; the exit status due.

    Every outcome goes to stdout; when ``enforced``, the missed ones go to stderr as well, and
    the status is :data:`EXIT_TARGET_MISSED`.
    """
    outcomes = check(required.targets, report, catalogue)
    report["targets"] = outcomes_json(outcomes, required.source, enforced)
    print(f"\ntargets ({required.source}{'' if enforced else ', not enforced'}):")
    for o in outcomes:
        print(f"  {o.line()}")
    missed = [o for o in outcomes if not o.met]
    if enforced and missed:
        lines = "\n".join(f"  {o.line()}" for o in missed)
        print(f"recstream {command}: {len(missed)} required target(s) missed:\n{lines}", file=sys.stderr)
        return EXIT_TARGET_MISSED
    return 0
