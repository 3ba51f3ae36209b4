"""The item index interface: upsert item vectors, top-K by inner product with exclusions."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence

import numpy as np

from streams.errors import CatalogError


class ItemIndex(ABC):
    """Item embeddings (unit vectors) searchable by inner product.

    Args:
        dim: Embedding width.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim

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
    def __len__(self) -> int:
        """Number of items."""

    def _check(self, vectors: np.ndarray, n: int) -> np.ndarray:
        arr = np.ascontiguousarray(vectors, dtype=np.float32)
        if arr.ndim != 2 or arr.shape != (n, self.dim):
            raise CatalogError(f"expected vectors of shape [{n}, {self.dim}], got {arr.shape}")
        return arr
