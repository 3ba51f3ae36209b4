"""``recstream validate FILE.jsonl``: check a file of events against the contracts.

Prints one JSON line per input line, ``{"line": n, "ok": true|false, "error": null|"reason:
detail"}``, and exits 0 when every line is a valid event, 1 when some are not, 2 when the file
cannot be read. ``-`` reads standard input.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import ExitStack
from typing import BinaryIO


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``validate`` sub-command."""
    parser = subparsers.add_parser(
        "validate",
        help="check a JSONL file of events against the event contracts",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", metavar="FILE.jsonl", help="events, one JSON per line ('-': stdin)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate ``args.file``; returns the exit code."""
    # Imported here so that `recstream --help` does not pay for pydantic and Pillow.
    from recstream.settings import load_settings
    from schemas.limits import Limits
    from schemas.validate import iter_lines, validate_lines

    limits = Limits.from_settings(load_settings())
    now_ms = time.time_ns() // 1_000_000
    total = bad = 0
    out = sys.stdout
    with ExitStack() as stack:
        try:
            stream: BinaryIO = (
                sys.stdin.buffer if args.file == "-" else stack.enter_context(open(args.file, "rb"))
            )
            for result in validate_lines(
                iter_lines(stream, limits.max_message_bytes), limits=limits, now_ms=now_ms
            ):
                total += 1
                bad += not result.ok
                out.write(result.to_json() + "\n")
            out.flush()
        except BrokenPipeError:  # e.g. `| head`: the reader has gone, stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        except OSError as exc:  # missing, a directory, unreadable, I/O error
            print(f"recstream validate: cannot read {args.file}: {exc}", file=sys.stderr)
            return 2
    print(f"recstream validate: {total} line(s), {bad} invalid", file=sys.stderr)
    return 1 if bad else 0
