"""Per-user event sequences and the torch twin of :func:`streams.update.decayed_update`.

Training scores each interaction against the user state the stream would hold just before it.
That state is a recursion (renormalised after every event), not a plain weighted sum, so
:func:`recursive_state` replays the same recursion differentiably over a window of the user's
most recent events. ``tests/encoders/test_sequence.py`` checks it against the numpy function.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from encoders.policy import UserStatePolicy
from streams.datasets import Interaction


@dataclass(slots=True)
class Sequences:
    """All state-changing events, grouped by user, each user's events in stream order.

    Attributes:
        user: ``[E]`` user id of each event.
        item: ``[E]`` item-table row.
        ts: ``[E]`` epoch seconds.
        dt: ``[E]`` seconds since the user's previous event (0 for the first).
        weight: ``[E]`` weight per :class:`UserStatePolicy`.
        is_click: ``[E]`` rating/click (scored and excluded later) vs review.
        start: ``[E]`` position of the first event of the same user.
        order: ``[E]`` position in the dataset's merged stream.
    """

    user: np.ndarray
    item: np.ndarray
    ts: np.ndarray
    dt: np.ndarray
    weight: np.ndarray
    is_click: np.ndarray
    start: np.ndarray
    order: np.ndarray

    def targets(self) -> np.ndarray:
        """Positions usable as training targets: clicks with at least one earlier event."""
        return np.flatnonzero(self.is_click & (np.arange(len(self.user)) > self.start))

    def window(self, pos: np.ndarray, size: int) -> tuple[np.ndarray, ...]:
        """The ``size`` events before each position, left-padded.

        Returns:
            ``(item [B, W], dt [B, W], weight [B, W])``; padding has weight 0.
        """
        idx = pos[:, None] - size + np.arange(size)[None, :]
        valid = idx >= self.start[pos][:, None]
        idx = np.where(valid, idx, 0)
        return (
            np.where(valid, self.item[idx], 0),
            np.where(valid, self.dt[idx], 0.0).astype(np.float32),
            np.where(valid, self.weight[idx], 0.0).astype(np.float32),
        )

    def seen(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(row, item)`` pairs: every click of the user before each position (full history).

        These are the items the evaluation excludes from the list, so the loss masks them too.
        """
        rows, cols = [], []
        for r, p in enumerate(pos.tolist()):
            s = int(self.start[p])
            items = self.item[s:p][self.is_click[s:p]]
            rows.append(np.full(len(items), r, dtype=np.int64))
            cols.append(items)
        if not rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(rows), np.concatenate(cols).astype(np.int64)


def build_sequences(
    interactions: Iterable[Interaction], row_of: dict[int, int], policy: UserStatePolicy
) -> Sequences:
    """Group events by user (stable: ties keep stream order), dropping weight-0 events.

    Args:
        interactions: Events in stream order (e.g. those before the cut).
        row_of: Item-table row of each movie id; events on unknown movies are dropped.
        policy: Event weights.
    """
    events = [
        (i, w) for i in interactions if i.movie_id in row_of and (w := policy.weight(i.kind, i.value)) > 0
    ]
    events.sort(key=lambda x: (x[0].user_id, x[0].order))
    n = len(events)
    user = np.array([i.user_id for i, _ in events], dtype=np.int64)
    ts = np.array([i.ts for i, _ in events], dtype=np.int64)
    first = np.ones(n, dtype=bool)
    first[1:] = user[1:] != user[:-1]
    start = np.maximum.accumulate(np.where(first, np.arange(n), 0)) if n else np.zeros(0, int)
    dt = np.zeros(n, dtype=np.float64)
    if n:
        dt[1:] = np.maximum(ts[1:] - ts[:-1], 0)  # out-of-order clamps to 0, as in the stream
        dt[first] = 0.0
    return Sequences(
        user=user,
        item=np.array([row_of[i.movie_id] for i, _ in events], dtype=np.int64),
        ts=ts,
        dt=dt,
        weight=np.array([w for _, w in events], dtype=np.float32),
        is_click=np.array([i.kind == "rating" for i, _ in events], dtype=bool),
        start=start.astype(np.int64),
        order=np.array([i.order for i, _ in events], dtype=np.int64),
    )


def recursive_state(
    emb: torch.Tensor, item: torch.Tensor, dt: torch.Tensor, weight: torch.Tensor, tau_s: float
) -> torch.Tensor:
    """Differentiable replay of ``decayed_update`` over windows of events.

    Args:
        emb: ``[N, D]`` item embeddings.
        item: ``[B, W]`` item rows, oldest first.
        dt: ``[B, W]`` seconds since the previous event.
        weight: ``[B, W]`` event weights; 0 marks padding (state left unchanged).
        tau_s: Decay constant in seconds.

    Returns:
        ``[B, D]`` user states (unit vectors; zero rows for all-padding windows).
    """
    e = emb[item]  # [B, W, D]
    decay = torch.exp(-dt / tau_s)
    with torch.no_grad():
        # Unrolled, the recursion is u = sum_j c_j e_j with c_j = (w_j / n_j) * prod_{i>j}
        # (a_i / n_i), where a = decay and n = the norm taken at each step. Replaying the
        # recursion once without autograd gives the c_j exactly; the differentiable part is
        # then one weighted sum, far cheaper to back-propagate than W sequential steps. The
        # gradient treats the per-step norms as constants (the value is exact).
        u = torch.zeros(item.shape[0], emb.shape[1], dtype=emb.dtype)
        coef = torch.zeros_like(weight)
        for j in range(item.shape[1]):
            w = weight[:, j : j + 1]
            s = decay[:, j : j + 1] * u + w * e[:, j]
            n = s.norm(dim=1, keepdim=True).clamp(min=1e-12)
            live = w > 0
            u = torch.where(live, s / n, u)
            # Every earlier coefficient is scaled by a_j / n_j, the new one is w_j / n_j.
            scale = torch.where(live, decay[:, j : j + 1] / n, torch.ones_like(n))
            coef = coef * scale
            coef[:, j : j + 1] = torch.where(live, w / n, torch.zeros_like(n))
    out = torch.einsum("bw,bwd->bd", coef, e)
    # Renormalising is the identity on the value but lets gradients see the final scale.
    return nn.functional.normalize(out, p=2.0, dim=1) * (coef.sum(1, keepdim=True) > 0)
