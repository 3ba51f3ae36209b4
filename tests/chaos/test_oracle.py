"""The chaos oracle sees one lost and one doubled event among N, at the sizes the scenarios use."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from recstream.settings import load_settings
from schemas.events import ClickEvent, Event
from schemas.limits import Limits
from streams.state.base import SourcePos
from streams.state.userstate import Contribution, LiveUser, event_weight
from tests.chaos.accounting import UserRow
from tests.chaos.oracle import apply_pure, compare, distinct_events

SETTINGS = load_settings({"RECSTREAM_DECAY_TAU_S": "1e12"})
TAU = SETTINGS.decay_tau_s
DIM = 64


def _events(n: int, seed: int) -> tuple[list[Event], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    items = {
        f"i{j}": v / np.linalg.norm(v) for j, v in enumerate(rng.normal(size=(n, DIM)).astype(np.float32))
    }
    evs: list[Event] = [
        ClickEvent(
            type="click",
            event_id=f"e{j}",
            user_id="u",
            item_id=f"i{j}",
            ts=1_700_000_000_000 + int(rng.integers(0, 10**9)),
            schema_version=1,
            weight=float(rng.choice([0.5, 1.0, 3.0, 5.0])),
        )
        for j in range(n)
    ]
    return evs, items


def _worker_state(
    events: list[Event], items: dict[str, np.ndarray], *, drop: int | None, double: int | None
) -> UserRow:
    """What a worker that lost event ``drop`` and applied event ``double`` twice would store."""
    u = LiveUser("u")
    order = [(e, e.event_id) for j, e in enumerate(events) if j != drop]
    if double is not None:  # applied again under another id, so the worker's guard cannot stop it
        order.append((events[double], events[double].event_id + "-again"))
    for k, (e, eid) in enumerate(order):
        vec, w = items[e.item_id], event_weight(e, SETTINGS, 0.0)
        c = Contribution(eid, "u", e.item_id, e.ts, vec, w, SourcePos("t", 0, k))
        u.apply(c, tau_s=TAU, seen_max=2000, recent_max=10**6, model_version="m")
    return UserRow(u.acc, u.event_count, tuple(u.recent), tuple(u.seen), u.ref_ts)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 1100), seed=st.integers(0, 10**6), data=st.data())
def test_one_lost_and_one_doubled_event_are_seen_even_when_counts_agree(
    n: int, seed: int, data: st.DataObject
) -> None:
    events, items = _events(n, seed)
    expected = apply_pure(events, items, {}, SETTINGS, 0.0, TAU)
    clean = _worker_state(events, items, drop=None, double=None)
    assert compare(expected, {"u": clean}, 2000).ok
    drop = data.draw(st.integers(0, n - 1))
    double = data.draw(st.integers(0, n - 1).filter(lambda j: j != drop))
    for d, x in ((drop, None), (None, double), (drop, double)):
        verdict = compare(expected, {"u": _worker_state(events, items, drop=d, double=x)}, 2000)
        assert not verdict.ok, (d, x)
        assert verdict.sum_mismatch == 1  # the sum sees it whatever the counts say


def test_distinct_events_keep_each_id_once_and_drop_invalid_input() -> None:
    ev = ClickEvent(
        type="click", event_id="e1", user_id="u", item_id="i", ts=1_700_000_000_000, schema_version=1
    )
    raw = [
        (b"u", ev.to_json_bytes(), "events.click", 1_700_000_000_100),
        (b"u", ev.to_json_bytes(), "events.click", 1_700_000_000_200),  # a re-queued copy
        (b"u", b"{not json", "events.click", 1_700_000_000_300),  # a dead letter
    ]
    assert [e.event_id for e in distinct_events(raw, Limits.from_settings(SETTINGS))] == ["e1"]
