"""The generated sections of docs/RELIABILITY.md (no servers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from recstream.lab.soak import replace_section
from tests.chaos import report as chaos_report
from tests.chaos.report import MixedCommitsError, commit_line, fault_table, one_commit, render, volume_table


def _prov(commit: str, dirty: bool = False) -> dict[str, Any]:
    return {"provenance": {"commit": commit, "commit_short": commit[:10], "dirty": dirty}}


def _fault(**over: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "title": "Kafka broker stopped and restarted",
        "outcome": "pass",
        "events": 1061,
        "lost": 0,
        "duplicated": 0,
        "lists_missing": 0,
        "duplicate_lists": 3,
        "requeued_clicks": 0,
        "dead_letters": 0,
        "state": {"max_embedding_dev": 1.2e-07},
        "fault_duration_s": 33.1,
        "recovery_first_list_s": 0.75,
        "recovery_backlog_s": None,
        "date": "2026-11-23 02:54:00 UTC",
        "problems": [],
    }
    r.update(over)
    return r


def test_fault_table_has_a_row_per_fault_in_order_and_lists_problems() -> None:
    table = fault_table(
        {"kafka_restart": _fault(), "worker_sigkill": _fault(outcome="FAIL", problems=["2 lost"])}
    )
    rows = [line for line in table.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == len(chaos_report.FAULT_ORDER) == 12
    kafka = chaos_report.FAULT_ORDER.index("kafka_restart")
    assert rows[0].startswith("| 1 |") and "**FAIL**" in rows[0]
    assert "not run" in rows[1] and "**pass**" in rows[kafka] and "| never |" in rows[kafka]
    assert all(row.count("|") == rows[0].count("|") for row in rows)
    assert "- worker_sigkill: 2 lost" in table
    assert "Negative controls: not run" in table


def test_negative_controls_are_shown_and_an_undetected_one_stands_out() -> None:
    controls = {
        "no_dedup": {"hook": "no_dedup", "detected": True, "lost": 0, "applied_twice": 7, "sum_mismatch": 3},
        "drop_event": {
            "hook": "drop_event:300",
            "detected": False,
            "lost": 0,
            "applied_twice": 0,
            "sum_mismatch": 0,
        },
    }
    table = fault_table({"worker_sigkill": _fault(negative_controls=controls)})
    assert "`no_dedup`: **detected** (0 lost, 7 applied twice" in table
    assert "`drop_event:300`: **NOT DETECTED**" in table


def test_volume_section_lists_every_reason() -> None:
    assert "Not run" in volume_table(None)
    text = volume_table(
        {
            "outcome": "pass", "date": "d", "messages": 100, "good": 90, "good_by_type": {"click": 90},
            "malformed": 10, "seconds": 10.0, "throughput_per_s": 10.0, "lost": 0, "duplicated": 0,
            "lists_missing": 0, "duplicate_lists": 0, "dead_letters": 10, "dead_letter_mismatches": 0,
            "malformed_by_reason": {"empty": 4, "invalid_json": 6},
            "dead_letters_by_reason": {"empty": 4, "invalid_json": 6},
        }
    )  # fmt: skip
    assert "| empty | 4 | 4 |" in text and "| invalid_json | 6 | 6 |" in text
    assert "90 good events (90 clicks)" in text


def test_render_replaces_only_the_marked_sections() -> None:
    doc = "# R\n\nprose\n\n<!-- chaos-faults:start -->\nold\n<!-- chaos-faults:end -->\n\ntail\n"
    out = render(doc, {})
    assert out.startswith("# R\n\nprose\n") and out.rstrip().endswith("<!-- chaos-volume:end -->")
    assert "old" not in out and "\ntail\n" in out
    assert render(out, {}) == out  # idempotent
    assert replace_section("a", "x", "b") == "a\n\n<!-- x:start -->\nb\n<!-- x:end -->\n"


def test_reports_of_different_commits_are_refused_naming_them() -> None:
    reports = {
        "worker_sigkill": _fault(**_prov("a" * 40)),
        "kafka_restart": _fault(**_prov("a" * 40)),
        "triton_outage": _fault(**_prov("b" * 40)),
        "volume": {"outcome": "pass"},  # written before provenance existed
    }
    with pytest.raises(MixedCommitsError) as err:
        render("# R\n", reports)
    msg = str(err.value)
    assert "3 commits" in msg and f"{'a' * 10}: worker_sigkill, kafka_restart" in msg
    assert f"{'b' * 10}: triton_outage" in msg and "no provenance: volume" in msg
    same = {k: v for k, v in reports.items() if k in ("worker_sigkill", "kafka_restart")}
    assert one_commit(same) == "a" * 40


def test_tables_name_their_commit_and_a_dirty_tree() -> None:
    reports = {"worker_sigkill": _fault(**_prov("c" * 40)), "kafka_restart": _fault(**_prov("c" * 40, True))}
    out = render("# R\n", reports)
    faults = out.split("<!-- chaos-faults:start -->")[1].split("<!-- chaos-faults:end -->")[0]
    volume = out.split("<!-- chaos-volume:start -->")[1]
    line = f"Runs of commit `{'c' * 10}` (**uncommitted changes** in the tree of 1 of 2 runs: kafka_restart)."
    assert faults.strip().startswith(line) and volume.strip().startswith(line)
    assert commit_line({"volume": {"provenance": {"commit": "d" * 40}}}).endswith("(clean tree).")
    assert "unknown commit" in commit_line({"volume": {}}) and commit_line({}) == "_No runs recorded._"


def test_a_soak_report_of_another_commit_does_not_block_the_chaos_tables() -> None:
    reports = {"worker_sigkill": _fault(**_prov("e" * 40)), "soak": {"provenance": {"commit": "f" * 40}}}
    assert f"`{'e' * 10}`" in render("# R\n", reports)


def test_main_leaves_the_doc_alone_when_commits_are_mixed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "worker_sigkill.json").write_text(json.dumps(_fault(**_prov("a" * 40))))
    (tmp_path / "volume.json").write_text(json.dumps(_prov("b" * 40)))
    doc = tmp_path / "RELIABILITY.md"
    doc.write_text("# R\n")
    monkeypatch.setattr(chaos_report, "REPORT_DIR", tmp_path)
    monkeypatch.setattr(chaos_report, "DOC", doc)
    assert chaos_report.main([]) == 1
    assert doc.read_text() == "# R\n" and "mix runs of 2 commits" in capsys.readouterr().err
