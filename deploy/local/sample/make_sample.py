"""Rebuild ``movielens/`` from the full ml-latest-small folder (deterministic).

Usage: ``python deploy/local/sample/make_sample.py /work/shared/data/movielens-small``

Keeps the first 40 users (by id) whose id is a multiple of 14, with their complete rating and
tag histories, plus the movies.csv and visual_features.csv rows those reference. Rows keep
their original order and text.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable
from pathlib import Path

USERS = 40
STEP = 14
OUT = Path(__file__).resolve().parent / "movielens"


def _copy(src: Path, dst: Path, keep: Callable[[list[str]], bool]) -> int:
    with (
        src.open(newline="", encoding="utf-8") as fin,
        dst.open("w", newline="", encoding="utf-8") as fout,
    ):
        reader = csv.reader(fin)
        writer = csv.writer(fout, lineterminator="\n")
        writer.writerow(next(reader))
        n = 0
        for row in reader:
            if keep(row):
                writer.writerow(row)
                n += 1
    return n


def main(src_dir: str) -> None:
    """Write the sample next to this script."""
    src = Path(src_dir)
    with (src / "ratings.csv").open(newline="", encoding="utf-8") as fh:
        all_users = sorted({int(r["userId"]) for r in csv.DictReader(fh)})
    chosen = [u for u in all_users if u % STEP == 0][:USERS]
    users = {str(u) for u in chosen}
    movies: set[str] = set()
    for name in ("ratings.csv", "tags.csv"):
        with (src / name).open(newline="", encoding="utf-8") as fh:
            movies |= {r["movieId"] for r in csv.DictReader(fh) if r["userId"] in users}
    OUT.mkdir(parents=True, exist_ok=True)
    counts = {
        "ratings.csv": _copy(src / "ratings.csv", OUT / "ratings.csv", lambda r: r[0] in users),
        "tags.csv": _copy(src / "tags.csv", OUT / "tags.csv", lambda r: r[0] in users),
        "movies.csv": _copy(src / "movies.csv", OUT / "movies.csv", lambda r: r[0] in movies),
        "visual_features.csv": _copy(
            src / "visual_features.csv", OUT / "visual_features.csv", lambda r: r[0] in movies
        ),
    }
    print(f"users {len(users)} ({min(chosen)}..{max(chosen)}): {counts}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data/movielens-small")
