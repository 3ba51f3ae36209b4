"""Cassandra state store: prepared statements, async execution with bounded concurrency.

The schema lives in ``streams/state/cql/NNN_*.cql`` and is applied by ``recstream schema
apply``; the store refuses to run against a keyspace holding another schema version.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from cassandra import AuthenticationFailed, ConsistencyLevel
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster, NoHostAvailable, ResponseFuture, Session
from cassandra.policies import ExponentialReconnectionPolicy
from cassandra.query import PreparedStatement

from recstream.security import MaskedStr, SecurityConfigError, client_ssl_context
from recstream.settings import Settings
from streams.errors import SchemaVersionError, StateConnectionError, StateError
from streams.state.base import ItemRecord, StateStore, StoredList, UserState

CQL_DIR = Path(__file__).resolve().parent / "cql"
SCHEMA_VERSION = len(list(CQL_DIR.glob("*.cql")))
log = logging.getLogger(__name__)


def cql_statements(settings: Settings) -> list[str]:
    """Every statement of every schema file, in order, with keyspace and replication filled."""
    out: list[str] = []
    for path in sorted(CQL_DIR.glob("*.cql")):
        text = "\n".join(ln.split("--")[0] for ln in path.read_text().splitlines())
        text = text.format(keyspace=settings.cassandra_keyspace, replication=settings.cassandra_replication)
        out += [stmt.strip() for stmt in text.split(";")]
    return [stmt for stmt in out if stmt]


def connection_options(settings: Settings) -> dict[str, Any]:
    """``auth_provider`` and ``ssl_context`` for :class:`cassandra.cluster.Cluster` from settings.

    Password authentication when ``cassandra_username`` is set; TLS (verifying the node's
    certificate and host name against ``cassandra_ssl_cafile``) when that file is set.

    Raises:
        recstream.security.SecurityConfigError: The CA file is missing or unusable.
    """
    auth = None
    if settings.cassandra_username and settings.cassandra_password:
        auth = PlainTextAuthProvider(
            settings.cassandra_username, MaskedStr(settings.cassandra_password.get_secret_value())
        )
    ssl_context = client_ssl_context(settings.cassandra_ssl_cafile) if settings.cassandra_ssl_cafile else None
    return {"auth_provider": auth, "ssl_context": ssl_context}


def describe_connect_failure(settings: Settings, exc: BaseException) -> str:
    """One clear line for a failed connection: which node, and what to check in the settings."""
    where = f"cassandra at {settings.cassandra_contact_points}:{settings.cassandra_port}"
    causes = list(exc.errors.values()) if isinstance(exc, NoHostAvailable) and exc.errors else [exc]
    for cause in causes:
        text = str(cause)
        if isinstance(cause, AuthenticationFailed) or "Bad credentials" in text:
            user = settings.cassandra_username or "(none)"
            return (
                f"{where} refused the credentials of user {user!r}: check RECSTREAM_CASSANDRA_USERNAME "
                "and RECSTREAM_CASSANDRA_PASSWORD (or _PASSWORD_FILE)"
            )
        if "requires authentication" in text or "Required authentication" in text:
            return (
                f"{where} requires a user name and password: set RECSTREAM_CASSANDRA_USERNAME and _PASSWORD"
            )
        if isinstance(cause, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
            return (
                f"{where}: the node's TLS certificate is not trusted ({text}); "
                "check RECSTREAM_CASSANDRA_SSL_CAFILE"
            )
        if isinstance(cause, ssl.SSLError):
            return f"{where}: TLS handshake failed ({text}); does the node have client encryption enabled?"
    hint = (
        "; if the node requires TLS, set RECSTREAM_CASSANDRA_SSL_CAFILE"
        if settings.cassandra_ssl_cafile is None
        else ""
    )
    return f"{where} is not reachable ({'; '.join(str(c) for c in causes)}){hint}"


def connect(settings: Settings) -> tuple[Cluster, Session]:
    """A driver session configured from settings (auth and TLS when set).

    Raises:
        StateConnectionError: No session could be opened (refused credentials, TLS failure, no
            node reachable); the message says what to check and never holds the password.
    """
    try:
        options = connection_options(settings)
    except SecurityConfigError as exc:
        raise StateConnectionError(f"cassandra: {exc}") from exc
    cluster = Cluster(
        settings.cassandra_hosts,
        port=settings.cassandra_port,
        connect_timeout=10,
        # The driver's default retries a down node after 1, 2, 4 ... 600 s: a node back after
        # 40 s waited up to 25 s more for the worker. Retrying every few seconds costs nothing.
        reconnection_policy=ExponentialReconnectionPolicy(base_delay=0.5, max_delay=4.0),
        **options,
    )
    try:
        return cluster, cluster.connect()
    except Exception as exc:
        cluster.shutdown()
        raise StateConnectionError(describe_connect_failure(settings, exc)) from exc


def apply_schema(settings: Settings) -> int:
    """Create the keyspace and tables if missing and record the schema version. Idempotent."""
    cluster, session = connect(settings)
    try:
        for stmt in cql_statements(settings):
            session.execute(stmt, timeout=60)
        session.execute(
            f"INSERT INTO {settings.cassandra_keyspace}.schema_version (id, version, applied_at) "
            "VALUES (0, %s, toTimestamp(now()))",
            (SCHEMA_VERSION,),
        )
        return SCHEMA_VERSION
    finally:
        cluster.shutdown()


def _aio(fut: ResponseFuture) -> asyncio.Future[Any]:
    loop = asyncio.get_running_loop()
    out: asyncio.Future[Any] = loop.create_future()

    def set_result(rows: Any) -> None:
        if not out.done():
            out.set_result(rows)

    def set_exception(exc: BaseException) -> None:
        if not out.done():
            out.set_exception(exc)

    # The driver calls back on its own thread; hand the result to the event loop's thread.
    fut.add_callbacks(
        lambda rows: loop.call_soon_threadsafe(set_result, rows),
        lambda exc: loop.call_soon_threadsafe(set_exception, exc),
    )
    return out


#: Users read per ``SELECT ... IN`` statement.
USERS_PER_READ = 64


class CassandraStateStore(StateStore):
    """:class:`StateStore` on Cassandra. Create with :meth:`open`."""

    def __init__(self, settings: Settings, cluster: Cluster, session: Session) -> None:
        self.settings = settings
        self._cluster = cluster
        self._session = session
        self._sem = asyncio.Semaphore(settings.cassandra_max_concurrency)
        ks = settings.cassandra_keyspace
        cl = getattr(ConsistencyLevel, settings.cassandra_consistency)

        def prep(cql: str) -> PreparedStatement:
            stmt = session.prepare(cql)
            stmt.consistency_level = cl
            return stmt

        # One statement per chunk of users: the Python driver's per-statement cost dominates a
        # batch read, and a single-node-sized IN list is cheap for the coordinator.
        self._get_users = prep(
            f"SELECT user_id, acc, ref_ts, event_count, model_version, offsets, recent_events, seen "
            f"FROM {ks}.user_state WHERE user_id IN ?"
        )
        self._put_user = prep(
            f"INSERT INTO {ks}.user_state (user_id, acc, ref_ts, event_count, model_version, offsets, "
            f"recent_events, seen, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, toTimestamp(now()))"
        )
        self._put_item = prep(
            f"INSERT INTO {ks}.items (item_id, embedding, modalities, model_version, title, created_ts, "
            f"updated_at) VALUES (?, ?, ?, ?, ?, ?, toTimestamp(now()))"
        )
        self._all_items = prep(
            f"SELECT item_id, embedding, modalities, model_version, title, created_ts FROM {ks}.items"
        )
        self._all_items.fetch_size = 5000
        self._put_list = prep(
            f"INSERT INTO {ks}.latest_list (user_id, payload, trigger_event_id, generated_at) "
            "VALUES (?, ?, ?, ?)"
        )
        self._get_list = prep(
            f"SELECT user_id, payload, trigger_event_id, generated_at FROM {ks}.latest_list WHERE user_id = ?"
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
                f"{None if row is None else row.version}, this code needs {SCHEMA_VERSION}"
            )
        return cls(settings, cluster, session)

    async def _run(self, stmt: PreparedStatement, params: Sequence[Any]) -> Any:
        async with self._sem:
            try:
                return await _aio(self._session.execute_async(stmt, params))
            except Exception as exc:
                raise StateError(f"cassandra: {exc!r}") from exc

    async def get_users(self, user_ids: Sequence[str]) -> dict[str, UserState]:
        ids = list(dict.fromkeys(user_ids))
        chunks = [ids[i : i + USERS_PER_READ] for i in range(0, len(ids), USERS_PER_READ)]
        results = await asyncio.gather(*(self._run(self._get_users, (c,)) for c in chunks))
        out: dict[str, UserState] = {}
        # A chunk's rows fit one page (fetch_size 5000 > USERS_PER_READ), and driver callbacks
        # get the first page as a list.
        for row in (r for rows in results for r in (rows or ())):
            out[row.user_id] = UserState(
                user_id=row.user_id,
                acc=None if row.acc is None else np.frombuffer(row.acc, dtype=np.float64).copy(),
                ref_ts=row.ref_ts or 0,
                event_count=row.event_count or 0,
                model_version=row.model_version or "",
                offsets=dict(row.offsets or {}),
                recent_events=tuple(row.recent_events or ()),
                seen=tuple(row.seen or ()),
            )
        return out

    async def put_users(self, states: Sequence[UserState]) -> None:
        await asyncio.gather(
            *(
                self._run(
                    self._put_user,
                    (
                        s.user_id,
                        None if s.acc is None else s.acc.astype(np.float64).tobytes(),
                        s.ref_ts,
                        s.event_count,
                        s.model_version,
                        s.offsets,
                        list(s.recent_events),
                        list(s.seen),
                    ),
                )
                for s in states
            )
        )

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
        items = await asyncio.to_thread(fetch)
        log.info(
            "loaded %d catalogue items from Cassandra in %.2fs",
            len(items),
            time.perf_counter() - t0,
        )
        return items

    async def put_lists(self, lists: Sequence[StoredList]) -> None:
        await asyncio.gather(
            *(
                self._run(self._put_list, (x.user_id, x.payload, x.trigger_event_id, x.generated_at))
                for x in lists
            )
        )

    async def get_list(self, user_id: str) -> StoredList | None:
        rows = await self._run(self._get_list, (user_id,))
        row = rows[0] if rows else None  # driver callbacks get the first page as a list
        return (
            None
            if row is None
            else StoredList(row.user_id, row.payload, row.trigger_event_id, row.generated_at)
        )

    async def close(self) -> None:
        await asyncio.to_thread(self._cluster.shutdown)
