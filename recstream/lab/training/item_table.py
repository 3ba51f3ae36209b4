"""Model inputs for every catalogue item of a MovieLens dataset.

Builds, once per dataset, the arrays the fusion model reads: MiniLM embeddings of
``"title. genres"`` (cached on disk, keyed by the dataset fingerprint), standardised visual
features, and the id-table row of each item (0 for items without interactions before the cut).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from encoders.fusion import FeatureStats
from recstream.lab.datasets import Movie, MovieLens

#: Bump when :func:`movie_text` changes, so stale cached embeddings are not reused.
TEXT_TEMPLATE_VERSION = 1
DATASET_FILES = ("ratings.csv", "movies.csv", "tags.csv", "visual_features.csv")


def movie_text(movie: Movie) -> str:
    """The text the encoder sees for a movie: ``"Title (year). Genres: A, B"``."""
    if movie.genres:
        return f"{movie.title}. Genres: {', '.join(movie.genres)}"
    return movie.title


def dataset_fingerprint(path: Path) -> str:
    """SHA-256 (first 16 hex digits) over the dataset's files, names included."""
    h = hashlib.sha256()
    for name in DATASET_FILES:
        f = path / name
        if f.is_file():
            h.update(name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def cached_text_embeddings(
    ml: MovieLens,
    cache_dir: Path,
    encode: Callable[[Sequence[str]], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """MiniLM embeddings of every movie's text, computed once and cached.

    Args:
        ml: Dataset.
        cache_dir: Cache folder (``artifacts/cache`` by default in the CLI).
        encode: Text encoder function; default a fresh :class:`encoders.text.TextEncoder`.

    Returns:
        ``(movie_ids int64 [N], embeddings float32 [N, 384])``, ids sorted ascending.
    """
    ids = np.array(sorted(ml.movies), dtype=np.int64)
    key = f"{dataset_fingerprint(ml.path)}-t{TEXT_TEMPLATE_VERSION}-n{len(ids)}"
    file = cache_dir / f"text-{key}.npz"
    if file.is_file():
        with np.load(file) as z:
            if np.array_equal(z["ids"], ids):
                return ids, z["emb"].astype(np.float32)
    if encode is None:
        from encoders.text import TextEncoder  # heavy import, only when the cache misses

        encode = TextEncoder().encode
    emb = np.asarray(encode([movie_text(ml.movies[int(i)]) for i in ids]), dtype=np.float32)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(".tmp.npz")
    np.savez(tmp, ids=ids, emb=emb)
    tmp.replace(file)  # atomic: a concurrent reader never sees half a file
    return ids, emb


@dataclass(slots=True)
class ItemTable:
    """Fusion-model inputs for ``N`` items (row ``i`` describes ``item_ids[i]``).

    Attributes:
        item_ids: Movie ids, int64 ``[N]``.
        text: ``[N, 384]`` text embeddings.
        image: ``[N, D_img]`` image embeddings (zeros: MovieLens has no images).
        features: ``[N, F]`` standardised features (zeros where absent).
        index: ``[N]`` id-table rows (0 = cold).
        mask: ``[N, 4]`` presence of text, image, features, id.
    """

    item_ids: np.ndarray
    text: np.ndarray
    image: np.ndarray
    features: np.ndarray
    index: np.ndarray
    mask: np.ndarray

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """``(text, image, features, index, mask)`` as torch tensors for the model."""
        return (
            torch.from_numpy(self.text),
            torch.from_numpy(self.image),
            torch.from_numpy(self.features),
            torch.from_numpy(self.index),
            torch.from_numpy(self.mask),
        )


def visual_matrix(ml: MovieLens, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Raw visual features ``[N, 7]`` (zeros where absent) and a presence vector ``[N]``."""
    dim = next((len(m.visual) for m in ml.movies.values() if m.visual), 7)
    raw = np.zeros((len(ids), dim), dtype=np.float64)
    present = np.zeros(len(ids), dtype=bool)
    for row, mid in enumerate(ids.tolist()):
        vis = ml.movies[mid].visual
        if vis is not None and len(vis) == dim:
            raw[row] = vis
            present[row] = True
    return raw, present


def id_index(warm_ids: Iterable[int]) -> dict[int, int]:
    """Id-table rows for warm items: 1..n in ascending id order (0 is the cold row)."""
    return {mid: row for row, mid in enumerate(sorted(set(warm_ids)), start=1)}


def build_item_table(
    ml: MovieLens,
    ids: np.ndarray,
    text: np.ndarray,
    index_of: dict[int, int],
    stats: FeatureStats | None,
    image_dim: int,
) -> tuple[ItemTable, FeatureStats]:
    """Assemble the fusion inputs for ``ids``.

    Args:
        ml: Dataset (for visual features).
        ids: Movie ids in row order.
        text: Their text embeddings.
        index_of: Id-table row of each warm movie (others get 0).
        stats: Feature standardisation; ``None`` fits it on the items that have features.
        image_dim: Width of the (all-absent) image input.

    Returns:
        The table and the feature statistics used.
    """
    raw, present = visual_matrix(ml, ids)
    if stats is None:
        stats = FeatureStats.fit(raw[present] if present.any() else raw[:1])
    features = np.where(present[:, None], stats.apply(raw), 0.0).astype(np.float32)
    index = np.array([index_of.get(int(m), 0) for m in ids], dtype=np.int64)
    mask = np.stack([np.ones(len(ids), bool), np.zeros(len(ids), bool), present, index > 0], axis=1)
    image = np.zeros((len(ids), image_dim), dtype=np.float32)
    return ItemTable(ids, text.astype(np.float32), image, features, index, mask), stats
