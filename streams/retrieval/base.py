"""The item index interface: upsert item vectors, top-K by inner product with exclusions."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Sequence

import numpy as np

from streams.errors import RetrievalError


class ItemIndex(ABC):
    """Item embeddings (unit vectors) searchable by inner product.

    Args:
        dim: Embedding width.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        #: Bumped whenever an item id is added (not when one is replaced): cached row lists of
        #: ids that were unknown then may be incomplete.
        self.version = 0

    @abstractmethod
    def upsert(self, item_ids: Sequence[str], vectors: np.ndarray) -> None:
        """Insert or replace items (``vectors``: ``[n, dim]`` float32)."""

    @abstractmethod
    def get(self, item_id: str) -> np.ndarray | None:
        """The vector of an item, or None if unknown."""

    @abstractmethod
    def search(
        self, queries: np.ndarray, k: int, exclude: Sequence[Collection[str]]
    ) -> list[list[tuple[str, float]]]:
        """Top-``k`` items per query row, best first, skipping each row's excluded ids.

        Args:
            queries: ``[n, dim]`` float32 user embeddings.
            k: List length.
            exclude: Per query, item ids that must not appear (seen items).
        """

    @abstractmethod
    def row(self, item_id: str) -> int | None:
        """The stable row number of an item (its position, never reused), None if unknown."""

    def rows(self, item_ids: Iterable[str]) -> np.ndarray:
        """Row numbers of the known ``item_ids`` (int64; unknown ids are left out)."""
        out = [r for i in item_ids if (r := self.row(i)) is not None]
        return np.asarray(out, dtype=np.int64)

    def search_rows(
        self, queries: np.ndarray, k: int, exclude: Sequence[np.ndarray], decimals: int | None = None
    ) -> list[list[tuple[str, float]]]:
        """Like :meth:`search`, with each query's excluded items given as row numbers.

        Args:
            decimals: Round the scores to this many decimals (as published).

        The default maps rows back to ids; :class:`streams.retrieval.exact.ExactIndex` masks the
        rows of one score matrix for the whole batch instead.
        """
        hits = self.search(queries, k, [{self.item_at(int(r)) for r in rows} for rows in exclude])
        if decimals is None:
            return hits
        return [[(i, round(s, decimals)) for i, s in row] for row in hits]

    @abstractmethod
    def item_at(self, row: int) -> str:
        """The item id of a row number."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of items."""

    def _check(self, vectors: np.ndarray, n: int) -> np.ndarray:
        arr = np.ascontiguousarray(vectors, dtype=np.float32)
        if arr.ndim != 2 or arr.shape != (n, self.dim):
            raise RetrievalError(f"expected vectors of shape [{n}, {self.dim}], got {arr.shape}")
        return arr
