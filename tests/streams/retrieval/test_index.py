"""Exact and faiss indexes: correct top-K, exclusions, upserts, agreement on small data."""

from __future__ import annotations

import numpy as np
import pytest

from streams.errors import RetrievalError
from streams.retrieval import make_index


def _data(n: int = 500, d: int = 16, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, d)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return [f"item{i}" for i in range(n)], v


@pytest.mark.parametrize("backend", ["exact", "faiss"])
def test_top_k_matches_brute_force_and_respects_exclusions(backend: str) -> None:
    ids, vecs = _data()
    idx = make_index(backend, 16)
    idx.upsert(ids, vecs)
    q = vecs[:3] + 0.05
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    excl = [{"item0"}, set(), {ids[j] for j in range(0, 500, 2)}]
    got = idx.search(q, 10, excl)
    for i in range(3):
        scores = vecs @ q[i]
        allowed = [j for j in np.argsort(-scores) if ids[j] not in excl[i]][:10]
        want = [ids[j] for j in allowed]
        recall = len(set(want) & {g for g, _ in got[i]}) / 10
        assert recall >= (1.0 if backend == "exact" else 0.9)
        assert not ({g for g, _ in got[i]} & excl[i])
        s = [score for _, score in got[i]]
        assert s == sorted(s, reverse=True) and len(s) == 10


@pytest.mark.parametrize("backend", ["exact", "faiss"])
def test_upsert_replaces_an_items_vector(backend: str) -> None:
    ids, vecs = _data(50, 8)
    idx = make_index(backend, 8)
    idx.upsert(ids, vecs)
    idx.upsert(["item3"], -vecs[3:4])
    assert len(idx) == 50
    np.testing.assert_array_equal(idx.get("item3"), -vecs[3])
    top = idx.search(-vecs[3:4], 1, [set()])[0]
    assert top[0][0] == "item3" and abs(top[0][1] - 1.0) < 1e-5
    near = idx.search(vecs[3:4], 5, [set()])[0]
    assert len(near) == 5, near
    assert all(item != "item3" for item, _ in near)


def test_exact_grows_past_capacity_and_checks_shapes() -> None:
    from streams.retrieval.exact import ExactIndex

    ids, vecs = _data(3000, 4)
    idx = ExactIndex(4, capacity=2)
    idx.upsert(ids, vecs)
    assert len(idx) == 3000 and idx.get("item2999") is not None
    with pytest.raises(RetrievalError):
        idx.upsert(["x"], np.zeros((1, 5), dtype=np.float32))
    assert idx.search(vecs[:1], 5, [set(ids)]) == [[]]  # everything excluded
