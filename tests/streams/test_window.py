"""Sliding-window statistics of the ops page (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.window import RateWindow, SampleWindow, percentile


def test_percentile_is_nearest_rank() -> None:
    vals = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(vals, 0.5) == 50.0
    assert percentile(vals, 0.95) == 95.0
    assert percentile(vals, 0.99) == 99.0
    assert percentile(vals, 1.0) == 100.0
    assert percentile(vals, 0.0) == 1.0
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([1.0, 2.0], 0.5) == 1.0


@pytest.mark.parametrize("q", [-0.1, 1.5])
def test_percentile_rejects_bad_quantiles(q: float) -> None:
    with pytest.raises(ValueError):
        percentile([1.0], q)
    with pytest.raises(ValueError):
        percentile([], 0.5)


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=200), st.floats(0, 1))
def test_percentile_is_a_member_with_at_least_q_at_or_below(values: list[float], q: float) -> None:
    vals = sorted(values)
    p = percentile(vals, q)
    assert p in vals
    assert sum(v <= p for v in vals) >= q * len(vals)


def test_rate_is_increase_over_time_within_the_window() -> None:
    w = RateWindow(window_s=10)
    assert w.rate(0.0) == 0.0 and w.increase(0.0) == 0.0 and w.total == 0.0
    w.add(0.0, 100)
    assert w.rate(0.0) == 0.0  # one point: no rate yet
    w.add(5.0, 150)
    assert w.rate(5.0) == pytest.approx(10.0) and w.increase(5.0) == 50 and w.total == 150
    w.add(10.0, 150)
    assert w.rate(10.0) == pytest.approx(5.0)
    # After 20 s only the points of the last 10 s count: the burst has left the window.
    w.add(20.0, 150)
    assert w.rate(20.0) == 0.0 and w.increase(20.0) == 0


def test_rate_restarts_after_a_counter_reset() -> None:
    w = RateWindow(window_s=60)
    w.add(0.0, 1000)
    w.add(1.0, 1010)
    w.add(2.0, 5)  # process restarted: the counter went back
    w.add(3.0, 15)
    assert w.rate(3.0) == pytest.approx(10.0) and w.total == 15


def test_rate_window_is_bounded() -> None:
    w = RateWindow(window_s=1e9, max_points=5)
    for t in range(100):
        w.add(float(t), float(t * 2))
    assert w.rate(99.0) == pytest.approx(2.0)
    assert w.increase(99.0) == 8.0  # only the last 5 points are kept


def test_samples_outside_the_window_are_dropped() -> None:
    w = SampleWindow(window_s=60)
    assert w.percentiles(0.0) == {"p50": None, "p95": None, "p99": None}
    w.add(0.0, [100.0] * 10)  # old and slow
    w.add(50.0, [float(v) for v in range(1, 101)])
    assert len(w.values(50.0)) == 110
    assert w.percentiles(70.0) == {"p50": 50.0, "p95": 95.0, "p99": 99.0}
    assert w.values(200.0) == []


def test_sample_window_keeps_the_newest_when_full() -> None:
    w = SampleWindow(window_s=1e9, max_samples=3)
    w.add(0.0, [1.0, 2.0, 3.0, 4.0, 5.0])
    assert w.values(0.0) == [3.0, 4.0, 5.0]
    assert w.percentiles(0.0, qs=(0.5, 0.999)) == {"p50": 4.0, "p99.9": 5.0}
