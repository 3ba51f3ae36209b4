"""The ``recstream`` command line.

Each sub-command lives in its own module under ``recstream.cli`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (a callable taking the parsed
``argparse.Namespace`` and returning an exit code). Add a module to ``COMMANDS`` to publish it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from recstream import __version__
from recstream.settings import SettingsError

#: Sub-command modules, in the order ``--help`` lists them.
COMMANDS: tuple[str, ...] = (
    "stack",
    "config",
    "schema",
    "worker",
    "demo",
    "bench",
    "validate",
    "replay",
    "train",
    "model",
    "eval",
    "soak",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="recstream",
        description=(
            "Real-time multimodal recommendations: Kafka events in, Triton encoders, "
            "Cassandra user state, refreshed top-K lists out. Start with `recstream stack up`."
        ),
    )
    parser.add_argument("--version", action="version", version=f"recstream {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"recstream.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``recstream`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        sys.exit(2)
    try:
        code = args.func(args)
    except SettingsError as exc:
        print(f"recstream: configuration error: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    sys.exit(code or 0)
