"""Pure helpers of recstream/lab/soak.py (no servers)."""

from __future__ import annotations

import itertools
import math
import time
from typing import Any

from recstream.cli.soak import outcome, summary
from recstream.lab import targets as tg
from recstream.lab.soak import (
    lag_zero_after,
    live_messages,
    percentile,
    rss_growth,
    warmup_seconds,
    window_p99,
    window_rates,
)
from recstream.settings import load_settings
from recstream.testing import isolated_env, parse_lag, parse_rss_kib
from schemas.events import ClickEvent


def test_parse_rss_reads_current_and_peak() -> None:
    status = "Name:\tpython\nVmHWM:\t  812344 kB\nVmRSS:\t  790000 kB\nThreads:\t9\n"
    assert parse_rss_kib(status) == (790_000, 812_344)
    assert parse_rss_kib("Name: x\n") == (0, 0)


def test_parse_lag_reads_each_partition() -> None:
    text = (
        "# TYPE recstream_consumer_lag gauge\n"
        'recstream_consumer_lag{partition="0",topic="t.click"} 12.0\n'
        'recstream_consumer_lag{partition="3",topic="t.upload"} 0.0\n'
        'recstream_events_total{outcome="processed",type="click"} 5.0\n'
    )
    assert parse_lag(text) == {("t.click", 0): 12.0, ("t.upload", 3): 0.0}


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99 and percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7.0 and math.isnan(percentile([], 99))


def test_window_rates_and_p99() -> None:
    assert window_rates([0.5, 1.0, 10.5, 25.0, 31.0], 0.0, 30.0, width=10) == [0.2, 0.1, 0.1]
    sent = {"a": 1_000, "b": 2_000, "c": 12_000}
    listed = {"a": 1_100, "b": 2_900, "c": 12_050}
    assert window_p99(sent, listed, 0.0, 20.0, width=10) == [900, 50]


def test_lag_zero_after_end_of_sending() -> None:
    timeline = [{"t": 1, "lag": 0}, {"t": 5, "lag": 40}, {"t": 11, "lag": None}, {"t": 12, "lag": 0}]
    assert lag_zero_after(timeline, 4.0) == 8.0
    assert lag_zero_after(timeline[:3], 4.0) is None


def test_isolated_env_names_everything_after_one_tag() -> None:
    env = isolated_env({"RECSTREAM_K": "5"}, tag="abc", partitions=2)
    assert env["RECSTREAM_K"] == "5" and env["RECSTREAM_TOPIC_PARTITIONS"] == "2"
    assert env["RECSTREAM_TOPIC_CLICK"] == "tabc.click" and env["RECSTREAM_CASSANDRA_KEYSPACE"] == "ks_abc"


def test_live_messages_restamp_and_rename_each_pass() -> None:
    base = [
        ClickEvent(
            type="click", event_id=f"e{i}", user_id="u", item_id="m", ts=1_700_000_000_000, schema_version=1
        )
        for i in range(2)
    ]
    settings = load_settings({})
    before = int(time.time() * 1000)
    got = list(itertools.islice(live_messages(settings, base), 5))
    assert [m[2] for m in got] == ["e0", "e1", "e0~1", "e1~1", "e0~2"]
    assert all(m[0] == settings.topic_click and m[1] == b"u" and m[3] >= before for m in got)
    again = ClickEvent.from_json_bytes(got[2][4])
    assert again.event_id == "e0~1" and again.ts == got[2][3] and again.item_id == "m"


def test_warmup_is_a_quarter_of_the_run_at_most_two_minutes() -> None:
    assert warmup_seconds(600) == 120 and warmup_seconds(40) == 10


def test_rss_growth_compares_medians_after_warmup_and_at_the_end() -> None:
    # 300 MiB at start-up, flat 200 MiB after the warm-up, 220 MiB in the last 30 s of sending.
    tl = [{"t": t, "rss_kib": (300 if t < 20 else 200 if t < 570 else 220) * 1024} for t in range(600)]
    tl.append({"t": 650, "rss_kib": 900 * 1024})  # draining, after sending stopped: not counted
    g = rss_growth(tl, warmup_s=120.0, t_end=600.0)
    assert g == {
        "warmup_s": 120.0,
        "after_warmup": 200.0,
        "end_of_sending": 220.0,
        "growth_after_warmup_pct": 10.0,
    }
    short = rss_growth([{"t": t, "rss_kib": 1024} for t in range(10)], warmup_s=2.5, t_end=10.0)
    assert short["growth_after_warmup_pct"] == 0.0  # windows shrink, never overlap
    assert rss_growth([], 120.0, 600.0)["growth_after_warmup_pct"] is None


def _soak_report(**over: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "outcome": "pass",
        "date": "d",
        "command": "recstream soak",
        "stack": "s",
        "dataset": "ml",
        "offered_rate_per_s": 500.0,
        "seconds": 600.0,
        "sent": 300_000,
        "lists_distinct": 300_000,
        "throughput_per_s": 499.0,
        "missing": 0,
        "minutes": 10.0,
        "freshness_ms": {"p50": 20.0, "p95": 40.0, "p99": 130.0, "max": 900.0},
        "rss_mib": {
            "start": 300.0,
            "end": 310.0,
            "peak": 330.0,
            "warmup_s": 120.0,
            "after_warmup": 300.0,
            "end_of_sending": 309.0,
            "growth_after_warmup_pct": 3.0,
        },
        "lag": {"max": 40, "zero_after_s": 2.0},
        "provenance": {"commit_short": "4e09550037", "dirty": False, "date": "d", "machine": {"host": "vm"}},
    }
    r.update(over)
    return r


def test_soak_summary_names_the_commit_the_flat_rss_and_the_targets() -> None:
    report = _soak_report()
    targets = {"freshness_p99_ms": 100.0, "rss_growth_after_warmup_pct": 10.0}
    assert tg.report_targets(
        report, tg.Required(targets, "docs/targets.toml [soak]"), True, tg.SOAK_FIGURES, "soak"
    )
    text = summary(report, "soak.png")
    assert "Code: commit `4e09550037` (clean tree)" in text
    assert (
        "| worker RSS after the warm-up (120 s) / end of sending / growth | 300 / 309 MiB / +3.0 % |" in text
    )
    assert "Targets (docs/targets.toml [soak], required): **missed: freshness_p99_ms**" in text
    assert "| freshness_p99_ms | <= 100 ms | 130 | **no** (by 30) |" in text
    old = _soak_report(provenance=None, rss_mib={"start": 1.0, "end": 1.0, "peak": 1.0})
    del old["provenance"]
    assert "Code:" not in summary(old, "soak.png")  # a report of an earlier version still renders


def test_soak_command_records_the_target_options() -> None:
    from recstream.cli import build_parser
    from recstream.cli.soak import required_args

    parse = build_parser().parse_args
    assert required_args(parse(["soak"])) == ""
    assert required_args(parse(["soak", "--require"])) == " --require"
    typed = parse(["soak", "--require", "missing=0", "--require-file", "t.toml", "--target-set", "quick"])
    assert required_args(typed) == " --require missing=0 --require-file t.toml --target-set quick"


def test_outcome_is_no_pass_when_a_required_target_is_missed() -> None:
    assert outcome(True, 0) == "pass"
    assert outcome(True, 3) == "missed required targets"
    assert outcome(False, 0) == "FAIL"
    assert outcome(False, 3) == "FAIL"
