"""Render ``reports/chaos/*.json`` into the generated tables of docs/RELIABILITY.md.

Run by ``make chaos`` after the tests (``python -m tests.chaos.report``); the soak section is
written by ``recstream soak``. Only the text between the ``<!-- chaos-faults:... -->`` and
``<!-- chaos-volume:... -->`` markers changes.

The tables come from one commit: each report records its ``provenance`` (see
:mod:`recstream.lab.provenance`), reports of different commits are refused with an error naming
them (:class:`MixedCommitsError`; nothing is written), and both sections name the commit.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recstream.lab.provenance import commit_of
from recstream.lab.soak import replace_section
from recstream.settings import REPO_ROOT

REPORT_DIR = REPO_ROOT / "reports" / "chaos"
DOC = REPO_ROOT / "docs" / "RELIABILITY.md"
#: Table order (the issue's numbering).
FAULT_ORDER = (
    "worker_sigkill",
    "worker_kill_after_apply",
    "worker_kill_after_publish",
    "worker_kill_after_flush",
    "triton_outage",
    "triton_sigkill",
    "cassandra_restart",
    "cassandra_sigkill",
    "kafka_restart",
    "kafka_sigkill",
    "two_workers_one_killed",
    "paused_worker",
)


class MixedCommitsError(ValueError):
    """The reports to render come from runs of different commits."""


def rendered(reports: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The reports the tables show: the faults of :data:`FAULT_ORDER` and ``volume``."""
    return {n: r for n, r in reports.items() if n in FAULT_ORDER or n == "volume"}


def one_commit(reports: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The commit every report was run at (None: they record none, or there are no reports).

    Raises:
        MixedCommitsError: More than one commit (reports without provenance count as one more),
            naming each commit and its reports.
    """
    by_commit: dict[str | None, list[str]] = {}
    for name, r in reports.items():
        by_commit.setdefault(commit_of(r), []).append(name)
    if len(by_commit) > 1:
        groups = "; ".join(
            f"{'no provenance' if c is None else c[:10]}: {', '.join(names)}"
            for c, names in by_commit.items()
        )
        raise MixedCommitsError(
            f"the reports mix runs of {len(by_commit)} commits ({groups}); rerun `make chaos` at one "
            "commit, or move the stale reports out of the report directory"
        )
    return next(iter(by_commit), None)


def commit_line(reports: Mapping[str, Mapping[str, Any]]) -> str:
    """Which commit the tables come from, and whether its tree was dirty (call after :func:`one_commit`)."""
    if not reports:
        return "_No runs recorded._"
    commit = one_commit(reports)
    if commit is None:
        return "Runs of an unknown commit (these reports were written before provenance was recorded)."
    dirty = [n for n, r in reports.items() if r["provenance"].get("dirty")]
    tree = (
        "clean tree"
        if not dirty
        else f"**uncommitted changes** in the tree of {len(dirty)} of {len(reports)} runs: {', '.join(dirty)}"
    )
    return f"Runs of commit `{commit[:10]}` ({tree})."


def _s(value: Any) -> str:
    return "never" if value is None else f"{float(value):.1f} s"


def fault_table(reports: Mapping[str, Mapping[str, Any]]) -> str:
    """The fault table (one row per fault in :data:`FAULT_ORDER`) and the negative controls.

    "Lost" and "applied twice" are the independent oracle's (tests/chaos/oracle.py), not the
    worker's own bookkeeping; "duplicates skipped" shows the duplicate guard at work.
    """
    head = (
        "| # | fault | outcome | events | lost | applied twice | states moved back "
        "| events without a list | duplicate lists | duplicates skipped | clicks re-queued "
        "| dead letters | fault lasted | first list after | backlog drained after (bound) |\n"
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    rows = []
    for n, name in enumerate(FAULT_ORDER, 1):
        r = reports.get(name)
        if r is None:
            rows.append(f"| {n} | {name} | not run |" + " |" * 12)
            continue
        oracle = r.get("oracle") or {}
        bound = r.get("recovery_bound_s")
        rows.append(
            f"| {n} | {r['title']} | **{r['outcome']}** | {r['events']:,} "
            f"| {oracle.get('missing', r['lost'])} | {oracle.get('extra', r['duplicated'])} "
            f"| {r.get('states_moved_backwards', '-')} | {r['lists_missing']} | {r['duplicate_lists']} "
            f"| {int(r.get('duplicates_skipped', 0))} | {r.get('requeued_clicks', 0)} | {r['dead_letters']} "
            f"| {_s(r['fault_duration_s'])} | {_s(r['recovery_first_list_s'])} "
            f"| {_s(r['recovery_backlog_s'])}{'' if bound is None else f' ({bound:.0f} s)'} |"
        )
    problems = [f"- {name}: {p}" for name in FAULT_ORDER for p in reports.get(name, {}).get("problems", [])]
    text = head + "\n" + "\n".join(rows) + "\n\n" + controls_text(reports)
    if problems:
        text += "\n\nProblems recorded:\n\n" + "\n".join(problems)
    return text


def controls_text(reports: Mapping[str, Mapping[str, Any]]) -> str:
    """The negative controls of the run (the worker broken on purpose; the oracle must see it)."""
    controls = next(
        (
            r["negative_controls"]
            for r in reports.values()
            if "not_run" not in r.get("negative_controls", {"not_run": 1})
        ),
        None,
    )
    if not controls:
        return "Negative controls: not run with these reports (`make chaos` runs them)."
    lines = [
        "Negative controls (the worker broken on purpose in the same run; the oracle must report it):",
        "",
    ]
    for _name, c in controls.items():
        lines.append(
            f"- `{c['hook']}`: **{'detected' if c['detected'] else 'NOT DETECTED'}** "
            f"({c['lost']} lost, {c['applied_twice']} applied twice, {c['sum_mismatch']} users' sums off)"
        )
    return "\n".join(lines)


def _types(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n:,} {t}s" for t, n in sorted(counts.items()))


def volume_table(r: Mapping[str, Any] | None) -> str:
    """The volume run's figures (a placeholder line when it has not run)."""
    if r is None:
        return "_Not run yet: `make chaos` runs it._"
    reasons = "\n".join(
        f"| {reason} | {sent:,} | {r['dead_letters_by_reason'].get(reason, 0):,} |"
        for reason, sent in sorted(r["malformed_by_reason"].items())
    )
    return (
        f"Outcome: **{r['outcome']}** ({r['date']}). {r['messages']:,} messages: {r['good']:,} good "
        f"events ({_types(r['good_by_type'])}), {r['malformed']:,} malformed, one worker, "
        f"{r['seconds']:.0f} s from first send to last list ({r['throughput_per_s']:.0f} messages/s).\n\n"
        f"- Good events lost: **{r['lost']}**, applied twice: **{r['duplicated']}**, without a list: "
        f"**{r['lists_missing']}** (duplicate lists: {r['duplicate_lists']})\n"
        f"- Dead letters: **{r['dead_letters']:,}** for {r['malformed']:,} malformed messages; "
        f"wrong reason or unmatched: **{r['dead_letter_mismatches']}**\n\n"
        "| reason | malformed sent | dead letters with this reason |\n|---|---:|---:|\n" + reasons
    )


def load_reports(directory: Path = REPORT_DIR) -> dict[str, dict[str, Any]]:
    """Every ``*.json`` report in ``directory`` by file stem."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


def render(doc: str, reports: Mapping[str, Mapping[str, Any]]) -> str:
    """``doc`` with both generated sections replaced, each naming the commit of its runs.

    Raises:
        MixedCommitsError: The fault and volume reports come from different commits.
    """
    shown = rendered(reports)
    line = commit_line(shown)
    doc = replace_section(doc, "chaos-faults", f"{line}\n\n{fault_table(shown)}")
    return replace_section(doc, "chaos-volume", f"{line}\n\n{volume_table(shown.get('volume'))}")


def main(argv: list[str] | None = None) -> int:
    """Rewrite the generated sections of docs/RELIABILITY.md from reports/chaos/ (1: mixed commits)."""
    reports = load_reports(REPORT_DIR)
    try:
        text = render(DOC.read_text() if DOC.exists() else "# Reliability\n", reports)
    except MixedCommitsError as exc:
        print(f"{DOC} not rewritten: {REPORT_DIR}: {exc}", file=sys.stderr)
        return 1
    DOC.write_text(text)
    print(f"{DOC}: {len(rendered(reports))} report(s) from {REPORT_DIR}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
