"""Properties of the per-event user-state update."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from streams.update import decayed_update

DAY_MS = 86_400_000
TAU = 7 * 86_400.0


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


@pytest.fixture()
def vecs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return unit(rng.normal(size=64)), unit(rng.normal(size=64))


def test_cold_start_is_normalised_event(vecs: tuple[np.ndarray, np.ndarray]) -> None:
    _, e = vecs
    out = decayed_update(None, None, 3.0 * e, 0, 0.5, TAU)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, e, atol=1e-6)
    zero_start = decayed_update(np.zeros(64, np.float32), 0, 3.0 * e, 0, 0.5, TAU)
    np.testing.assert_array_equal(zero_start, out)


def test_dt_zero_is_plain_weighted_sum(vecs: tuple[np.ndarray, np.ndarray]) -> None:
    u, e = vecs
    out = decayed_update(u, 5_000, e, 5_000, 0.7, TAU)
    np.testing.assert_allclose(out, unit(u + 0.7 * e), atol=1e-6)


def test_out_of_order_event_uses_dt_zero(vecs: tuple[np.ndarray, np.ndarray]) -> None:
    u, e = vecs
    late = decayed_update(u, 10 * DAY_MS, e, 3 * DAY_MS, 1.0, TAU)
    np.testing.assert_array_equal(late, decayed_update(u, 10 * DAY_MS, e, 10 * DAY_MS, 1.0, TAU))


def test_unknown_last_ts_means_no_decay(vecs: tuple[np.ndarray, np.ndarray]) -> None:
    u, e = vecs
    np.testing.assert_array_equal(
        decayed_update(u, None, e, 99 * DAY_MS, 1.0, TAU), decayed_update(u, 0, e, 0, 1.0, TAU)
    )


def test_longer_gaps_forget_more(vecs: tuple[np.ndarray, np.ndarray]) -> None:
    u, e = vecs
    sims = [float(decayed_update(u, 0, e, d * DAY_MS, 1.0, TAU) @ e) for d in (0, 1, 7, 30, 365)]
    assert all(a < b for a, b in itertools.pairwise(sims))
    assert sims[-1] == pytest.approx(1.0, abs=1e-6)  # a year with tau = 7 days: history gone


def test_larger_weight_moves_further(vecs: tuple[np.ndarray, np.ndarray]) -> None:
    u, e = vecs
    sims = [float(decayed_update(u, 0, e, DAY_MS, w, TAU) @ e) for w in (0.1, 0.5, 1.0, 4.0)]
    assert all(a < b for a, b in itertools.pairwise(sims))


def test_inputs_not_mutated_and_deterministic(vecs: tuple[np.ndarray, np.ndarray]) -> None:
    u, e = vecs
    u0, e0 = u.copy(), e.copy()
    a = decayed_update(u, 0, e, DAY_MS, 1.0, TAU)
    b = decayed_update(u, 0, e, DAY_MS, 1.0, TAU)
    np.testing.assert_array_equal(u, u0)
    np.testing.assert_array_equal(e, e0)
    assert a.tobytes() == b.tobytes()


def test_bad_inputs_raise(vecs: tuple[np.ndarray, np.ndarray]) -> None:
    u, e = vecs
    with pytest.raises(ValueError):
        decayed_update(u, 0, e, 1, 1.0, 0.0)
    bad = e.copy()
    bad[0] = np.nan
    with pytest.raises(ValueError):
        decayed_update(u, 0, bad, 1, 1.0, TAU)


finite = st.floats(-10, 10, allow_nan=False, width=32)


@settings(max_examples=200, deadline=None)
@given(
    u=arrays(np.float32, 16, elements=finite),
    e=arrays(np.float32, 16, elements=finite),
    dt=st.integers(-(10**9), 10**11),
    w=st.floats(0.01, 10.0),
)
def test_result_is_unit_or_zero(u: np.ndarray, e: np.ndarray, dt: int, w: float) -> None:
    start = unit(u) if np.linalg.norm(u.astype(np.float64)) > 1e-3 else None
    out = decayed_update(start, 10**12, e, 10**12 + dt, w, TAU)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    n = float(np.linalg.norm(out))
    assert n == pytest.approx(1.0, abs=1e-5) or n == 0.0
