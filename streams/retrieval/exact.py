"""Exact top-K by a vectorised matrix product: the default up to ~100k items."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from streams.retrieval.base import ItemIndex


class ExactIndex(ItemIndex):
    """Dense matrix of item vectors; one BLAS call scores a whole batch of users."""

    def __init__(self, dim: int, capacity: int = 1024) -> None:
        super().__init__(dim)
        self._matrix = np.zeros((capacity, dim), dtype=np.float32)
        self._ids: list[str] = []
        self._row: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def upsert(self, item_ids: Sequence[str], vectors: np.ndarray) -> None:
        arr = self._check(vectors, len(item_ids))
        for item_id, vec in zip(item_ids, arr, strict=True):
            row = self._row.get(item_id)
            if row is None:
                row = len(self._ids)
                if row == self._matrix.shape[0]:  # grow geometrically: amortised O(1) inserts
                    grown = np.zeros((row * 2, self.dim), dtype=np.float32)
                    grown[:row] = self._matrix
                    self._matrix = grown
                self._ids.append(item_id)
                self._row[item_id] = row
                self.version += 1
            self._matrix[row] = vec

    def get(self, item_id: str) -> np.ndarray | None:
        row = self._row.get(item_id)
        return None if row is None else self._matrix[row].copy()

    def row(self, item_id: str) -> int | None:
        return self._row.get(item_id)

    def item_at(self, row: int) -> str:
        return self._ids[row]

    def search_rows(
        self, queries: np.ndarray, k: int, exclude: Sequence[np.ndarray], decimals: int | None = None
    ) -> list[list[tuple[str, float]]]:
        """One matrix product for the batch, excluded rows masked at once, one ``argpartition``."""
        n_items = len(self._ids)
        q = self._check(queries, len(exclude))
        n = len(exclude)
        if n_items == 0 or k <= 0 or n == 0:
            return [[] for _ in exclude]
        scores = q @ self._matrix[:n_items].T  # [n_queries, n_items], a fresh array: mask in place
        lens = [len(r) for r in exclude]
        if any(lens):
            rows = np.repeat(np.arange(n, dtype=np.int64), lens)
            scores[rows, np.concatenate(exclude)] = -np.inf
        kk = min(k, n_items)
        if kk < n_items:
            top = np.argpartition(scores, n_items - kk, axis=1)[:, n_items - kk :]
        else:
            top = np.broadcast_to(np.arange(n_items), (n, n_items))
        vals = np.take_along_axis(scores, top, axis=1)
        # Best first; ties by row (stable): identical inputs give identical lists.
        order = np.lexsort((top, -vals), axis=1)
        top = np.take_along_axis(top, order, axis=1)
        vals = np.take_along_axis(vals, order, axis=1).astype(np.float64)
        if decimals is not None:
            vals = np.round(vals, decimals)
        ids = self._ids
        out: list[list[tuple[str, float]]] = []
        for trow, vrow in zip(top.tolist(), vals.tolist(), strict=True):
            out.append([(ids[j], v) for j, v in zip(trow, vrow, strict=True) if v != -np.inf])
        return out

    def search(
        self, queries: np.ndarray, k: int, exclude: Sequence[Collection[str]]
    ) -> list[list[tuple[str, float]]]:
        n_items = len(self._ids)
        q = self._check(queries, len(exclude))
        if n_items == 0 or k <= 0:
            return [[] for _ in exclude]
        scores = q @ self._matrix[:n_items].T  # [n_queries, n_items]
        out: list[list[tuple[str, float]]] = []
        for i, skip in enumerate(exclude):
            row = scores[i]
            rows = [self._row[s] for s in skip if s in self._row]
            if rows:
                row = row.copy()
                row[rows] = -np.inf
            kk = min(k, n_items - len(rows))
            if kk <= 0:
                out.append([])
                continue
            top = np.argpartition(-row, kk - 1)[:kk]
            # Ties broken by item position (stable): identical inputs give identical lists.
            top = top[np.lexsort((top, -row[top]))]
            out.append([(self._ids[j], float(row[j])) for j in top])
        return out
