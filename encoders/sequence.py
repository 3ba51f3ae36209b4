"""Per-user event sequences and the torch twin of :func:`streams.update.decayed_update`.

Training scores each interaction against the user state the stream would hold just before it.
That state is a recursion (renormalised after every event), not a plain weighted sum, so
:func:`recursive_state` replays the same recursion differentiably over a window of the user's
most recent events. ``tests/encoders/test_sequence.py`` checks it against the numpy function.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
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


@contextmanager
def _one_thread() -> Iterator[None]:
    # The replay is W tiny sequential ops. Split over threads, each op waits at a barrier for
    # every thread; on a busy machine one descheduled thread stalls it for a whole time slice
    # (measured: 3.7 s instead of 0.04 s per batch on 2 contended cores). One thread avoids it.
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


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
    b, w = item.shape
    with torch.no_grad(), _one_thread():
        # Unrolled, the recursion u_j = (a_j u_{j-1} + w_j e_j) / n_j (a = decay, n = the norm
        # taken at step j) is u = sum_j c_j e_j with c_j = (w_j / n_j) * prod_{i>j} a_i / n_i.
        # Replaying it once without autograd gives the n_j exactly; the differentiable part is
        # then one weighted sum, far cheaper to back-propagate than W sequential steps. The
        # gradient treats the per-step norms as constants (the value is exact).
        et = e.detach().transpose(0, 1).contiguous()  # [W, B, D]: one contiguous block per step
        decay = torch.exp(-dt / tau_s).t().contiguous().unsqueeze(-1)  # [W, B, 1]
        wt = weight.t().contiguous().unsqueeze(-1)
        live = wt > 0
        u = torch.zeros(b, emb.shape[1], dtype=emb.dtype)
        norms = torch.ones(w, b, 1, dtype=emb.dtype)
        for j in range(w):
            s = torch.addcmul(decay[j] * u, wt[j], et[j])
            n = torch.linalg.vector_norm(s, dim=1, keepdim=True).clamp_(min=1e-12)
            norms[j] = n
            u = torch.where(live[j], s / n, u)
        # Padding steps leave the state alone: factor 1, coefficient 0.
        ratio = torch.where(live, decay / norms, torch.ones_like(norms)).squeeze(-1)  # [W, B]
        suffix = torch.flip(torch.cumprod(torch.flip(ratio, [0]), 0), [0])  # prod over i >= j
        after = torch.cat([suffix[1:], torch.ones(1, b, dtype=emb.dtype)])  # prod over i > j
        coef = (torch.where(live, wt / norms, torch.zeros_like(norms)).squeeze(-1) * after).t()
    out = torch.einsum("bw,bwd->bd", coef, e)
    # Renormalising is the identity on the value but lets gradients see the final scale.
    return nn.functional.normalize(out, p=2.0, dim=1) * (coef.sum(1, keepdim=True) > 0)
