"""Pure parts of the end-to-end benchmarks: medians, counters, rates and the report tables."""

from __future__ import annotations

import argparse
import math
from typing import Any

import pytest

from recstream.cli.bench import fresh_keys, freshness_table, parse_rates, stream_table
from recstream.lab.bench import (
    StreamMeasure,
    click,
    counter_by_label,
    stage_profile,
    stage_readings,
    statements_per_event,
    summarise,
)
from recstream.lab.bench_stream import StreamBenchConfig, fresh_key, fresh_rates, wait_settled


def test_summarise_takes_medians_over_repeats() -> None:
    runs = [
        StreamMeasure("x", 100, 1.0, [1.0] * 99 + [50.0]),
        StreamMeasure("x", 100, 2.0, [2.0] * 100),
        StreamMeasure("x", 100, 4.0, [3.0] * 100),
    ]
    s = summarise(runs)
    assert s["events_per_s"] == 50.0 and s["events"] == 300 and s["repeats"] == 3
    assert s["p50_ms"] == 2.0 and "offered_per_s" not in s  # a burst has no offered rate


def test_summarise_sets_received_against_offered_for_fixed_rate_runs() -> None:
    runs = [
        StreamMeasure("f", 1000, 2.0, [10.0], offered_per_s=500.0, sent_seconds=2.0),
        StreamMeasure("f", 1000, 4.0, [10.0], offered_per_s=500.0, sent_seconds=2.5),
        StreamMeasure("f", 1000, 2.5, [10.0], offered_per_s=500.0, sent_seconds=2.0),
    ]
    s = summarise(runs)
    assert s["offered_per_s"] == 500.0 and s["sent_per_s"] == 500.0
    assert s["received_per_s"] == s["events_per_s"] == 400.0 and s["received_vs_offered"] == 0.8
    assert [r["received_per_s"] for r in s["runs"]] == [500.0, 250.0, 400.0]
    assert [r["sent_per_s"] for r in s["runs"]] == [500.0, 400.0, 500.0]


def test_counter_by_label_reads_the_statements_counter_only() -> None:
    page = (
        "# HELP recstream_cassandra_statements_total Requests sent to Cassandra\n"
        'recstream_cassandra_statements_total{kind="read"} 12.0\n'
        'recstream_cassandra_statements_total{kind="write"} 449.0\n'
        'recstream_cassandra_statements_created{kind="write"} 1.7e+09\n'
        'recstream_events_total{outcome="processed",type="click"} 5000.0\n'
    )
    got = counter_by_label(page, "recstream_cassandra_statements_total", "kind")
    assert got == {"read": 12.0, "write": 449.0}
    assert counter_by_label(page, "recstream_events_total", "type") == {"click": 5000.0}
    assert counter_by_label("", "recstream_cassandra_statements_total", "kind") == {}


def test_statements_per_event_counts_only_the_difference() -> None:
    s = statements_per_event(
        {"read": 10.0, "write": 100.0}, {"read": 12.0, "write": 548.0, "items": 1.0}, 12_000
    )
    assert s["cassandra_statements"] == 451.0
    assert s["cassandra_statements_by_kind"] == {"items": 1.0, "read": 2.0, "write": 448.0}
    assert math.isclose(s["cassandra_statements_per_event"], 451 / 12_000)
    assert statements_per_event({}, {}, 0)["cassandra_statements_per_event"] is None


def test_freshness_keys_and_rates() -> None:
    cfg = StreamBenchConfig(rate=500.0, fresh_rates=(1000.0, 500.0, 2000.0))
    assert fresh_rates(cfg) == [500.0, 1000.0, 2000.0]
    assert [fresh_key(r, cfg.rate) for r in fresh_rates(cfg)] == ["fresh", "fresh_1000", "fresh_2000"]
    assert fresh_key(1500.5, 500.0) == "fresh_1500.5"
    assert parse_rates("1000, 2000") == (1000.0, 2000.0) and parse_rates("") == ()
    for bad in ("fast", "-5"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_rates(bad)


def test_wait_settled_until_the_lag_is_zero() -> None:
    lags = iter([None, 30, 0])
    assert wait_settled(lambda: next(lags), timeout_s=10.0) is True
    assert wait_settled(lambda: 5, timeout_s=0.0) is False


def _fig(name: str, eps: float, p99: float = 3.0, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "events_per_s": eps,
        "p50_ms": 1.0,
        "p95_ms": 2.0,
        "p99_ms": p99,
        "events": 10,
        **extra,
    }


def _fresh(offered: float, received: float, p99: float) -> dict[str, Any]:
    runs = [{"received_per_s": received}, {"received_per_s": received - 1}]
    return _fig(
        f"freshness at {offered:.0f} events/s", received, p99, offered_per_s=offered, sent_per_s=offered,
        received_per_s=received, received_vs_offered=received / offered, runs=runs,
    )  # fmt: skip


def _stream() -> dict[str, Any]:
    return {
        "click": _fig("click", 500.0, cassandra_statements_per_event=0.0375,
                      cassandra_statements_by_kind={"read": 2.0, "write": 448.0},
                      cassandra_statements_settled=True),
        "passthrough": _fig("pt", 2000.0),
        "faust_passthrough": _fig("faust pt", 1000.0),
        "fresh": _fresh(500.0, 490.0, 42.0),
        "fresh_1000": _fresh(1000.0, 600.0, 900.0),
        "fresh_2000": _fresh(2000.0, 610.0, 5000.0),
        "review": _fig("review", 40.0),
    }  # fmt: skip


def test_stream_table_reports_ratios_statements_and_targets() -> None:
    md = stream_table(_stream(), {"click_vs_passthrough": 0.25, "freshness_p99_ms": 50.0})
    assert "Click path / pt, same run: **0.25** (target >= 0.25)" in md
    assert "Click path / faust pt, same run: **0.50**." in md
    assert "Cassandra statements per click: **0.037** (read 2, write 448 over 10 clicks)" in md
    assert "**42.0 ms** (target <= 50)" in md
    table = md.split("| benchmark |")[1].split("\n\n")[0].splitlines()[2:]
    fresh = [f"| freshness at {r} events/s" for r in (500, 1000, 2000)]
    assert [line.split(" | ")[0] for line in table] == ["| click", "| pt", "| faust pt", *fresh, "| review"]
    assert "not measured" in stream_table({})


def test_freshness_table_shows_whether_the_worker_kept_up() -> None:
    stream = _stream()
    assert fresh_keys(stream) == ["fresh", "fresh_1000", "fresh_2000"]
    rows = freshness_table(stream).splitlines()[2:]
    assert rows[0] == "| 500 | 500 | 490 (490, 489) | 0.980 | 42.0 |"
    assert rows[2] == "| 2,000 | 2,000 | 610 (610, 609) | 0.305 | 5000.0 |"


def test_a_failed_baseline_is_a_row_saying_so() -> None:
    stream = _stream()
    stream["faust_passthrough"] = {"name": "faust pt", "error": "RuntimeError('exited')"}
    md = stream_table(stream)
    assert "| faust pt | failed: RuntimeError('exited') |" in md and "Click path / faust pt" not in md


def test_bench_events_are_valid_and_unique() -> None:
    evs = [click(i, "t", items=10, users=3) for i in range(30)]
    assert len({e.event_id for e in evs}) == 30 and {e.user_id for e in evs} == {"t-u0", "t-u1", "t-u2"}


STAGES_PAGE = """
recstream_stage_seconds_sum{stage="apply"} %s
recstream_stage_seconds_count{stage="apply"} %s
recstream_stage_seconds_sum{stage="produce"} %s
recstream_stage_seconds_count{stage="produce"} %s
recstream_stage_seconds_bucket{le="0.01",stage="apply"} 3.0
"""


def test_stage_profile_is_the_difference_of_two_readings_over_the_wall_time() -> None:
    before = stage_readings(STAGES_PAGE % (1.0, 10, 0.5, 10))
    after = stage_readings(STAGES_PAGE % (3.0, 110, 1.5, 110))
    assert before["apply"] == (1.0, 10.0)
    p = stage_profile(before, after, events=1000, wall_s=10.0)
    apply = p["stages"]["apply"]
    assert apply["calls"] == 100 and math.isclose(apply["ms_per_call"], 20.0)
    assert math.isclose(apply["us_per_event"], 2000.0) and math.isclose(apply["share"], 0.2)
    assert math.isclose(p["outside_share"], 1 - 0.2 - 0.1)
    s = _stream()
    s["click"]["profile"] = p
    md = stream_table(s)
    assert "Where a click's time goes" in md and "| apply | 100 | 20.00 | 2000.0 | 20.0 % |" in md
    assert "70.0 %" in md
