"""Training of the fusion model for next-item retrieval from the streamed user state.

For every click before the time cut, the user state is the one the stream would hold just
before it (:func:`recstream.lab.training.sequence.decayed_sum_state` over the user's last ``window`` events,
with the same decay and weights as the worker), the scores are dot products with *all* item
embeddings (a full softmax over ~9k items is cheap), items the user already clicked are masked
(the evaluation excludes them too) and the loss is cross-entropy with a learned temperature.
Only interactions with ``order < ml.cut_order(until_frac)`` are read, so an evaluation after the
cut never sees data the model was fitted on; the cut is stored in the artefact metadata.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from encoders.errors import TrainingError
from encoders.fusion import FusionConfig, FusionModel
from recstream.lab.datasets import MovieLens
from recstream.lab.training.config import TrainConfig
from recstream.lab.training.item_table import ItemTable, build_item_table, id_index
from recstream.lab.training.sequence import Sequences, build_sequences, decayed_sum_state

log = logging.getLogger(__name__)


@dataclass(slots=True)
class TrainResult:
    """Outcome of :func:`train_fusion`.

    Attributes:
        model: Trained model (eval mode).
        table: Inputs of every catalogue item.
        item_embeddings: ``[N, out_dim]`` embeddings of ``table.item_ids``.
        losses: Mean loss per step.
        meta: Metadata for the artefact (cut, mapping, stats, config, timing).
    """

    model: FusionModel
    table: ItemTable
    item_embeddings: np.ndarray
    losses: list[float]
    meta: dict[str, Any]


def seed_everything(seed: int) -> None:
    """Seed torch and numpy's global generators."""
    torch.manual_seed(seed)
    np.random.seed(seed)


def embed_items(model: FusionModel, table: ItemTable, batch: int = 4096) -> np.ndarray:
    """Embeddings of every item of ``table`` with all its modalities (eval mode)."""
    model.eval()
    text, image, feats, index, mask = table.tensors()
    out = []
    with torch.inference_mode():
        for s in range(0, len(index), batch):
            sl = slice(s, s + batch)
            out.append(model(text[sl], image[sl], feats[sl], index[sl], mask[sl]))
    return torch.cat(out).numpy().astype(np.float32)


def _batch_loss(
    model: FusionModel,
    log_scale: torch.Tensor,
    inputs: tuple[torch.Tensor, ...],
    seq: Sequences,
    pos: np.ndarray,
    cfg: TrainConfig,
    gen: torch.Generator,
) -> torch.Tensor:
    text, image, feats, index, mask = inputs
    step_mask = mask.clone()
    drop = torch.rand(len(index), generator=gen) < cfg.id_dropout
    step_mask[:, 3] &= ~drop
    emb = model(text, image, feats, index, step_mask)  # [N, D]: full softmax needs them all
    item, age, weight = (torch.from_numpy(a) for a in seq.window(pos, cfg.window))
    users = decayed_sum_state(emb, item, age, weight, cfg.policy.tau_s)
    logits = (users @ emb.T) * log_scale.exp().clamp(max=100.0)
    rows, cols = seq.seen(pos)
    logits[torch.from_numpy(rows), torch.from_numpy(cols)] = float("-inf")
    target = torch.from_numpy(seq.item[pos])
    return torch.nn.functional.cross_entropy(logits, target)


def train_fusion(
    ml: MovieLens,
    text_ids: np.ndarray,
    text_emb: np.ndarray,
    cfg: TrainConfig,
    *,
    progress: bool = True,
    on_epoch: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train the fusion model on the interactions before the cut.

    Args:
        ml: Dataset.
        text_ids: Movie ids of ``text_emb`` rows (every movie of ``ml``).
        text_emb: ``[N, 384]`` text embeddings.
        cfg: Hyper-parameters.
        progress: Show a tqdm bar.
        on_epoch: Called with ``(epoch, mean loss)`` after each epoch.

    Raises:
        TrainingError: Nothing to train on before the cut.
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    # Deterministic kernels cost nothing measurable on CPU; restored afterwards so a caller
    # (a test session, a notebook) keeps its own setting.
    torch.use_deterministic_algorithms(True)
    try:
        return _train(ml, text_ids, text_emb, cfg, progress, on_epoch)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)


def _train(
    ml: MovieLens,
    text_ids: np.ndarray,
    text_emb: np.ndarray,
    cfg: TrainConfig,
    progress: bool,
    on_epoch: Callable[[int, float], None] | None,
) -> TrainResult:
    t0 = time.monotonic()
    cut = ml.cut_order(cfg.until_frac)
    before = [i for i in ml.interactions if i.order < cut]
    index_of = id_index(i.movie_id for i in before)
    # With softmax_over="warm" the loss only sees items that had interactions before the cut;
    # with "catalogue" (the dataset's movies.csv, what the stream bootstraps from items.npy)
    # untouched items are negatives too. Both use no interaction after the cut.
    if cfg.softmax_over == "warm":
        rows = np.array([r for r, m in enumerate(text_ids.tolist()) if m in index_of])
    else:
        rows = np.arange(len(text_ids))
    table, stats = build_item_table(
        ml, text_ids[rows], text_emb[rows], index_of, None, image_dim=cfg.image_dim
    )
    row_of = {int(m): r for r, m in enumerate(table.item_ids.tolist())}
    seq = build_sequences(before, row_of, cfg.policy)
    targets = seq.targets()
    if len(targets) == 0:
        raise TrainingError("no clicks with a previous event before the cut")

    model = FusionModel(
        FusionConfig(
            text_dim=text_emb.shape[1],
            image_dim=table.image.shape[1],
            feature_dim=table.features.shape[1],
            num_ids=len(index_of) + 1,
            hidden_dim=cfg.hidden_dim,
            out_dim=cfg.out_dim,
            dropout=cfg.dropout,
        )
    )
    log_scale = torch.nn.Parameter(torch.tensor(float(-np.log(cfg.init_temperature))))
    params = [*model.parameters(), log_scale]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = -(-len(targets) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=cfg.epochs * steps_per_epoch, eta_min=cfg.lr * 0.05
    )
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    inputs = table.tensors()
    losses: list[float] = []
    bar = tqdm(total=cfg.epochs * steps_per_epoch, disable=not progress, desc="train", unit="step")
    for epoch in range(cfg.epochs):
        model.train()
        perm = rng.permutation(targets)
        epoch_losses = []
        for s in range(0, len(perm), cfg.batch_size):
            loss = _batch_loss(model, log_scale, inputs, seq, perm[s : s + cfg.batch_size], cfg, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            epoch_losses.append(losses[-1])
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{np.mean(epoch_losses[-50:]):.3f}")
        if on_epoch:
            on_epoch(epoch + 1, float(np.mean(epoch_losses)))
    bar.close()
    full, _ = build_item_table(ml, text_ids, text_emb, index_of, stats, image_dim=cfg.image_dim)
    item_emb = embed_items(model, full)
    meta = {
        "cut_frac": cfg.until_frac,
        "trained_until_order": cut,
        "trained_until_ts": ml.cut_ts(cfg.until_frac),
        "last_trained_ts": max(i.ts for i in before),
        "n_train_interactions": len(before),
        "n_train_examples": len(targets),
        "item_index": {str(k): v for k, v in index_of.items()},
        "feature_stats": asdict(stats),
        "user_state": cfg.policy.to_dict(),
        "image_input": {"kind": "descriptor", "dim": cfg.image_dim},
        "temperature": 1.0 / log_scale.detach().exp().clamp(max=100.0).item(),
        "train_config": {k: v for k, v in asdict(cfg).items() if k != "policy"},
        "seed": cfg.seed,
        "epochs": cfg.epochs,
        "final_loss": float(np.mean(losses[-steps_per_epoch:])),
        "train_seconds": round(time.monotonic() - t0, 1),
    }
    return TrainResult(model.eval(), full, item_emb, losses, meta)
