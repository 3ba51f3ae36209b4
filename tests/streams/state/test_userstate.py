"""The user-state update: decay, commutativity, idempotency, bounds."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from streams.state.base import SourcePos, UserState
from streams.state.userstate import Contribution, accumulate, apply_contributions

TAU = 3600.0  # one hour


def _unit(rng: np.random.Generator, d: int = 8) -> np.ndarray:
    v = rng.normal(size=d)
    return (v / np.linalg.norm(v)).astype(np.float32)


def _contribs(n: int, seed: int = 0) -> list[Contribution]:
    """Events of one user from ``n`` different partitions (e.g. click, upload, review topics):
    Kafka orders each partition, but not their interleaving."""
    rng = np.random.default_rng(seed)
    return [
        Contribution(
            f"e{i}",
            "u",
            f"i{i % 5}",
            1_000_000 + int(rng.integers(0, 10_000_000)),
            _unit(rng),
            float(rng.uniform(0.5, 2)),
            SourcePos(f"topic{i}", 0, 7),
        )
        for i in range(n)
    ]


def test_in_order_update_matches_the_decay_formula() -> None:
    rng = np.random.default_rng(1)
    e1, e2 = _unit(rng), _unit(rng)
    acc, ref = accumulate(None, 0, e1, 0, 1.0, TAU)
    acc, ref = accumulate(acc, ref, e2, 1_800_000, 2.0, TAU)  # half an hour later
    expected = math.exp(-0.5) * e1.astype(np.float64) + 2.0 * e2
    np.testing.assert_allclose(acc, expected, rtol=1e-12)
    assert ref == 1_800_000


def test_state_is_independent_of_application_order() -> None:
    cs = _contribs(6)
    finals = []
    for perm in itertools.permutations(cs):
        st, _ = apply_contributions(None, "u", list(perm), tau_s=TAU, seen_max=100)
        finals.append(st)
    ref = finals[0]
    for st in finals[1:]:
        np.testing.assert_allclose(st.embedding, ref.embedding, atol=1e-6)
        assert st.ref_ts == ref.ref_ts and st.event_count == ref.event_count == 6
        assert set(st.seen) == set(ref.seen)


def test_redelivery_and_replayed_ids_are_not_applied_twice() -> None:
    cs = _contribs(10)
    once, _ = apply_contributions(None, "u", cs, tau_s=TAU, seen_max=100)
    # Kafka redelivery: same offsets.
    again, steps = apply_contributions(once, "u", cs, tau_s=TAU, seen_max=100)
    assert len(steps) == 10
    assert all(dup for _, _, dup in steps)
    assert again == once or (np.array_equal(again.acc, once.acc) and again.event_count == once.event_count)
    # Producer replay: same event ids, new offsets.
    replayed = [
        Contribution(
            c.event_id,
            c.user_id,
            c.item_id,
            c.ts,
            c.embedding,
            c.weight,
            SourcePos("t", 9, 1000 + i),
        )
        for i, c in enumerate(cs)
    ]
    again2, steps2 = apply_contributions(once, "u", replayed, tau_s=TAU, seen_max=100)
    assert len(steps2) == 10
    assert all(dup for _, _, dup in steps2)
    assert np.array_equal(again2.acc, once.acc) and again2.event_count == 10


def test_steps_give_the_state_after_each_event() -> None:
    cs = _contribs(3)
    final, steps = apply_contributions(None, "u", cs, tau_s=TAU, seen_max=100)
    assert [s.event_count for _, s, _ in steps] == [1, 2, 3]
    assert steps[-1][1] == final


def test_bounds_on_seen_and_recent_ids() -> None:
    cs = [Contribution(f"e{i}", "u", f"item{i}", i, None, 1.0) for i in range(50)]
    st, _ = apply_contributions(None, "u", cs, tau_s=TAU, seen_max=10, recent_max=20)
    assert st.seen == tuple(f"item{i}" for i in range(40, 50))
    assert len(st.recent_events) == 20 and st.embedding is None and st.event_count == 50


@pytest.mark.parametrize("gap_days", [0, 1, 365 * 30])
def test_embedding_is_unit_and_finite_across_long_gaps(gap_days: int) -> None:
    rng = np.random.default_rng(3)
    st = UserState("u")
    t = 0
    for i in range(5):
        st, _ = apply_contributions(
            st, "u", [Contribution(f"e{i}", "u", "i", t, _unit(rng), 1.0)], tau_s=TAU, seen_max=10
        )
        t += gap_days * 86_400_000
    emb = st.embedding
    assert emb is not None and np.isfinite(emb).all()
    assert abs(float(np.linalg.norm(emb)) - 1.0) < 1e-5
