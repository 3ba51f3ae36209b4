"""Item inputs: item text, fingerprint, cached text embeddings, feature standardisation."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from recstream.lab.datasets import Movie, load_movielens
from recstream.lab.training.item_table import (
    build_item_table,
    cached_text_embeddings,
    dataset_fingerprint,
    id_index,
    movie_text,
)


def test_movie_text() -> None:
    assert movie_text(Movie(1, "Heat (1995)", ("Action", "Crime"))) == "Heat (1995). Genres: Action, Crime"
    assert movie_text(Movie(2, "Untitled", ())) == "Untitled"


def test_fingerprint_follows_content(tiny_movielens: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_movielens, copy)
    assert dataset_fingerprint(copy) == dataset_fingerprint(tiny_movielens)
    with (copy / "ratings.csv").open("a") as fh:
        fh.write("1,1,4.0,2000000000\n")
    assert dataset_fingerprint(copy) != dataset_fingerprint(tiny_movielens)


def test_text_cache_is_used(tiny_movielens: Path, tmp_path: Path) -> None:
    ml = load_movielens(tiny_movielens)
    calls: list[int] = []

    def fake(texts: Sequence[str]) -> np.ndarray:
        calls.append(len(texts))
        return np.ones((len(texts), 384), dtype=np.float32)

    ids, emb = cached_text_embeddings(ml, tmp_path, fake)
    ids2, emb2 = cached_text_embeddings(ml, tmp_path, fake)
    assert calls == [len(ml.movies)]
    assert np.array_equal(ids, ids2) and np.array_equal(emb, emb2)
    assert list(ids) == sorted(ml.movies)


def test_item_table(tiny_movielens: Path) -> None:
    ml = load_movielens(tiny_movielens)
    ids = np.array(sorted(ml.movies), dtype=np.int64)
    index_of = id_index([3, 1, 2])
    assert index_of == {1: 1, 2: 2, 3: 3}
    table, stats = build_item_table(ml, ids, np.zeros((len(ids), 384), np.float32), index_of, None, 256)
    has_visual = np.array([ml.movies[int(m)].visual is not None for m in ids])
    assert (table.mask[:, 2] == has_visual).all() and table.mask[:, 0].all() and not table.mask[:, 1].any()
    assert (table.mask[:, 3] == np.isin(ids, [1, 2, 3])).all()
    np.testing.assert_allclose(table.features[has_visual].mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(table.features[has_visual].std(0), 1.0, atol=1e-4)
    assert (table.features[~has_visual] == 0).all() and len(stats.mean) == 7
