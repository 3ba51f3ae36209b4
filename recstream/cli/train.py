"""``recstream train``: fit the fusion model on a dataset's interactions before a time cut."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from recstream.settings import load_settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``train`` command."""
    from recstream.lab.training.config import TrainConfig  # torch-free: --help stays light

    d = TrainConfig()
    p = sub.add_parser(
        "train",
        help="train the fusion model and write a versioned artefact",
        description=(
            "Trains the item-fusion model for next-item retrieval on the interactions before "
            "the time cut (the first --until-frac of ratings), writes <out>/fusion/<n>/ "
            "(model.pt, meta.json, items.npy, item_ids.npy, loss.png) with the next version "
            "number. Decay and click weight default to RECSTREAM_DECAY_TAU_S and "
            "RECSTREAM_WEIGHT_CLICK, so the model is fitted to the state the worker keeps."
        ),
    )
    p.add_argument("--dataset", required=True, metavar="movielens:DIR", help="dataset folder")
    p.add_argument("--until-frac", type=float, default=d.until_frac, help="time cut (0-1)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", type=Path, default=None, help="model dir (default: settings)")
    p.add_argument(
        "--cache-dir",
        type=Path,
        help="text embedding cache, keyed by dataset fingerprint (default: RECSTREAM_EMBEDDING_CACHE_DIR)",
    )
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--dim", type=int, default=d.out_dim, help="item-embedding width (64-128)")
    p.add_argument("--window", type=int, default=d.window, help="events replayed per example")
    p.add_argument("--id-dropout", type=float, default=d.id_dropout)
    p.add_argument(
        "--tau-s",
        type=float,
        default=None,
        help=f"user-state decay in seconds (default: RECSTREAM_DECAY_TAU_S if set, else {d.policy.tau_s:g}, "
        "chosen on validation data before the cut)",
    )
    p.add_argument("--weight-click", type=float, default=None, help="default: settings")
    p.add_argument("--rating-power", type=float, default=d.policy.rating_power)
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--eval", action="store_true", help="also score the events after the cut (quick_eval)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``train``."""
    from encoders.artefact import write_artefact
    from encoders.errors import EncoderError
    from encoders.policy import UserStatePolicy
    from recstream.lab.datasets import DatasetError, load_movielens, parse_dataset_arg
    from recstream.lab.training.item_table import cached_text_embeddings, dataset_fingerprint
    from recstream.lab.training.quick_eval import prequential
    from recstream.lab.training.train import TrainConfig, train_fusion

    settings = load_settings()
    out = args.out or settings.model_dir
    try:
        t0 = time.monotonic()
        ml = load_movielens(parse_dataset_arg(args.dataset))
        ids, text = cached_text_embeddings(ml, args.cache_dir or settings.embedding_cache_dir)
        t_text = time.monotonic() - t0
        policy = UserStatePolicy.from_settings(
            settings,
            tau_s=args.tau_s,
            weight_click=args.weight_click,
            rating_power=args.rating_power,
        )
        cfg = TrainConfig(
            until_frac=args.until_frac,
            epochs=args.epochs,
            seed=args.seed,
            batch_size=args.batch_size,
            lr=args.lr,
            out_dim=args.dim,
            window=args.window,
            id_dropout=args.id_dropout,
            policy=policy,
            threads=args.threads,
        )
        res = train_fusion(ml, ids, text, cfg, progress=not args.no_progress)
        meta = {
            **res.meta,
            "dataset": str(ml.path),
            "dataset_fingerprint": dataset_fingerprint(ml.path),
            "text_model": "sentence-transformers/all-MiniLM-L6-v2",
            "text_seconds": round(t_text, 1),
        }
        if args.eval:
            ev = prequential(
                ml,
                res.table.item_ids,
                res.item_embeddings,
                policy,
                start_order=res.meta["trained_until_order"],
                k=settings.k,
                warm_items={int(m) for m in res.meta["item_index"]},
            )
            meta["eval_after_cut"] = ev.as_dict()
        steps = -(-res.meta["n_train_examples"] // cfg.batch_size)
        folder = write_artefact(
            out, res.model, meta, res.table.item_ids, res.item_embeddings, res.losses, steps
        )
    except (DatasetError, EncoderError, ValueError) as exc:
        print(f"recstream train: {exc}", file=sys.stderr)
        return 1
    summary = {
        "artefact": str(folder),
        "model_version": f"fusion-v{folder.name}",
        "final_loss": round(res.meta["final_loss"], 4),
        "train_seconds": res.meta["train_seconds"],
        "trained_until_order": res.meta["trained_until_order"],
    }
    if "eval_after_cut" in meta:
        ev_d = meta["eval_after_cut"]
        summary.update({"hr": round(ev_d["hr"], 4), "ndcg": round(ev_d["ndcg"], 4), "n": ev_d["n"]})
    print(json.dumps(summary, indent=1))
    return 0
