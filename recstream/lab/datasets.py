"""Loaders for MovieLens-format folders (ratings.csv, movies.csv, tags.csv, visual_features.csv).

One loader serves replay, training and evaluation, so all three see the same events in the same
order: interactions sorted by timestamp, ties kept in file order (a stable sort), as the
evaluation protocol in ``../shared/data/README.md`` requires.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path


class DatasetError(ValueError):
    """A dataset folder lacks a file or holds a malformed row (file and line in the message)."""


@dataclass(frozen=True, slots=True)
class Movie:
    """One catalogue item."""

    movie_id: int
    title: str
    genres: tuple[str, ...]
    visual: tuple[float, ...] | None = None


@dataclass(frozen=True, slots=True)
class Interaction:
    """A rating (``kind="rating"``, ``value`` = stars) or a tag (``kind="tag"``, ``text`` set)."""

    user_id: int
    movie_id: int
    ts: int  # epoch seconds
    kind: str
    value: float = 0.0
    text: str = ""
    order: int = 0  # position in the merged, time-sorted stream


@dataclass(slots=True)
class MovieLens:
    """A loaded dataset. ``interactions`` is ratings and tags merged, sorted by time (stable)."""

    path: Path
    movies: dict[int, Movie]
    interactions: list[Interaction] = field(default_factory=list)

    @property
    def ratings(self) -> list[Interaction]:
        """Rating interactions in time order."""
        return [i for i in self.interactions if i.kind == "rating"]

    def cut_ts(self, frac: float) -> int:
        """Timestamp splitting the rating stream: the first ``frac`` of ratings (by time order) lie
        strictly before the position returned, i.e. ratings ``[:n]`` are "before the cut".

        Returns the timestamp of the first rating after the cut (events with ``ts`` lower than it,
        and the tied ones placed before it in order, are training data).
        """
        ratings = self.ratings
        if not 0.0 < frac < 1.0:
            raise ValueError("frac must be in (0, 1)")
        return ratings[int(len(ratings) * frac)].ts

    def cut_order(self, frac: float) -> int:
        """``order`` of the first rating after the cut: interactions with a lower order are
        before the cut (ties in time keep file order)."""
        ratings = self.ratings
        if not 0.0 < frac < 1.0:
            raise ValueError("frac must be in (0, 1)")
        return ratings[int(len(ratings) * frac)].order


def parse_dataset_arg(spec: str) -> Path:
    """Parse ``movielens:DIR`` (the CLI's ``--dataset`` form) into the folder path."""
    kind, sep, rest = spec.partition(":")
    if not sep or kind != "movielens" or not rest:
        raise DatasetError(f"--dataset must look like movielens:DIR, got {spec!r}")
    return Path(rest)


def _rows(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise DatasetError(f"{path}: missing column(s) {missing}")
            return [(n, row) for n, row in enumerate(reader, start=2)]
    except FileNotFoundError as exc:
        raise DatasetError(f"{path}: not found") from exc


def load_movielens(path: str | Path, *, with_tags: bool = True) -> MovieLens:
    """Load a MovieLens-format folder.

    Args:
        path: Folder with ratings.csv and movies.csv; tags.csv and visual_features.csv optional.
        with_tags: Include tags.csv as ``kind="tag"`` interactions.

    Raises:
        DatasetError: A required file is missing or a row cannot be parsed.
    """
    root = Path(path)
    movies: dict[int, Movie] = {}
    visual: dict[int, tuple[float, ...]] = {}
    vf = root / "visual_features.csv"
    if vf.exists():
        with vf.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            next(reader, None)
            for n, cells in enumerate(reader, start=2):
                try:
                    vals = tuple(float(x) for x in cells[1:])
                    if all(math.isfinite(v) for v in vals):
                        visual[int(cells[0])] = vals
                except (ValueError, IndexError) as exc:
                    raise DatasetError(f"{vf}:{n}: {exc}") from exc
    for n, row in _rows(root / "movies.csv", ("movieId", "title", "genres")):
        try:
            mid = int(row["movieId"])
        except ValueError as exc:
            raise DatasetError(f"{root / 'movies.csv'}:{n}: {exc}") from exc
        genres = tuple(g for g in row["genres"].split("|") if g and g != "(no genres listed)")
        movies[mid] = Movie(mid, row["title"].strip(), genres, visual.get(mid))

    raw: list[Interaction] = []
    for n, row in _rows(root / "ratings.csv", ("userId", "movieId", "rating", "timestamp")):
        try:
            raw.append(
                Interaction(
                    int(row["userId"]),
                    int(row["movieId"]),
                    int(row["timestamp"]),
                    "rating",
                    value=float(row["rating"]),
                )
            )
        except ValueError as exc:
            raise DatasetError(f"{root / 'ratings.csv'}:{n}: {exc}") from exc
    tags = root / "tags.csv"
    if with_tags and tags.exists():
        for n, row in _rows(tags, ("userId", "movieId", "tag", "timestamp")):
            try:
                raw.append(
                    Interaction(
                        int(row["userId"]),
                        int(row["movieId"]),
                        int(row["timestamp"]),
                        "tag",
                        text=row["tag"],
                    )
                )
            except ValueError as exc:
                raise DatasetError(f"{tags}:{n}: {exc}") from exc
    # Stable sort: ties in time keep file order (ratings before tags at equal ts).
    ordered = sorted(raw, key=lambda i: i.ts)
    interactions = [
        Interaction(i.user_id, i.movie_id, i.ts, i.kind, i.value, i.text, order=n)
        for n, i in enumerate(ordered)
    ]
    for i in interactions:
        if i.movie_id not in movies:  # ratings of movies missing from movies.csv still get an item
            movies[i.movie_id] = Movie(i.movie_id, f"movie {i.movie_id}", (), visual.get(i.movie_id))
    return MovieLens(root, movies, interactions)
