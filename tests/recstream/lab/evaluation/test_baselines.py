"""Baselines on a tiny synthetic dataset with answers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from recstream.lab.evaluation.baselines import EASE, ItemKNN, Popularity, UserHistory, _top, pre_cut_clicks
from schemas.events import SCHEMA_VERSION, ClickEvent, ReviewEvent, UploadEvent

# Users x items: a and b go together, c and d go together, e is only with d.
CLICKS = [
    ("u1", "a"),
    ("u1", "b"),
    ("u2", "a"),
    ("u2", "b"),
    ("u3", "c"),
    ("u3", "d"),
    ("u4", "c"),
    ("u4", "d"),
    ("u4", "e"),
    ("u5", "a"),
]

TS = 1_500_000_000_000


def click(user: str, item: str, n: int = 0) -> ClickEvent:
    return ClickEvent(
        type="click",
        schema_version=SCHEMA_VERSION,
        event_id=f"ml-click-{n}",
        user_id=user,
        item_id=item,
        ts=TS,
    )


def test_top_breaks_ties_by_row_and_skips_excluded() -> None:
    s = np.array([1.0, 3.0, 3.0, 2.0, 3.0])
    assert _top(s, 2, []) == [1, 2]
    assert _top(s, 3, [2]) == [1, 4, 3]
    assert _top(s, 10, [0, 1]) == [2, 4, 3]
    assert _top(s, 2, [0, 1, 2, 3, 4]) == []


def test_popularity_counts_clicks_and_reviews() -> None:
    pop = Popularity()
    pop.observe(
        UploadEvent(
            type="upload",
            schema_version=SCHEMA_VERSION,
            event_id="up",
            user_id="m",
            item_id="z",
            ts=TS,
            title="t",
        )
    )
    for n, (u, i) in enumerate(CLICKS):
        pop.observe(click(u, i, n))
    pop.observe(
        ReviewEvent(
            type="review",
            schema_version=SCHEMA_VERSION,
            event_id="r",
            user_id="u9",
            item_id="e",
            ts=TS + 1,
            text="x",
        )
    )
    h = UserHistory("u9", [])
    # counts: a 3, b 2, c 2, d 2, e 2 (1 click + 1 review); ties in first-seen order; z never interacted.
    assert pop.recommend(h, 3, set()) == ["a", "b", "c"]
    assert pop.recommend(h, 10, {"a", "c"}) == ["b", "d", "e"]


def test_itemknn_cosine() -> None:
    knn = ItemKNN().fit(CLICKS)
    w = knn.weights
    r = knn.row
    # a: {u1,u2,u5}, b: {u1,u2}: cos = 2 / sqrt(3 * 2)
    assert w[r["a"], r["b"]] == pytest.approx(2 / np.sqrt(6), rel=1e-6)
    assert w[r["d"], r["e"]] == pytest.approx(1 / np.sqrt(2), rel=1e-6)
    assert w[r["a"], r["c"]] == 0.0 and w[r["a"], r["a"]] == 0.0
    assert knn.recommend(UserHistory("u5", ["a"]), 1, {"a"}) == ["b"]
    # History c: d (cos 1) before e (cos 1/sqrt 2); a and b score 0 and come in row order.
    assert knn.recommend(UserHistory("x", ["c"]), 4, {"c"}) == ["d", "e", "a", "b"]


def test_linear_history_grows_incrementally() -> None:
    knn = ItemKNN().fit(CLICKS)
    hist = ["c"]
    first = knn.scores(UserHistory("x", hist)).copy()
    hist.append("a")  # a post-cut click, folded into the kept scores
    both = knn.scores(UserHistory("x", hist))
    fresh = ItemKNN().fit(CLICKS).scores(UserHistory("x", ["c", "a"]))
    np.testing.assert_allclose(both, fresh)
    assert not np.allclose(first, both)
    hist.append("unknown-item")  # items not in the fitted matrix add nothing
    np.testing.assert_allclose(knn.scores(UserHistory("x", hist)), fresh)


def test_ease_closed_form() -> None:
    ease = EASE(lam=1.0).fit(CLICKS)
    ids = ease.ids
    x = np.zeros((5, len(ids)))
    users = sorted({u for u, _ in CLICKS})
    for u, i in CLICKS:
        x[users.index(u), ids.index(i)] = 1.0
    p = np.linalg.inv(x.T @ x + np.eye(len(ids)))
    b = np.eye(len(ids)) - p / np.diag(p)
    np.testing.assert_allclose(ease.weights, b, atol=1e-5)
    assert np.all(np.diag(ease.weights) == 0.0)
    assert ease.recommend(UserHistory("x", ["d"]), 2, {"d"}) == ["c", "e"]
    assert ease.recommend(UserHistory("y", ["b"]), 1, {"b"}) == ["a"]


def test_pre_cut_clicks() -> None:
    events = [(0, click("u", "a")), (1, click("u", "b")), (2, click("u", "c"))]
    assert pre_cut_clicks(events, 2) == [("u", "a"), ("u", "b")]
