"""``recstream stack up|down|status``: the real local servers, without Docker."""

from __future__ import annotations

import argparse
import sys
import time

from recstream.settings import load_settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``stack`` command."""
    p = sub.add_parser(
        "stack",
        help="start/stop/inspect local Kafka, Cassandra and Triton",
        description=(
            "Runs real servers on 127.0.0.1: Kafka 3.9 (KRaft) and Cassandra 5.0 from Maven "
            "Central jars, Triton from the nvidia-pytriton wheel. State and logs live in "
            "RECSTREAM_STACK_DIR (default <RECSTREAM_HOME>/stack, or .stack/ of a source "
            "checkout); jars are cached in RECSTREAM_CACHE_DIR (default ~/.cache/recstream). "
            "`recstream config` shows both."
        ),
    )
    p.add_argument("action", choices=["up", "down", "status"], help="what to do")
    p.add_argument("--only", metavar="LIST", help="comma-separated subset: kafka,cassandra,triton")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``stack ACTION``."""
    from deploy.local.errors import StackError
    from deploy.local.stack import Stack, parse_only

    settings = load_settings()

    def say(msg: str) -> None:
        print(f"[stack] {msg}", file=sys.stderr, flush=True)

    try:
        stack = Stack(settings, parse_only(args.only))
        if args.action == "up":
            t0 = time.monotonic()
            stack.up(say)
            say(f"all healthy in {time.monotonic() - t0:.1f}s")
            return _print_status(stack)
        if args.action == "down":
            stopped = stack.down(say)
            say(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
            return 0
        return _print_status(stack)
    except StackError as exc:
        print(f"recstream stack {args.action}: {exc}", file=sys.stderr)
        return 1


def _print_status(stack: object) -> int:
    from deploy.local.stack import Stack

    assert isinstance(stack, Stack)
    rows = stack.status()
    print(f"{'SERVICE':<10} {'STATE':<10} {'PID':<8} {'ENDPOINT':<40} LOG")
    for r in rows:
        state = "healthy" if r.healthy else ("starting" if r.pid else "down")
        print(f"{r.name:<10} {state:<10} {r.pid or '-':<8} {r.endpoint:<40} {r.log_path}")
    return 0 if all(r.healthy for r in rows) else 1
