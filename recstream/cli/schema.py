"""``recstream schema apply|show``: the versioned Cassandra schema."""

from __future__ import annotations

import argparse
import sys

from recstream.settings import load_settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``schema`` command."""
    p = sub.add_parser("schema", help="apply or print the Cassandra schema (streams/state/cql/)")
    p.add_argument("action", choices=["apply", "show"], help="apply (idempotent) or print the CQL")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Apply or print the schema."""
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
