"""Retrieval over item embeddings: the interface (``base``), exact search, and a faiss ANN index."""

from __future__ import annotations

from streams.retrieval.base import ItemIndex


def make_index(backend: str, dim: int) -> ItemIndex:
    """The index chosen by the ``ann_backend`` setting (``exact`` or ``faiss``)."""
    if backend == "exact":
        from streams.retrieval.exact import ExactIndex

        return ExactIndex(dim)
    if backend == "faiss":
        from streams.retrieval.faiss import FaissIndex

        return FaissIndex(dim)
    raise ValueError(f"unknown ann_backend {backend!r}")


__all__ = ["ItemIndex", "make_index"]
