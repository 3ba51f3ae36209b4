"""Sliding-window statistics for the ops page: rate of a counter, percentiles of samples.

Both windows take the current time as an argument (no clock of their own), so they are pure and
tested directly. Memory is bounded: a :class:`RateWindow` keeps one snapshot per ``add`` within
the window (at most ``max_points``), a :class:`SampleWindow` at most ``max_samples`` values.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence

#: Length of the ops page's window.
WINDOW_S = 60.0


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values.

    Args:
        sorted_values: Values in ascending order (not empty).
        q: Quantile in [0, 1] (0.99 for p99).

    Returns:
        The smallest value such that at least ``q`` of the values are at or below it.

    Raises:
        ValueError: ``sorted_values`` is empty or ``q`` is outside [0, 1].
    """
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} outside [0, 1]")
    rank = max(1, math.ceil(q * len(sorted_values)))
    return float(sorted_values[rank - 1])


class RateWindow:
    """Per-second rate of a monotonic counter over the last ``window_s`` seconds.

    Feed it snapshots ``(now, total)`` of the counter (a timer does, once a second); the rate is
    the increase between the oldest snapshot inside the window and the newest one, divided by
    the time between them. A counter reset (process restart) restarts the window.

    Args:
        window_s: Window length in seconds.
        max_points: Most snapshots kept.
    """

    def __init__(self, window_s: float = WINDOW_S, max_points: int = 3600) -> None:
        self.window_s = window_s
        self._points: deque[tuple[float, float]] = deque(maxlen=max_points)

    def add(self, now: float, total: float) -> None:
        """Record the counter's value ``total`` at time ``now`` (seconds, monotonic)."""
        if self._points and (total < self._points[-1][1] or now < self._points[-1][0]):
            self._points.clear()  # counter reset or clock jump: start over
        self._points.append((now, total))
        self._trim(now)

    def _trim(self, now: float) -> None:
        while len(self._points) > 1 and self._points[0][0] < now - self.window_s:
            self._points.popleft()

    @property
    def total(self) -> float:
        """The newest snapshot's value (0 before the first)."""
        return self._points[-1][1] if self._points else 0.0

    def increase(self, now: float) -> float:
        """Counter increase within the window ending at ``now``."""
        self._trim(now)
        if len(self._points) < 2:
            return 0.0
        return self._points[-1][1] - self._points[0][1]

    def rate(self, now: float) -> float:
        """Increase per second within the window ending at ``now`` (0 with fewer than 2 points)."""
        self._trim(now)
        if len(self._points) < 2:
            return 0.0
        span = self._points[-1][0] - self._points[0][0]
        return 0.0 if span <= 0 else (self._points[-1][1] - self._points[0][1]) / span


class SampleWindow:
    """Values observed in the last ``window_s`` seconds, for percentiles.

    Args:
        window_s: Window length in seconds.
        max_samples: Most values kept; beyond it the oldest are dropped first.
    """

    def __init__(self, window_s: float = WINDOW_S, max_samples: int = 50_000) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, float]] = deque(maxlen=max_samples)

    def add(self, now: float, values: Iterable[float]) -> None:
        """Record ``values`` observed at time ``now`` (seconds, monotonic)."""
        self._samples.extend((now, float(v)) for v in values)

    def values(self, now: float) -> list[float]:
        """The values observed within the window ending at ``now``, oldest first."""
        while self._samples and self._samples[0][0] < now - self.window_s:
            self._samples.popleft()
        return [v for _, v in self._samples]

    def percentiles(self, now: float, qs: Sequence[float] = (0.5, 0.95, 0.99)) -> dict[str, float | None]:
        """Nearest-rank percentiles of the window's values.

        Returns:
            ``{"p50": ..., "p95": ..., "p99": ...}`` (keys from ``qs``); values are None when
            the window is empty.
        """
        vals = sorted(self.values(now))
        return {_label(q): (percentile(vals, q) if vals else None) for q in qs}


def _label(q: float) -> str:
    return f"p{q * 100:g}"
