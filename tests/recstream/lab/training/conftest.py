"""Shared fixtures of the training tests: a tiny synthetic MovieLens folder."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

GENRES = ("Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi")


def write_tiny_movielens(root: Path, n_ratings: int = 300, seed: int = 0) -> Path:
    """A synthetic MovieLens folder: 40 movies, 12 users, ``n_ratings`` ratings, a few tags.

    Users have a favourite genre and mostly rate movies of it, in time order, so there is a
    learnable next-item signal.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    movies = [(m, f"Film number {m} ({1990 + m % 25})", GENRES[m % len(GENRES)]) for m in range(1, 41)]
    with (root / "movies.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["movieId", "title", "genres"])
        w.writerows(movies)
    with (root / "visual_features.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["ML_Id", *[f"f{i}" for i in range(1, 8)]])
        for m in range(1, 41, 2):
            w.writerow([m, *np.round(rng.normal(size=7), 4)])
    ts = 1_000_000_000
    rated: set[tuple[int, int]] = set()
    rows: list[tuple[int, int, float, int]] = []
    while len(rows) < n_ratings:
        user = int(rng.integers(1, 13))
        fav = user % len(GENRES)
        pool = (
            [m for m, _, g in movies if g == GENRES[fav]] if rng.random() < 0.8 else [m for m, _, _ in movies]
        )
        movie = int(rng.choice(pool))
        if (user, movie) in rated:
            continue
        rated.add((user, movie))
        ts += int(rng.integers(60, 86_400))
        rows.append((user, movie, float(rng.integers(1, 11)) / 2, ts))
    with (root / "ratings.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["userId", "movieId", "rating", "timestamp"])
        w.writerows(rows)
    with (root / "tags.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["userId", "movieId", "tag", "timestamp"])
        for user, movie, _, t in rows[::37]:
            w.writerow([user, movie, "great pacing", t + 5])
    return root


@pytest.fixture(scope="session")
def tiny_movielens(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a session-wide tiny synthetic dataset (300 ratings)."""
    return write_tiny_movielens(tmp_path_factory.mktemp("ml"))
