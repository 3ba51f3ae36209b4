"""Reference recommenders scored on exactly the events recstream is scored on.

Every baseline has the same small interface: :meth:`Baseline.observe` sees every event in
stream order (after it was scored), :meth:`Baseline.recommend` returns the top-``k`` item ids
for a user's current history, never one of ``exclude``. Ties are broken by the order in which
items first appeared (earlier first), so runs are deterministic.

* :class:`Popularity`: rolling count of all interactions (clicks and reviews) so far.
* :class:`ItemKNN`: item-item cosine similarity on the binary user-item click matrix before
  the cut; a user's score for an item is the sum of its similarities to the user's clicked items
  (the fresh history, post-cut clicks included).
* :class:`EASE`: Steck's EASE^R (closed form, ``lambda = 200``) on the same binary matrix,
  applied to the fresh history.

Only items with a click before the cut are candidates of the two fitted models (the others have
no row in the matrix). The binary matrix and the all-interaction counts are the choices that
reproduce the reference figures of ``shared/data/README.md``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from schemas.events import ClickEvent, Event, UploadEvent


@dataclass(frozen=True, slots=True)
class UserHistory:
    """A user's clicked items, oldest first, without repeats (append-only between calls).

    Attributes:
        user_id: The user.
        items: Item ids.
    """

    user_id: str
    items: Sequence[str]


class Baseline(ABC):
    """Common interface of the baselines."""

    name: str = "baseline"

    def observe(self, event: Event) -> None:  # noqa: B027 - optional hook
        """See one event (after it was scored). Default: ignore it."""

    @abstractmethod
    def recommend(self, user_history: UserHistory, k: int, exclude: Collection[str]) -> list[str]:
        """Top ``k`` item ids for the user, best first, none of them in ``exclude``."""


def _top(scores: np.ndarray, k: int, excluded_rows: Iterable[int]) -> list[int]:
    """Rows of the ``k`` highest scores (ties: lower row first), skipping excluded rows."""
    s = np.array(scores, dtype=np.float64, copy=True)
    rows = list(excluded_rows)
    if rows:
        s[rows] = -np.inf
    n_ok = len(s) - len(set(rows))
    kk = min(k, n_ok)
    if kk <= 0:
        return []
    top = np.argpartition(-s, kk - 1)[:kk]
    # argpartition is not stable among ties at the boundary: take all rows tied with the k-th.
    kth = s[top].min()
    cand = np.flatnonzero(s >= kth)
    order = np.lexsort((cand, -s[cand]))
    return [int(r) for r in cand[order][:kk]]


class Popularity(Baseline):
    """Rolling popularity: number of interactions (clicks and reviews) with each item so far."""

    name = "popularity"

    def __init__(self) -> None:
        self.row: dict[str, int] = {}
        self.ids: list[str] = []
        self.counts = np.zeros(1024, dtype=np.float64)

    def observe(self, event: Event) -> None:
        """Count a click or review."""
        if isinstance(event, UploadEvent):
            return
        r = self.row.get(event.item_id)
        if r is None:
            r = self.row[event.item_id] = len(self.ids)
            self.ids.append(event.item_id)
            if r == len(self.counts):
                self.counts = np.concatenate([self.counts, np.zeros_like(self.counts)])
        self.counts[r] += 1.0

    def recommend(self, user_history: UserHistory, k: int, exclude: Collection[str]) -> list[str]:
        """Most interacted-with items not in ``exclude``."""
        n = len(self.ids)
        rows = [self.row[i] for i in exclude if i in self.row]
        return [self.ids[r] for r in _top(self.counts[:n], k, rows)]


class _Linear(Baseline):
    """An item-item model: ``score = x @ W`` for the user's binary history vector ``x``.

    The per-user score vector is kept and extended as the history grows, so a recommendation
    costs one pass over the item axis.
    """

    def __init__(self) -> None:
        self.row: dict[str, int] = {}
        self.ids: list[str] = []
        self.weights = np.zeros((0, 0), dtype=np.float32)
        self._acc: dict[str, tuple[int, np.ndarray]] = {}

    def fit(self, clicks: Iterable[tuple[str, str]]) -> _Linear:
        """Fit on ``(user_id, item_id)`` clicks (before the cut); repeats count once."""
        users: dict[str, int] = {}
        pairs: set[tuple[int, int]] = set()
        for user, item in clicks:
            u = users.setdefault(user, len(users))
            if item not in self.row:
                self.row[item] = len(self.ids)
                self.ids.append(item)
            pairs.add((u, self.row[item]))
        x = np.zeros((len(users), len(self.ids)), dtype=np.float64)
        if pairs:
            uu, ii = zip(*pairs, strict=True)
            x[list(uu), list(ii)] = 1.0
        self.weights = self._solve(x).astype(np.float32)
        self._acc.clear()
        return self

    @abstractmethod
    def _solve(self, x: np.ndarray) -> np.ndarray:
        """The ``[n_items, n_items]`` item-item weight matrix from the binary matrix ``x``."""

    def scores(self, user_history: UserHistory) -> np.ndarray:
        """Scores of every fitted item for the user's history."""
        items = user_history.items
        cached = self._acc.get(user_history.user_id)
        if cached is None or cached[0] > len(items):
            cached = (0, np.zeros(len(self.ids), dtype=np.float64))
        done, acc = cached
        rows = [self.row[i] for i in items[done:] if i in self.row]
        if rows:
            acc = acc + self.weights[rows].sum(axis=0, dtype=np.float64)
        self._acc[user_history.user_id] = (len(items), acc)
        return acc

    def recommend(self, user_history: UserHistory, k: int, exclude: Collection[str]) -> list[str]:
        """Highest-scoring fitted items not in ``exclude``."""
        rows = [self.row[i] for i in exclude if i in self.row]
        return [self.ids[r] for r in _top(self.scores(user_history), k, rows)]


class ItemKNN(_Linear):
    """Item-based kNN with cosine similarity over all co-clicked items (no neighbour cut-off)."""

    name = "itemknn"

    def _solve(self, x: np.ndarray) -> np.ndarray:
        norms = np.sqrt(x.sum(axis=0))
        norms[norms == 0] = 1.0
        xn = x / norms
        sim = xn.T @ xn
        np.fill_diagonal(sim, 0.0)
        return sim


class EASE(_Linear):
    """EASE^R: ``B = I - P / diag(P)`` with ``P = (X^T X + lambda I)^-1``, ``diag(B) = 0``.

    Args:
        lam: L2 regularisation ``lambda``.
    """

    name = "ease"

    def __init__(self, lam: float = 200.0) -> None:
        super().__init__()
        self.lam = lam

    def _solve(self, x: np.ndarray) -> np.ndarray:
        g = x.T @ x
        g[np.diag_indices_from(g)] += self.lam
        p = np.linalg.inv(g)
        b = -p / np.diag(p)
        np.fill_diagonal(b, 0.0)
        return b


def pre_cut_clicks(events: Iterable[tuple[int, Event]], cut_order: int) -> list[tuple[str, str]]:
    """``(user_id, item_id)`` of the clicks with an order below ``cut_order``."""
    return [(e.user_id, e.item_id) for o, e in events if o < cut_order and isinstance(e, ClickEvent)]


def default_baselines(events: Sequence[tuple[int, Event]], cut_order: int) -> dict[str, Baseline]:
    """Rolling popularity, item-kNN and EASE (lambda 200), fitted on the clicks before the cut."""
    clicks = pre_cut_clicks(events, cut_order)
    return {"popularity": Popularity(), "itemknn": ItemKNN().fit(clicks), "ease": EASE(200.0).fit(clicks)}
