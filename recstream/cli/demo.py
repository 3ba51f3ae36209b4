"""``recstream demo``: the whole pipeline on MovieLens, live in the terminal. Ctrl-C stops it."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from recstream.settings import REPO_ROOT, load_settings

#: The sample dataset of the source checkout (read only; not part of an installed wheel).
SAMPLE = REPO_ROOT / "deploy" / "local" / "sample" / "movielens"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` command."""
    p = sub.add_parser(
        "demo",
        help="run the live demo (stack, model, worker, replay, terminal view)",
        description=(
            "Starts the local stack if needed, applies the schema, trains the fusion model on the "
            "dataset's history if no model exists yet, starts a worker, replays the dataset at a "
            "visible rate and shows a few users' refreshed lists with titles. Ctrl-C stops "
            "everything this command started."
        ),
    )
    p.add_argument(
        "--dataset",
        default=f"movielens:{SAMPLE}",
        help="movielens:DIR (default: the small sample shipped in deploy/local/sample/movielens)",
    )
    p.add_argument("--rate", type=float, default=50.0, help="events per second (default 50)")
    p.add_argument("--users", type=int, default=4, help="users to follow (default 4)")
    p.add_argument("--limit", type=int, default=None, help="stop after N events")
    p.add_argument("--epochs", type=int, default=3, help="training epochs if a model must be trained")
    p.add_argument(
        "--exit", action="store_true", help="exit when the replay is done (default: keep watching)"
    )
    p.set_defaults(func=run)


def _say(msg: str) -> None:
    print(f"[demo] {msg}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """Run the demo until the replay ends or Ctrl-C."""
    from rich.console import Console
    from rich.live import Live

    from deploy.local.stack import Stack
    from recstream.lab.datasets import load_movielens, parse_dataset_arg
    from recstream.lab.demo import LiveLists, most_active_users
    from recstream.lab.replay import KafkaEventSink, Pacer, movielens_events
    from recstream.testing import ListCollector, WorkerProcess, recstream_environ
    from serving.repository import latest_trained
    from streams.state.schema import apply_schema
    from streams.topics import ensure_topics

    settings = load_settings()
    path = parse_dataset_arg(args.dataset)
    exe = str(Path(sys.executable).parent / "recstream")
    started: list[str] = []
    worker: WorkerProcess | None = None
    stack = Stack(settings)
    try:
        if latest_trained(settings.model_dir) is None:
            _say(f"no trained fusion model in {settings.model_dir}: training on {path} (once)")
            subprocess.run(
                [exe, "train", "--dataset", f"movielens:{path}", "--epochs", str(args.epochs)], check=True
            )
            if any(s.running() for s in stack.services if s.name == "triton"):
                _say("restarting Triton so it serves the trained model")
                Stack(settings, ["triton"]).down(_say)
        started = stack.up(_say)
        apply_schema(settings)
        ensure_topics(settings)
        log = settings.stack_dir / "logs" / "worker-demo.log"
        _say(f"starting a worker (log: {log})")
        worker = WorkerProcess.start(
            recstream_environ(), log, ready_timeout_s=180, command=[exe, "worker"], port=settings.web_port
        )
        _say("worker ready")
        ml = load_movielens(path)
        events = list(movielens_events(ml))
        if args.limit:
            events = events[: args.limit]
        users = most_active_users(events[: max(2000, len(events) // 10)], args.users)
        live = LiveLists(users, {str(m.movie_id): m.title for m in ml.movies.values()})
        _say(f"metrics: http://{settings.web_host}:{worker.port}/metrics  (Ctrl-C stops the demo)")
        pacer = Pacer(rate=args.rate)
        with (
            ListCollector(settings, start="latest", keep="items", on_arrival=live.on_arrival),
            KafkaEventSink(settings, linger_ms=0) as sink,
            Live(live.table(), console=Console(), refresh_per_second=4) as view,
        ):
            for n, ev in enumerate(events):
                if not worker.alive:
                    raise RuntimeError(f"the worker exited; see {log}")
                pacer.wait(ev.ts)
                with live.lock:
                    live.produced_at[ev.event_id] = time.perf_counter()
                sink.send(ev)
                if n % 10 == 0:
                    view.update(live.table())
            deadline = time.monotonic() + 60
            while live.produced_at and time.monotonic() < deadline:  # lists still on their way
                time.sleep(0.25)
                view.update(live.table())
            view.update(live.table())
            _say(f"replay finished: {len(events)} events, {live.received} lists received")
            if sys.stdin.isatty() and not args.exit:
                _say("watching; Ctrl-C stops the demo")
                while True:
                    time.sleep(0.5)
                    view.update(live.table())
        return 0
    except KeyboardInterrupt:
        _say("stopping")
        return 0
    finally:
        if worker is not None:
            worker.stop(timeout_s=20)
        if started:
            Stack(settings, started).down(_say)
