"""Approximate top-K with a faiss HNSW graph (inner product): for millions of items.

HNSW cannot delete or overwrite vectors, so an upsert of a known id marks the old graph node
stale and adds a new one; searches over-fetch and drop stale and excluded ids.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import faiss
import numpy as np

from streams.retrieval.base import ItemIndex


class FaissIndex(ItemIndex):
    """HNSW index (M=32, efSearch=128) over inner product."""

    def __init__(self, dim: int, m: int = 32, ef_search: int = 128) -> None:
        super().__init__(dim)
        self._index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        self._index.hnsw.efSearch = ef_search
        self._node_ids: list[str] = []  # graph node -> item id
        self._current: dict[str, int] = {}  # item id -> its live node
        self._vectors: dict[str, np.ndarray] = {}
        self._rows: dict[str, int] = {}  # item id -> stable row number
        self._row_ids: list[str] = []

    def __len__(self) -> int:
        return len(self._current)

    def upsert(self, item_ids: Sequence[str], vectors: np.ndarray) -> None:
        arr = self._check(vectors, len(item_ids))
        start = len(self._node_ids)
        self._index.add(arr)
        for j, (item_id, vec) in enumerate(zip(item_ids, arr, strict=True)):
            self._node_ids.append(item_id)
            self._current[item_id] = start + j
            self._vectors[item_id] = vec.copy()
            if item_id not in self._rows:
                self._rows[item_id] = len(self._row_ids)
                self._row_ids.append(item_id)
                self.version += 1

    def row(self, item_id: str) -> int | None:
        return self._rows.get(item_id)

    def item_at(self, row: int) -> str:
        return self._row_ids[row]

    def get(self, item_id: str) -> np.ndarray | None:
        vec = self._vectors.get(item_id)
        return None if vec is None else vec.copy()

    def search(
        self, queries: np.ndarray, k: int, exclude: Sequence[Collection[str]]
    ) -> list[list[tuple[str, float]]]:
        q = self._check(queries, len(exclude))
        if not self._current or k <= 0:
            return [[] for _ in exclude]
        stale = len(self._node_ids) - len(self._current)
        fetch = min(len(self._node_ids), k + stale + max((len(s) for s in exclude), default=0))
        scores, nodes = self._index.search(q, fetch)
        out: list[list[tuple[str, float]]] = []
        for i, skip in enumerate(exclude):
            hits: list[tuple[str, float]] = []
            for node, score in zip(nodes[i], scores[i], strict=True):
                if node < 0:
                    continue
                item_id = self._node_ids[node]
                if self._current.get(item_id) != node or item_id in skip:
                    continue
                hits.append((item_id, float(score)))
                if len(hits) == k:
                    break
            out.append(hits)
        return out
