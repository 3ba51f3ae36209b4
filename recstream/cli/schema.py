"""``recstream schema apply|show``: the versioned Cassandra schema; ``export DIR``: the contracts."""

from __future__ import annotations

import argparse
import sys

from recstream.settings import load_settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``schema`` command."""
    p = sub.add_parser(
        "schema",
        help="apply or print the Cassandra schema (streams/state/cql/), or export the event contracts",
        description="apply: create or migrate the keyspace (idempotent); show: print the CQL; "
        "export DIR: write the contract bundle (JSON Schemas, AsyncAPI, examples, rules) a "
        "consumer team can vendor.",
    )
    p.add_argument("action", choices=["apply", "show", "export"], help="what to do")
    p.add_argument("dir", nargs="?", help="export: the directory to write the bundle into")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Apply or print the schema."""
    if args.action == "export":
        return _export(args.dir)
    from streams.state.schema import apply_schema, cql_statements

    settings = load_settings()
    if args.action == "show":
        print(";\n\n".join(cql_statements(settings)) + ";")
        return 0
    from streams.errors import StateConnectionError

    try:
        version = apply_schema(settings)
    except StateConnectionError as exc:
        print(f"recstream schema: {exc}", file=sys.stderr)
        return 1
    print(f"keyspace {settings.cassandra_keyspace}: schema version {version}")
    return 0


def _export(directory: str | None) -> int:
    from pathlib import Path

    import recstream
    from schemas.bundle import export_bundle

    if not directory:
        print("recstream schema export: give the directory to write into", file=sys.stderr)
        return 2
    written = export_bundle(Path(directory), recstream.__version__)
    print(f"wrote {len(written)} files to {directory} (bundle.json lists them with their SHA-256)")
    return 0
