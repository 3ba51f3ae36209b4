"""``recstream eval``: prequential evaluation of recstream against baselines on a dataset.

``--mode inprocess``: the real Processor with the in-process models, a memory state store and
the exact index (fast, no servers). ``--mode pipeline``: the events go through Kafka to real
workers with Triton and Cassandra (an isolated deployment on the running stack), and the lists
are read back from ``recs.updated`` by trigger event id. ``--mode both`` runs the two and adds
their parity (HR difference, share of identical lists) to the report.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from recstream.settings import load_settings

if TYPE_CHECKING:
    import numpy as np

    from recstream.lab.datasets import MovieLens


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
    p.add_argument(
        "--mode",
        choices=["inprocess", "pipeline", "both"],
        default="inprocess",
        help="inprocess (no servers), pipeline (Kafka, workers, Triton, Cassandra; needs "
        "`recstream stack up` serving --model) or both (adds their parity)",
    )
    p.add_argument("--workers", type=int, default=1, help="worker processes in pipeline mode")
    p.add_argument("--cut", type=float, default=0.8, help="fraction of ratings before the cut (0-1)")
    p.add_argument("--model", type=Path, default=None, help="fusion artefact folder (default: latest)")
    p.add_argument(
        "--out", type=Path, help="JSON report, .md/.png beside (default: <RECSTREAM_REPORTS_DIR>/eval.json)"
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        help="text embedding cache, shared with `recstream train` (default: RECSTREAM_EMBEDDING_CACHE_DIR)",
    )
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def known_texts(ml: MovieLens, cache_dir: Path) -> dict[str, np.ndarray]:
    """Text embeddings of the catalogue from the training cache (computed there if absent)."""
    from recstream.lab.training.item_table import cached_text_embeddings, movie_text

    ids, emb = cached_text_embeddings(ml, cache_dir)
    return {movie_text(ml.movies[int(m)]): emb[r] for r, m in enumerate(ids.tolist())}


def run(args: argparse.Namespace) -> int:
    """Execute ``eval``."""
    import torch

    from recstream.lab.datasets import DatasetError, load_movielens, parse_dataset_arg
    from recstream.lab.evaluation.inprocess import LeakError, run_inprocess
    from recstream.lab.evaluation.pipeline import PipelineEvalError, parity, run_pipeline
    from recstream.lab.evaluation.report import build_report, markdown_table, write_report
    from recstream.lab.provenance import provenance
    from recstream.lab.training.item_table import dataset_fingerprint
    from serving.repository import latest_trained

    t0 = time.monotonic()
    torch.set_num_threads(max(1, args.threads))
    settings = load_settings(k=args.k)
    prov = provenance(settings)  # the code and machine as the run starts
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
        known = known_texts(ml, args.cache_dir or settings.embedding_cache_dir)
        t_load = time.monotonic() - t0
        kwargs = {"cut_frac": args.cut, "dataset_arg": args.dataset, "progress": not args.no_progress}
        parity_figures = None
        if args.mode in ("inprocess", "both"):
            result = asyncio.run(run_inprocess(ml, artefact, settings, known_text=known, **kwargs))
        if args.mode in ("pipeline", "both"):
            inproc = result if args.mode == "both" else None
            result = asyncio.run(run_pipeline(ml, artefact, settings, workers=args.workers, **kwargs))
            if inproc is not None:
                parity_figures = parity(inproc, result)
                parity_figures["inprocess_hr"] = inproc.tallies["recstream"].figures(args.k)[f"hr@{args.k}"]
    except (LeakError, PipelineEvalError) as exc:
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
            "provenance": prov,
            **({"parity": parity_figures} if parity_figures is not None else {}),
        },
    )
    paths = write_report(report, result, args.out or settings.reports_dir / "eval.json")
    print(markdown_table(report))
    if parity_figures is not None:
        print(
            f"parity (inprocess vs pipeline): HR diff {parity_figures['hr_diff']:.4f}, identical lists "
            f"{parity_figures['identical_lists']:.2%} of {parity_figures['events']:,} scored events"
        )
    print(f"report: {paths['json']}  table: {paths['markdown']}  plot: {paths['plot']}")
    return 0
