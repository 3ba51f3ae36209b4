"""The user-state update shared by the stream worker, training and evaluation.

A user's state is one unit vector ``u``. Each event with item embedding ``e`` at time ``ts``
moves it::

    u <- normalise(exp(-dt / tau) * u + weight * e),   dt = max(0, ts - last_ts) in seconds

Because ``u`` is renormalised after every event, ``weight`` is the step size of an exponential
moving average over the user's items (small weights keep a long memory, ``weight=1`` lets the
newest item count as much as the whole history), and ``tau`` fades history that has gone quiet.
Training (``encoders.sequence``) reproduces this exact recursion, so the model is fitted to the
state the stream will really hold.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["decayed_update"]


def decayed_update(
    u: np.ndarray | None,
    last_ts_ms: int | None,
    e: np.ndarray,
    ts_ms: int,
    weight: float,
    tau_s: float,
) -> np.ndarray:
    """Fold one event into a user state.

    Args:
        u: Current state (unit vector, float32) or ``None`` for a user without state. An all-zero
            vector is treated like ``None``.
        last_ts_ms: Time of the event that produced ``u`` (epoch ms). ``None`` with a non-empty
            ``u`` means "unknown": no decay is applied.
        e: Embedding of the event's item (any norm; item embeddings are unit vectors).
        ts_ms: Time of this event (epoch ms).
        weight: Strength of this event relative to the (unit-norm) history.
        tau_s: Decay time constant in seconds (> 0).

    Returns:
        The new state, float32, unit norm; the zero vector only if ``weight * e`` (plus the
        decayed history) is exactly zero.

    Raises:
        ValueError: ``tau_s`` is not positive, or the inputs are not finite (a NaN must never
            reach a stored state: it would poison every later list of that user).

    Note:
        Out-of-order events (``ts_ms < last_ts_ms``, e.g. a late Kafka partition) are applied with
        ``dt = 0``: history is not decayed and never amplified, so a late event cannot blow up the
        state. The returned state should keep ``max(last_ts_ms, ts_ms)`` as its timestamp.
    """
    if not tau_s > 0.0:
        raise ValueError(f"tau_s must be > 0, got {tau_s}")
    # Python-float scalars keep float32 arrays float32 (no silent upcast to float64).
    s = np.asarray(e, dtype=np.float32) * float(weight)
    if u is not None and u.any():
        decay = 1.0
        if last_ts_ms is not None and ts_ms > last_ts_ms:
            decay = math.exp(-(ts_ms - last_ts_ms) / (1000.0 * tau_s))
        s += np.asarray(u, dtype=np.float32) * decay
    # float(np.dot) is several times faster than np.linalg.norm on short vectors (hot path).
    n = math.sqrt(float(np.dot(s, s)))
    if not math.isfinite(n):
        raise ValueError("user-state update produced a non-finite vector")
    if n == 0.0:  # exactly zero, or so tiny its square underflows: no direction to keep
        return np.zeros_like(s)
    s *= 1.0 / n
    return s
