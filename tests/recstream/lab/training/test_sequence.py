"""The torch user state equals the worker's decayed sum (streams.state.userstate), and trains."""

from __future__ import annotations

import numpy as np
import torch

from encoders.policy import UserStatePolicy
from recstream.lab.datasets import Interaction
from recstream.lab.training.sequence import build_sequences, decayed_sum_state
from streams.state.userstate import accumulate


def events(n: int = 300) -> list[Interaction]:
    rng = np.random.default_rng(0)
    out, ts = [], 1_000_000
    for order in range(n):
        ts += int(rng.integers(0, 200_000))
        kind = "tag" if order % 17 == 0 else "rating"
        out.append(
            Interaction(
                int(rng.integers(0, 6)),
                int(rng.integers(0, 40)),
                ts,
                kind,
                value=float(rng.integers(1, 11)) / 2,
                order=order,
            )
        )
    return out


def test_state_matches_the_workers_decayed_sum() -> None:
    policy = UserStatePolicy(tau_s=86_400.0, weight_click=0.5, rating_power=1.0, include_reviews=True)
    seq = build_sequences(events(), {m: m for m in range(40)}, policy)
    emb = torch.nn.functional.normalize(
        torch.randn(40, 16, generator=torch.Generator().manual_seed(1)), dim=1
    )
    pos = seq.targets()
    item, age, w = (torch.from_numpy(a) for a in seq.window(pos, 512))  # window covers everything
    got = decayed_sum_state(emb.double(), item, age.double(), w.double(), policy.tau_s).numpy()
    e = emb.numpy()
    assert len(pos), "no targets"
    for r, p in enumerate(pos):
        acc: np.ndarray | None = None
        ref = 0
        for q in range(int(seq.start[p]), int(p)):
            acc, ref = accumulate(
                acc, ref, e[seq.item[q]], int(seq.ts[q]) * 1000, float(seq.weight[q]), policy.tau_s
            )
        assert acc is not None
        np.testing.assert_allclose(got[r], acc / np.linalg.norm(acc), atol=1e-6)


def test_targets_windows_and_seen() -> None:
    policy = UserStatePolicy()
    seq = build_sequences(events(), {m: m for m in range(40)}, policy)
    assert seq.is_click.all()  # reviews are dropped: include_reviews is False
    pos = seq.targets()
    assert len(pos) >= 10, len(pos)
    assert (pos > seq.start[pos]).all()
    item, age, w = seq.window(pos, 4)
    assert item.shape == (len(pos), 4) and (w[:, -1] > 0).all()
    assert (age >= 0).all() and (age[:, -1] == 0).all()  # the newest event is the reference
    rows, cols = seq.seen(pos[:10])
    for r, p in enumerate(pos[:10]):
        assert sorted(cols[rows == r]) == sorted(seq.item[seq.start[p] : p])


def test_gradients_flow() -> None:
    emb = torch.nn.functional.normalize(torch.randn(10, 8), dim=1).requires_grad_()
    item = torch.tensor([[0, 1, 2], [3, 3, 4]])
    u = decayed_sum_state(emb, item, torch.zeros(2, 3), torch.ones(2, 3), 3600.0)
    (u @ emb.T).logsumexp(1).sum().backward()
    assert emb.grad is not None and torch.isfinite(emb.grad).all() and emb.grad.abs().sum() > 0
