"""Pure parts of the end-to-end benchmarks: medians and the report table."""

from __future__ import annotations

from recstream.cli.bench import stream_table
from streams.bench_stream import StreamMeasure, click, summarise


def test_summarise_takes_medians_over_repeats() -> None:
    runs = [
        StreamMeasure("x", 100, 1.0, [1.0] * 99 + [50.0]),
        StreamMeasure("x", 100, 2.0, [2.0] * 100),
        StreamMeasure("x", 100, 4.0, [3.0] * 100),
    ]
    s = summarise(runs)
    assert s["events_per_s"] == 50.0 and s["events"] == 300 and s["repeats"] == 3
    assert s["p50_ms"] == 2.0


def test_stream_table_reports_the_ratio_to_the_passthrough() -> None:
    fig = {"events_per_s": 1.0, "p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": 3.0, "events": 10}
    stream = {
        "click": {**fig, "name": "click", "events_per_s": 500.0},
        "passthrough": {**fig, "name": "pt", "events_per_s": 2000.0},
        "fresh": {**fig, "name": "fresh", "p99_ms": 42.0},
        "review": {**fig, "name": "review"},
    }
    md = stream_table(stream)
    assert "**0.25**" in md and "**42.0 ms**" in md
    assert "not measured" in stream_table({})


def test_bench_events_are_valid_and_unique() -> None:
    evs = [click(i, "t", items=10, users=3) for i in range(30)]
    assert len({e.event_id for e in evs}) == 30 and {e.user_id for e in evs} == {"t-u0", "t-u1", "t-u2"}
