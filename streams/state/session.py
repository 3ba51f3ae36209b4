"""Cassandra connections: options from settings, clear connect errors, driver futures in asyncio.

Used by the state store (:mod:`streams.state.cassandra`), the schema tool
(:mod:`streams.state.schema`), readiness checks and tests.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from cassandra import AuthenticationFailed
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster, NoHostAvailable, ResponseFuture, Session
from cassandra.policies import ExponentialReconnectionPolicy

from recstream.security import MaskedStr, SecurityConfigError, client_ssl_context
from recstream.settings import Settings
from streams.errors import StateConnectionError


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


def aio(fut: ResponseFuture) -> asyncio.Future[Any]:
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


def aio_pages(fut: ResponseFuture) -> asyncio.Future[list[Any]]:
    """Every row of a paged result: the driver's callbacks get one page at a time."""
    loop = asyncio.get_running_loop()
    out: asyncio.Future[list[Any]] = loop.create_future()
    rows: list[Any] = []

    def resolve() -> None:
        if not out.done():
            out.set_result(rows)

    def fail(exc: BaseException) -> None:
        if not out.done():
            out.set_exception(exc)

    def on_page(page: Any) -> None:
        rows.extend(page)
        if fut.has_more_pages:
            fut.start_fetching_next_page()
        else:
            loop.call_soon_threadsafe(resolve)

    def on_error(exc: BaseException) -> None:
        loop.call_soon_threadsafe(fail, exc)

    fut.add_callbacks(on_page, on_error)
    return out
