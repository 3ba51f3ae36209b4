"""The generated sections of docs/RELIABILITY.md (no servers)."""

from __future__ import annotations

from typing import Any

from streams.soak import replace_section
from tests.chaos.report import fault_table, render, volume_table


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
    assert len(rows) == 5
    assert rows[0].startswith("| 1 |") and "**FAIL**" in rows[0]
    assert "not run" in rows[1] and "**pass**" in rows[3] and "| never |" in rows[3]
    assert all(row.count("|") == rows[0].count("|") for row in rows)
    assert "- worker_sigkill: 2 lost" in table


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
