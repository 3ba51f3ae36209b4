"""``recstream replay``: replay a MovieLens folder as click/upload/review events.

Events go to Kafka (the topic of each type, keyed by user id) or, with ``--out``, to a JSONL
file that ``recstream validate`` can check; the file mode needs no Kafka.
"""

from __future__ import annotations

import argparse
import sys


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``replay`` sub-command."""
    parser = subparsers.add_parser(
        "replay",
        help="replay a MovieLens folder as events (to Kafka, or a JSONL file with --out)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", required=True, metavar="movielens:DIR", help="data folder")
    parser.add_argument(
        "--rate",
        type=_positive_float,
        metavar="EVENTS_PER_S",
        help="send at most this many events per second",
    )
    parser.add_argument("--limit", type=_count, metavar="N", help="stop after N events")
    parser.add_argument(
        "--speedup", type=_positive_float, metavar="X", help="pace by event time divided by X"
    )
    parser.add_argument(
        "--out",
        metavar="FILE.jsonl",
        help="write events to this file ('-': stdout) instead of Kafka",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``replay``; returns the exit code."""
    # Heavy imports here, so `recstream --help` stays fast.
    from tqdm import tqdm

    from recstream.lab.datasets import DatasetError, load_movielens, parse_dataset_arg
    from recstream.lab.replay import (
        EventSink,
        JsonlSink,
        KafkaEventSink,
        Pacer,
        ReplayError,
        count_movielens_events,
        movielens_events,
        replay,
    )
    from recstream.settings import load_settings

    settings = load_settings()
    try:
        ml = load_movielens(parse_dataset_arg(args.dataset))
    except DatasetError as exc:
        print(f"recstream replay: {exc}", file=sys.stderr)
        return 2
    total = count_movielens_events(ml)
    if args.limit is not None:
        total = min(total, args.limit)
    pacer = Pacer(rate=args.rate, speedup=args.speedup) if args.rate or args.speedup else None
    try:
        sink: EventSink = JsonlSink(args.out) if args.out else KafkaEventSink(settings)
    except (OSError, ReplayError) as exc:
        print(f"recstream replay: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, OSError) else 1
    bar = tqdm(total=total, unit="ev", file=sys.stderr, disable=args.no_progress, mininterval=0.5)
    try:
        try:
            stats = replay(movielens_events(ml), sink, pacer=pacer, limit=args.limit, progress=bar.update)
        finally:
            bar.close()
            sink.close()
    except (OSError, ReplayError) as exc:
        print(f"recstream replay: {exc}", file=sys.stderr)
        return 1
    per_type = ", ".join(f"{k} {v}" for k, v in sorted(stats.counts.items()))
    rate = stats.total / stats.seconds if stats.seconds > 0 else 0.0
    print(
        f"recstream replay: {stats.total} events ({per_type}) in {stats.seconds:.1f} s "
        f"({rate:,.0f} ev/s) -> {args.out or 'Kafka ' + settings.kafka_bootstrap_servers}",
        file=sys.stderr,
    )
    return 0
