"""Metric functions and the scorable-event rules on hand-made cases."""

from __future__ import annotations

import math

import pytest

from recstream.lab.evaluation.protocol import (
    COLD_ITEM_MAX,
    Protocol,
    Tally,
    event_order,
    hit_at,
    ndcg_at,
    rank_of,
)
from schemas.events import SCHEMA_VERSION, ClickEvent, Event, ReviewEvent, UploadEvent

TS = 1_500_000_000_000


def click(order: int, user: str, item: str) -> ClickEvent:
    return ClickEvent(
        type="click",
        schema_version=SCHEMA_VERSION,
        event_id=f"ml-click-{order}",
        user_id=user,
        item_id=item,
        ts=TS + order,
    )


def review(order: int, user: str, item: str) -> ReviewEvent:
    return ReviewEvent(
        type="review",
        schema_version=SCHEMA_VERSION,
        event_id=f"ml-review-{order}",
        user_id=user,
        item_id=item,
        ts=TS + order,
        text="nice",
    )


def upload(item: str) -> UploadEvent:
    return UploadEvent(
        type="upload",
        schema_version=SCHEMA_VERSION,
        event_id=f"ml-upload-{item}",
        user_id="movielens",
        item_id=item,
        ts=TS,
        title=f"movie {item}",
    )


def test_hit_and_ndcg() -> None:
    assert hit_at(0, 20) == 1.0 and ndcg_at(0, 20) == 1.0
    assert hit_at(2, 20) == 1.0 and ndcg_at(2, 20) == pytest.approx(0.5)  # 1/log2(4)
    assert ndcg_at(19, 20) == pytest.approx(1 / math.log2(21))
    assert hit_at(20, 20) == 0.0 and ndcg_at(20, 20) == 0.0
    assert hit_at(None, 20) == 0.0 and ndcg_at(None, 20) == 0.0


def test_rank_of() -> None:
    assert rank_of(["a", "b", "c"], "c") == 2
    assert rank_of(["a", "b"], "z") is None
    assert rank_of([], "a") is None


def test_event_order() -> None:
    assert event_order(click(17, "u", "i"), 99) == 17
    assert event_order(review(5, "u", "i"), 99) == 5
    assert event_order(upload("i"), 99) == 99


def run(proto: Protocol, stream: list[tuple[int, Event]]) -> list[str]:
    scored = []
    for order, ev in stream:
        if proto.check(order, ev) is not None:
            scored.append(ev.event_id)
        proto.apply(order, ev)
    return scored


def test_scorable_rules() -> None:
    stream: list[tuple[int, Event]] = [
        (0, upload("a")),
        (0, click(0, "u1", "a")),  # before the cut
        (1, click(1, "u1", "b")),  # before the cut
        (2, click(2, "u1", "c")),  # scored: u1 had events
        (3, click(3, "u2", "a")),  # not scored: u2's first event
        (4, click(4, "u2", "b")),  # scored
        (5, click(5, "u2", "a")),  # not scored: u2 already clicked a
        (6, review(6, "u3", "d")),  # reviews never scored
        (7, click(7, "u3", "d")),  # scored: a review is a previous event but not "had"
    ]
    proto = Protocol(cut_order=2)
    assert run(proto, stream) == ["ml-click-2", "ml-click-4", "ml-click-7"]
    assert proto.counts == {"upload": 1, "click": 7, "review": 1}
    assert proto.after_cut == {"click": 5, "review": 1}
    assert proto.warm_users == {"u1", "movielens"}
    assert proto.history["u2"] == ["a", "b"] and proto.had["u3"] == {"d"}


def test_slices() -> None:
    proto = Protocol(cut_order=0)
    stream: list[tuple[int, Event]] = [(n, click(n, f"u{n}", "hot")) for n in range(COLD_ITEM_MAX)]
    for order, ev in stream:
        proto.apply(order, ev)
    proto.apply(10, click(10, "v", "x"))
    warm_item = proto.check(11, click(11, "v", "hot"))
    cold_item = proto.check(12, click(12, "v", "new"))
    assert warm_item is not None and not warm_item.cold_item and not warm_item.warm_user
    assert cold_item is not None and cold_item.cold_item
    early = Protocol(cut_order=5)
    early.apply(0, click(0, "w", "a"))
    sc = early.check(6, click(6, "w", "b"))
    assert sc is not None and sc.warm_user


def test_tally_figures() -> None:
    proto = Protocol(cut_order=0)
    proto.apply(0, click(0, "u", "a"))
    cold = proto.check(1, click(1, "u", "b"))
    assert cold is not None and cold.cold_item
    t = Tally()
    t.add(0, 20, cold)  # hit at rank 0
    t.add(3, 20, cold)  # hit at rank 3
    t.add(None, 20, cold)  # miss
    t.add(25, 20, cold)  # outside the list: miss
    f = t.figures(20)
    assert f["events"] == 4 and f["hr@20"] == pytest.approx(0.5)
    assert f["ndcg@20"] == pytest.approx((1.0 + 1 / math.log2(5)) / 4)
    assert f["cold_hr@20"] == pytest.approx(0.5) and f["cold_events"] == 4
    assert f["warm_item_events"] == 0 and f["warm_item_hr@20"] == 0.0
    assert t.series == [1.0, 1.0, 0.0, 0.0]
    assert Tally().figures(10)["hr@10"] == 0.0
