"""The versioned Cassandra schema: ``cql/NNN_*.cql`` files and the data migrations between them.

``recstream schema apply`` (:func:`apply_schema`) creates the keyspace and every table, then
brings the data of an older keyspace to the current version, then records the version; the
store refuses a keyspace at another version. Each step is idempotent, so an interrupted apply
can simply be run again.

Version 2 (compact user state) copies every version-1 ``user_state`` row and its
``latest_list`` into ``user_state_v2``, written with the same fencing timestamp a worker would
use (the applied-event count), so a worker's later writes supersede the copies and a repeated
migration cannot overwrite a newer state. The version-1 tables are left in place (drop them
once the migration is checked).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from cassandra.cluster import Session
from cassandra.query import BatchStatement, BatchType

from recstream.settings import Settings

CQL_DIR = Path(__file__).resolve().parent / "cql"
SCHEMA_VERSION = len(list(CQL_DIR.glob("*.cql")))
log = logging.getLogger(__name__)


def cql_statements(settings: Settings, upto: int | None = None) -> list[str]:
    """Every statement of the schema files (up to version ``upto``), in order, filled in."""
    out: list[str] = []
    for i, path in enumerate(sorted(CQL_DIR.glob("*.cql")), start=1):
        if upto is not None and i > upto:
            break
        text = "\n".join(ln.split("--")[0] for ln in path.read_text().splitlines())
        text = text.format(keyspace=settings.cassandra_keyspace, replication=settings.cassandra_replication)
        out += [stmt.strip() for stmt in text.split(";")]
    return [stmt for stmt in out if stmt]


def current_version(session: Session, keyspace: str) -> int | None:
    """The version recorded in ``keyspace`` (None: no recstream schema there)."""
    try:
        row = session.execute(f"SELECT version FROM {keyspace}.schema_version WHERE id = 0").one()
    except Exception:
        return None
    return None if row is None else int(row.version)


def migrate_v1_to_v2(session: Session, settings: Settings) -> int:
    """Copy version-1 user states and latest lists into ``user_state_v2``. Returns the users copied."""
    ks = settings.cassandra_keyspace
    hot = session.prepare(
        f"UPDATE {ks}.user_state_v2 USING TIMESTAMP ? SET acc = ?, ref_ts = ?, event_count = ?, "
        "seen_count = ?, model_version = ?, offsets = ?, list_payload = ?, list_trigger = ?, "
        "list_generated_at = ? WHERE user_id = ?"
    )
    row_stmt = session.prepare(
        f"INSERT INTO {ks}.user_state_v2 (user_id, kind, seq, id) VALUES (?, ?, ?, ?) USING TIMESTAMP ?"
    )
    get_list = session.prepare(
        f"SELECT payload, trigger_event_id, generated_at FROM {ks}.latest_list WHERE user_id = ?"
    )
    n = 0
    for r in session.execute(
        f"SELECT user_id, acc, ref_ts, event_count, model_version, offsets, recent_events, seen "
        f"FROM {ks}.user_state",
        timeout=120,
    ):
        count = int(r.event_count or 0)
        recent = list(r.recent_events or ())
        seen = list(r.seen or ())
        lst = session.execute(get_list, (r.user_id,)).one()
        ts = max(1, count)
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        batch.add(
            hot,
            (
                ts,
                r.acc,
                r.ref_ts or 0,
                count,
                len(seen),
                r.model_version or "",
                dict(r.offsets or {}),
                None if lst is None else lst.payload,
                None if lst is None else lst.trigger_event_id,
                None if lst is None else lst.generated_at,
                r.user_id,
            ),
        )
        # Ordinals as a worker would have given them: the window holds the newest ids.
        for j, eid in enumerate(recent):
            batch.add(row_stmt, (r.user_id, 0, count - len(recent) + 1 + j, eid, ts))
        for j, item in enumerate(seen):
            batch.add(row_stmt, (r.user_id, 1, j + 1, item, ts))
        session.execute(batch, timeout=60)
        n += 1
    return n


#: Data migration to run when a keyspace reaches version N from N - 1.
MIGRATIONS: dict[int, Callable[[Session, Settings], int]] = {2: migrate_v1_to_v2}


def apply_schema(settings: Settings, progress: Callable[[str], None] | None = None) -> int:
    """Create or upgrade the keyspace to :data:`SCHEMA_VERSION`; returns it. Idempotent."""
    from streams.state.session import connect

    say = progress or log.info
    cluster, session = connect(settings)
    ks = settings.cassandra_keyspace
    try:
        before = current_version(session, ks)
        for stmt in cql_statements(settings):
            session.execute(stmt, timeout=60)
        if before is not None:
            for version in range(before + 1, SCHEMA_VERSION + 1):
                migrate = MIGRATIONS.get(version)
                if migrate is not None:
                    n = migrate(session, settings)
                    say(f"keyspace {ks}: migrated to schema version {version} ({n} users copied)")
        session.execute(
            f"INSERT INTO {ks}.schema_version (id, version, applied_at) VALUES (0, %s, toTimestamp(now()))",
            (SCHEMA_VERSION,),
        )
        return SCHEMA_VERSION
    finally:
        cluster.shutdown()
