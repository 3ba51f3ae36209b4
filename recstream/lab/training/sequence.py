"""Per-user event sequences and the torch twin of the worker's user state.

Training scores each interaction against the user state the stream would hold just before it.
The worker keeps the time-decayed sum of weighted event embeddings (:mod:`streams.state.userstate`),
normalised when read; :func:`decayed_sum_state` computes the same sum differentiably over a
window of the user's most recent events. ``tests/recstream/lab/training/test_sequence.py`` checks it against
:func:`streams.state.userstate.accumulate`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from encoders.policy import UserStatePolicy
from recstream.lab.datasets import Interaction


@dataclass(slots=True)
class Sequences:
    """All state-changing events, grouped by user, each user's events in stream order.

    Attributes:
        user: ``[E]`` user id of each event.
        item: ``[E]`` item-table row.
        ts: ``[E]`` epoch seconds.
        weight: ``[E]`` weight per :class:`UserStatePolicy`.
        is_click: ``[E]`` rating/click (scored and excluded later) vs review.
        start: ``[E]`` position of the first event of the same user.
        order: ``[E]`` position in the dataset's merged stream.
    """

    user: np.ndarray
    item: np.ndarray
    ts: np.ndarray
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
            ``(item [B, W], age [B, W], weight [B, W])``: ``age`` is how many seconds each event
            is older than the newest one in the window (the state's reference time, as in the
            worker); padding has weight 0.
        """
        idx = pos[:, None] - size + np.arange(size)[None, :]
        valid = idx >= self.start[pos][:, None]
        idx = np.where(valid, idx, 0)
        ts = np.where(valid, self.ts[idx], 0)  # epoch seconds are positive: padding never wins
        ref = ts.max(axis=1, keepdims=True)
        return (
            np.where(valid, self.item[idx], 0),
            np.where(valid, ref - ts, 0).astype(np.float32),
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
    return Sequences(
        user=user,
        item=np.array([row_of[i.movie_id] for i, _ in events], dtype=np.int64),
        ts=ts,
        weight=np.array([w for _, w in events], dtype=np.float32),
        is_click=np.array([i.kind == "rating" for i, _ in events], dtype=bool),
        start=start.astype(np.int64),
        order=np.array([i.order for i, _ in events], dtype=np.int64),
    )


def decayed_sum_state(
    emb: torch.Tensor, item: torch.Tensor, age: torch.Tensor, weight: torch.Tensor, tau_s: float
) -> torch.Tensor:
    """User states as the worker computes them: ``normalise(sum_j w_j exp(-age_j / tau) e_j)``.

    Args:
        emb: ``[N, D]`` item embeddings.
        item: ``[B, W]`` item rows.
        age: ``[B, W]`` seconds between each event and the newest event of its window.
        weight: ``[B, W]`` event weights; 0 marks padding.
        tau_s: Decay constant in seconds.

    Returns:
        ``[B, D]`` unit user states (zero rows for all-padding windows).
    """
    coef = weight * torch.exp(-age / tau_s)  # [B, W]; the newest event has age 0, so coef > 0
    out = torch.einsum("bw,bwd->bd", coef.to(emb.dtype), emb[item])
    return nn.functional.normalize(out, p=2.0, dim=1)
