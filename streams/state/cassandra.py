"""Cassandra state store: prepared statements, async execution with bounded concurrency.

The schema lives in ``streams/state/cql/NNN_*.cql`` and is applied by ``recstream schema
apply`` (:mod:`streams.state.schema`); the store refuses to run against a keyspace holding
another schema version. User state is the compact version-2 layout: static hot columns and
appended id rows in one partition per user, written as one single-partition batch per user,
fenced by ``USING TIMESTAMP`` (see ``cql/002_compact_state.cql``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from cassandra import ConsistencyLevel
from cassandra.cluster import Cluster, Session
from cassandra.query import BatchStatement, BatchType, PreparedStatement

from recstream import metrics
from recstream.settings import Settings
from streams.errors import SchemaVersionError, StateError
from streams.state.base import ItemRecord, StateStore, StoredList, UserState, UserWrite
from streams.state.schema import SCHEMA_VERSION
from streams.state.session import aio, aio_pages, connect

__all__ = ["USERS_PER_READ", "CassandraStateStore"]

log = logging.getLogger(__name__)


#: Users read per ``SELECT ... IN`` statement.
USERS_PER_READ = 32
#: Kinds of the clustering rows of ``user_state_v2``.
KIND_EVENT, KIND_SEEN = 0, 1
#: A window's rows are trimmed (one range delete) each time its count crosses a multiple of this.
TRIM_EVERY = 100
#: Users per write request at most, and its approximate size: below Cassandra's default batch
#: size failure threshold (50 KiB); see :meth:`CassandraStateStore.write_users`.
MAX_BATCH_USERS = 32
MAX_BATCH_BYTES = 40_000


class CassandraStateStore(StateStore):
    """:class:`StateStore` on Cassandra. Create with :meth:`open`."""

    def __init__(self, settings: Settings, cluster: Cluster, session: Session) -> None:
        self.settings = settings
        self._cluster = cluster
        self._session = session
        self._sem = asyncio.Semaphore(settings.cassandra_max_concurrency)
        self._statements = 0
        self._cl = getattr(ConsistencyLevel, settings.cassandra_consistency)
        ks = settings.cassandra_keyspace

        def prep(cql: str) -> PreparedStatement:
            stmt = session.prepare(cql)
            stmt.consistency_level = self._cl
            return stmt

        self._get_users = prep(
            f"SELECT user_id, kind, seq, id, acc, ref_ts, event_count, seen_count, model_version, offsets "
            f"FROM {ks}.user_state_v2 WHERE user_id IN ?"
        )
        self._get_users.fetch_size = 5000
        self._put_hot = prep(
            f"UPDATE {ks}.user_state_v2 USING TIMESTAMP ? SET acc = ?, ref_ts = ?, event_count = ?, "
            "seen_count = ?, model_version = ?, offsets = ? WHERE user_id = ?"
        )
        self._put_hot_list = prep(
            f"UPDATE {ks}.user_state_v2 USING TIMESTAMP ? SET acc = ?, ref_ts = ?, event_count = ?, "
            "seen_count = ?, model_version = ?, offsets = ?, list_payload = ?, list_trigger = ?, "
            "list_generated_at = ? WHERE user_id = ?"
        )
        self._put_id = prep(
            f"INSERT INTO {ks}.user_state_v2 (user_id, kind, seq, id) VALUES (?, ?, ?, ?) USING TIMESTAMP ?"
        )
        self._trim = prep(
            f"DELETE FROM {ks}.user_state_v2 USING TIMESTAMP ? WHERE user_id = ? AND kind = ? AND seq <= ?"
        )
        self._put_item = prep(
            f"INSERT INTO {ks}.items (item_id, embedding, modalities, model_version, title, created_ts, "
            f"updated_at) VALUES (?, ?, ?, ?, ?, ?, toTimestamp(now()))"
        )
        self._all_items = prep(
            f"SELECT item_id, embedding, modalities, model_version, title, created_ts FROM {ks}.items"
        )
        self._all_items.fetch_size = 5000
        self._get_list = prep(
            f"SELECT user_id, list_payload, list_trigger, list_generated_at FROM {ks}.user_state_v2 "
            "WHERE user_id = ? LIMIT 1"
        )

    @classmethod
    def open(cls, settings: Settings) -> CassandraStateStore:
        """Connect and check the schema version.

        Raises:
            SchemaVersionError: The keyspace is missing or at another version (run
                ``recstream schema apply``).
        """
        cluster, session = connect(settings)
        try:
            row = session.execute(
                f"SELECT version FROM {settings.cassandra_keyspace}.schema_version WHERE id = 0"
            ).one()
        except Exception as exc:
            cluster.shutdown()
            raise SchemaVersionError(
                f"keyspace {settings.cassandra_keyspace!r} has no recstream schema ({exc}); "
                "run `recstream schema apply`"
            ) from exc
        if row is None or row.version != SCHEMA_VERSION:
            cluster.shutdown()
            raise SchemaVersionError(
                f"keyspace {settings.cassandra_keyspace!r} is at schema version "
                f"{None if row is None else row.version}, this code needs {SCHEMA_VERSION}; "
                "run `recstream schema apply`"
            )
        return cls(settings, cluster, session)

    @property
    def session(self) -> Session:
        """The driver session (``/readyz`` runs its Cassandra check on it; state goes through
        the store's methods)."""
        return self._session

    @property
    def statements(self) -> int:
        return self._statements

    def _count(self, kind: str, n: int = 1) -> None:
        self._statements += n
        metrics.cassandra_statements(kind).inc(n)

    async def _run(self, stmt: Any, params: Sequence[Any] | None, kind: str) -> Any:
        async with self._sem:
            self._count(kind)
            try:
                return await aio(self._session.execute_async(stmt, params))
            except Exception as exc:
                raise StateError(f"cassandra: {exc!r}") from exc

    async def _run_pages(self, stmt: PreparedStatement, params: Sequence[Any], kind: str) -> list[Any]:
        async with self._sem:
            self._count(kind)
            try:
                return await aio_pages(self._session.execute_async(stmt, params))
            except Exception as exc:
                raise StateError(f"cassandra: {exc!r}") from exc

    async def get_users(self, user_ids: Sequence[str]) -> dict[str, UserState]:
        ids = list(dict.fromkeys(user_ids))
        chunks = [ids[i : i + USERS_PER_READ] for i in range(0, len(ids), USERS_PER_READ)]
        results = await asyncio.gather(*(self._run_pages(self._get_users, (c,), "read") for c in chunks))
        by_user: dict[str, list[Any]] = {}
        for row in (r for rows in results for r in rows):
            by_user.setdefault(row.user_id, []).append(row)
        return {u: self._state(u, rows) for u, rows in by_user.items()}

    def _state(self, user_id: str, rows: list[Any]) -> UserState:
        head = rows[0]  # static columns repeat on every row of the partition
        events: list[tuple[int, str]] = []
        seen: list[tuple[int, str]] = []
        for r in rows:
            if r.kind == KIND_EVENT:
                events.append((r.seq, r.id))
            elif r.kind == KIND_SEEN:
                seen.append((r.seq, r.id))
        return UserState(
            user_id=user_id,
            acc=None if head.acc is None else np.frombuffer(head.acc, dtype=np.float64).copy(),
            ref_ts=head.ref_ts or 0,
            event_count=head.event_count or 0,
            model_version=head.model_version or "",
            offsets=dict(head.offsets or {}),
            recent_events=_window(events, self.settings.recent_events_max),
            seen=_window(seen, self.settings.seen_items_max),
            seen_count=head.seen_count or 0,
        )

    async def write_users(self, writes: Sequence[UserWrite]) -> None:
        """Write users' changes: one unlogged batch per group of users sharing their replicas.

        Each user's statements go to one partition and are applied atomically; grouping users
        whose partitions live on the same replicas into one request (at most
        :data:`MAX_BATCH_USERS` users and about :data:`MAX_BATCH_BYTES`) divides the driver's
        per-request cost, which dominated the flush when every user was its own request, while
        every mutation still lands on nodes that own it (no coordinator fan-out to others).
        """
        groups: dict[Any, list[tuple[list[tuple[PreparedStatement, tuple[Any, ...]]], int]]] = {}
        for w in writes:
            stmts = self._statements_of(w)
            size = sum(_approx_size(params) for _, params in stmts)
            groups.setdefault(self._replicas(w.state.user_id), []).append((stmts, size))
        batches: list[BatchStatement] = []
        for users in groups.values():
            batch, n, nbytes = self._new_batch(), 0, 0
            for stmts, size in users:
                if n and (n >= MAX_BATCH_USERS or nbytes + size > MAX_BATCH_BYTES):
                    batches.append(batch)
                    batch, n, nbytes = self._new_batch(), 0, 0
                for stmt, params in stmts:
                    batch.add(stmt, params)
                n += 1
                nbytes += size
            if n:
                batches.append(batch)
        await asyncio.gather(*(self._run(b, None, "write") for b in batches))

    def _new_batch(self) -> BatchStatement:
        return BatchStatement(batch_type=BatchType.UNLOGGED, consistency_level=self._cl)

    def _replicas(self, user_id: str) -> Any:
        """The replicas of a user's partition (one group when the driver has no token map)."""
        try:
            hosts = self._cluster.metadata.get_replicas(self.settings.cassandra_keyspace, user_id.encode())
        except Exception:
            return None
        return frozenset(h.endpoint for h in hosts) or None

    def _statements_of(self, w: UserWrite) -> list[tuple[PreparedStatement, tuple[Any, ...]]]:
        """One user's write: statements of its partition only (atomic on the node)."""
        s, ts = w.state, w.fence
        acc = None if s.acc is None else s.acc.astype(np.float64).tobytes()
        hot = (acc, s.ref_ts, s.event_count, s.seen_count, s.model_version, s.offsets)
        out: list[tuple[PreparedStatement, tuple[Any, ...]]] = []
        if w.latest is not None:
            lst = w.latest
            out.append(
                (
                    self._put_hot_list,
                    (ts, *hot, lst.payload, lst.trigger_event_id, lst.generated_at, s.user_id),
                )
            )
        else:
            out.append((self._put_hot, (ts, *hot, s.user_id)))
        self._append(out, s.user_id, KIND_EVENT, s.recent_events, w.new_events, s.event_count, ts)
        self._append(out, s.user_id, KIND_SEEN, s.seen, w.new_seen, s.seen_count, ts)
        return out

    def _append(
        self,
        out: list[tuple[PreparedStatement, tuple[Any, ...]]],
        user: str,
        kind: int,
        ids: tuple[str, ...],
        new: int,
        count: int,
        ts: int,
    ) -> None:
        """Rows for the ``new`` newest ``ids`` (the newest has ordinal ``count``); trim the old."""
        n = min(new, len(ids))
        for j in range(n):
            out.append((self._put_id, (user, kind, count - j, ids[len(ids) - 1 - j], ts)))
        window = len(ids)
        if count > window and count // TRIM_EVERY != (count - new) // TRIM_EVERY:
            out.append((self._trim, (ts, user, kind, count - window)))

    async def put_items(self, items: Sequence[ItemRecord]) -> None:
        await asyncio.gather(
            *(
                self._run(
                    self._put_item,
                    (
                        it.item_id,
                        it.embedding.astype(np.float32).tobytes(),
                        set(it.modalities),
                        it.model_version,
                        it.title,
                        it.created_ts,
                    ),
                    "items",
                )
                for it in items
            )
        )

    async def load_items(self) -> list[ItemRecord]:
        def fetch() -> list[ItemRecord]:
            rows = self._session.execute(self._all_items, timeout=120)
            return [
                ItemRecord(
                    r.item_id,
                    np.frombuffer(r.embedding, dtype=np.float32).copy(),
                    frozenset(r.modalities or ()),
                    r.model_version or "",
                    r.title or "",
                    r.created_ts or 0,
                )
                for r in rows
            ]

        t0 = time.perf_counter()
        self._count("items")
        try:
            items = await asyncio.to_thread(fetch)
        except Exception as exc:
            raise StateError(f"cassandra: loading the catalogue failed: {exc!r}") from exc
        log.info(
            "loaded %d catalogue items from Cassandra in %.2fs",
            len(items),
            time.perf_counter() - t0,
        )
        return items

    async def get_list(self, user_id: str) -> StoredList | None:
        rows = await self._run(self._get_list, (user_id,), "read")
        row = rows[0] if rows else None  # driver callbacks get the first page as a list
        if row is None or row.list_payload is None:
            return None
        return StoredList(row.user_id, row.list_payload, row.list_trigger or "", row.list_generated_at or 0)

    async def close(self) -> None:
        await asyncio.to_thread(self._cluster.shutdown)


def _approx_size(params: Sequence[Any]) -> int:
    """Bytes a statement's values take on the wire, roughly (for the batch size budget)."""
    n = 16
    for v in params:
        if isinstance(v, (bytes, str)):
            n += len(v) + 4
        elif isinstance(v, dict):
            n += sum(len(k) + 12 for k in v) + 4
        else:
            n += 8
    return n


def _window(rows: list[tuple[int, str]], limit: int) -> tuple[str, ...]:
    """The ids of the ``limit`` highest ordinals, oldest first, each id once (its newest row).

    Rows beyond the window remain until the next trim; a worker that lost a race may have
    written an id under another ordinal: the newest occurrence wins.
    """
    rows.sort()
    out: dict[str, None] = {}
    for _, ident in reversed(rows):
        if ident not in out:
            out[ident] = None
            if len(out) == limit:
                break
    return tuple(reversed(out))
