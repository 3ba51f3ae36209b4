"""``recstream eval``: prequential evaluation of recstream against baselines on a dataset.

Only the in-process mode exists so far (the real Processor with the in-process models, a memory
state store and the exact index); the pipeline mode through Kafka/Triton/Cassandra is not
implemented, so ``--mode`` accepts ``inprocess`` only.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from recstream.settings import REPO_ROOT, load_settings

if TYPE_CHECKING:
    import numpy as np

    from streams.datasets import MovieLens


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``eval`` command."""
    p = sub.add_parser(
        "eval",
        help="prequential HR/NDCG of recstream and baselines after a time cut",
        description=(
            "Replays every event in time order; each click after the cut (the last 1-CUT of the "
            "ratings) by a user with a previous event, on an item the user had not clicked, is "
            "scored against the list published for that user just before it, then applied. "
            "Baselines (rolling popularity, item-kNN, EASE, recstream frozen at the cut) are "
            "scored on the same events. Writes OUT (JSON), OUT.md and OUT.png. The model must "
            "be trained before the cut: `recstream train --dataset ... --until-frac CUT`."
        ),
    )
    p.add_argument("--dataset", required=True, metavar="movielens:DIR", help="dataset folder")
    p.add_argument("--k", type=int, default=20, help="list length (default 20)")
    p.add_argument("--mode", choices=["inprocess"], default="inprocess", help="only inprocess so far")
    p.add_argument("--cut", type=float, default=0.8, help="fraction of ratings before the cut (0-1)")
    p.add_argument("--model", type=Path, default=None, help="fusion artefact folder (default: latest)")
    p.add_argument(
        "--out", type=Path, default=REPO_ROOT / "reports" / "eval.json", help="JSON report (.md/.png beside)"
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=REPO_ROOT / "artifacts" / "cache",
        help="cache of text embeddings (shared with `recstream train`)",
    )
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def known_texts(ml: MovieLens, cache_dir: Path) -> dict[str, np.ndarray]:
    """Text embeddings of the catalogue from the training cache (computed there if absent)."""
    from encoders.catalog import cached_text_embeddings, movie_text

    ids, emb = cached_text_embeddings(ml, cache_dir)
    return {movie_text(ml.movies[int(m)]): emb[r] for r, m in enumerate(ids.tolist())}


def run(args: argparse.Namespace) -> int:
    """Execute ``eval``."""
    import torch

    from encoders.catalog import dataset_fingerprint
    from serving.repository import latest_trained
    from streams.datasets import DatasetError, load_movielens, parse_dataset_arg
    from streams.evaluation.inprocess import LeakError, run_inprocess
    from streams.evaluation.report import build_report, markdown_table, write_report

    t0 = time.monotonic()
    torch.set_num_threads(max(1, args.threads))
    settings = load_settings(k=args.k)
    if not 0.0 < args.cut < 1.0:
        print("recstream eval: --cut must be in (0, 1)", file=sys.stderr)
        return 2
    artefact = args.model or latest_trained(settings.model_dir)
    if artefact is None or not (artefact / "meta.json").is_file():
        print(
            f"recstream eval: no trained fusion artefact at {artefact or settings.model_dir}; run "
            f"`recstream train --dataset {args.dataset} --until-frac {args.cut}` first",
            file=sys.stderr,
        )
        return 2
    try:
        path = parse_dataset_arg(args.dataset)
        ml = load_movielens(path)
        known = known_texts(ml, args.cache_dir)
        t_load = time.monotonic() - t0
        result = asyncio.run(
            run_inprocess(
                ml,
                artefact,
                settings,
                cut_frac=args.cut,
                dataset_arg=args.dataset,
                progress=not args.no_progress,
                known_text=known,
            )
        )
    except LeakError as exc:
        print(f"recstream eval: {exc}", file=sys.stderr)
        return 2
    except DatasetError as exc:
        print(f"recstream eval: {exc}", file=sys.stderr)
        return 1
    result.timings["load_s"] = t_load
    result.timings["total_s"] = time.monotonic() - t0
    report = build_report(
        result,
        {
            "mode": args.mode,
            "dataset": {"path": str(path), "fingerprint": dataset_fingerprint(path)},
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
    )
    paths = write_report(report, result, args.out)
    print(markdown_table(report))
    print(f"report: {paths['json']}  table: {paths['markdown']}  plot: {paths['plot']}")
    return 0
