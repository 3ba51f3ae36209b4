"""Time-decayed item popularity: the cold-start list for users with no state yet.

Each worker counts the clicks it processes (its partitions are a random sample of users, so the
ranking approximates the global one).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection


class Trending:
    """Decayed click counts; ``top`` ranks by count decayed to the latest event time.

    Args:
        half_life_s: Time for a click's weight to halve.
    """

    def __init__(self, half_life_s: float = 86_400.0) -> None:
        self._rate = math.log(2) / (half_life_s * 1000.0)
        self._scores: dict[str, float] = {}  # log-free: scores held at reference time _ref
        self._ref = 0

    def add(self, item_id: str, ts: int, weight: float = 1.0) -> None:
        """Count one interaction with ``item_id`` at ``ts`` (epoch ms)."""
        # Rescale everything to a new reference time only when it moves far (> 1 h), so adding
        # is O(1) almost always while every factor stays within exp(+-rate * 1 h).
        if ts > self._ref and (ts - self._ref > 3_600_000 or not self._scores):
            factor = math.exp(-self._rate * (ts - self._ref))
            for k in self._scores:
                self._scores[k] *= factor
            self._ref = ts
        self._scores[item_id] = self._scores.get(item_id, 0.0) + weight * math.exp(
            -self._rate * (self._ref - ts)
        )

    def top(self, k: int, exclude: Collection[str] = ()) -> list[tuple[str, float]]:
        """The ``k`` most popular items not in ``exclude``, best first (ties by item id)."""
        best = heapq.nsmallest(k, ((-s, item) for item, s in self._scores.items() if item not in exclude))
        return [(item, -neg) for neg, item in best]
