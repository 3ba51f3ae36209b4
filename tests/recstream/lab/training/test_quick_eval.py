"""The prequential evaluator follows the protocol of shared/data/README.md."""

from __future__ import annotations

import numpy as np
import pytest

from encoders.policy import UserStatePolicy
from recstream.lab.datasets import Interaction, Movie, MovieLens
from recstream.lab.training.quick_eval import prequential


def dataset(events: list[tuple[int, int, str]]) -> MovieLens:
    movies = {m: Movie(m, f"m{m}", ()) for m in range(5)}
    inter = [Interaction(u, m, 1000 + n, kind, value=4.0, order=n) for n, (u, m, kind) in enumerate(events)]
    return MovieLens(path=__import__("pathlib").Path("."), movies=movies, interactions=inter)


# Item m is most similar to m + 1: a user who just had m should get m + 1 on top.
EMB = np.array([[np.cos(a), np.sin(a)] for a in np.arange(5) * 0.4], dtype=np.float32)
POLICY = UserStatePolicy(tau_s=3600.0, weight_click=1.0)


def test_scores_follow_the_protocol() -> None:
    ml = dataset(
        [
            (1, 0, "rating"),  # before start
            (1, 1, "rating"),  # scored: state from item 0, list [1, 2, ...] -> hit at rank 0
            (2, 3, "rating"),  # new user's first event: not scored (no list yet)
            (2, 4, "tag"),  # reviews are never scored
            (2, 3, "rating"),  # already clicked: not scored
            (2, 0, "rating"),  # scored: state from 3 (+4 not a click... reviews off) -> far
            (1, 4, "tag"),  # a tagged item is not "already had"
            (1, 4, "rating"),  # scored
        ]
    )
    res = prequential(ml, np.arange(5), EMB, POLICY, start_order=1, k=1, warm_items={0, 1, 3})
    assert res.n == 3
    assert res.hr == pytest.approx(1 / 3)
    assert res.ndcg == pytest.approx(1 / 3)
    assert res.groups["warm_user"]["n"] == 2 and res.groups["new_user"]["n"] == 1
    assert res.groups["cold_item"]["n"] == 1  # item 4


def test_stop_order_and_exclusion() -> None:
    ml = dataset([(1, 0, "rating"), (1, 1, "rating"), (1, 2, "rating"), (1, 3, "rating")])
    full = prequential(ml, np.arange(5), EMB, POLICY, start_order=1, k=1)
    assert full.n == 3 and full.hr == 1.0  # each next item is the nearest unseen one
    part = prequential(ml, np.arange(5), EMB, POLICY, start_order=1, stop_order=2, k=1)
    assert part.n == 1


def test_unknown_item_is_a_miss() -> None:
    ml = dataset([(1, 0, "rating"), (1, 1, "rating")])
    res = prequential(ml, np.arange(1), EMB[:1], POLICY, start_order=1, k=5)
    assert res.n == 1 and res.hr == 0.0
