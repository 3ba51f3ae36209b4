"""The worker's web routes: metrics, probes, the live ops page and its JSON endpoints.

| Path | What |
|---|---|
| ``/metrics`` | Prometheus exposition |
| ``/healthz`` | liveness: the process serves requests |
| ``/readyz`` | readiness: runtime up and Kafka, Cassandra, Triton answering (503 with detail if not) |
| ``/ops`` | the live ops page (``ops.html`` + ``/ops/ops.js`` + ``/ops/ops.css``) |
| ``/api/ops/summary`` | throughput, freshness percentiles, lag, dead letters (JSON) |
| ``/api/users/{user_id}/list`` | the latest list this worker published for a user, with titles |
| ``/v1/users/{user_id}/recommendations`` | the read API: a user's latest list (``recs.updated``) |

The ops page, ``/api/*`` and the read API ``/v1/*`` show users' lists: bound beyond loopback they
need the token (:mod:`streams.web.access`); ``/metrics``, ``/healthz`` and ``/readyz`` stay open.
Handlers stay thin: the documents are built by :mod:`streams.web.summary` and
:mod:`streams.web.readiness`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from recstream.settings import Settings
from streams import latest
from streams.errors import StateError
from streams.web.access import CHALLENGE, WebAccess
from streams.web.readiness import KafkaCheck, Readiness, aggregate, runtime_checks
from streams.web.recommendations import ListReader, user_id_problem
from streams.web.summary import OpsState, list_document, worker_info

#: Served files of the ops page and their content types.
ASSETS = {
    "ops.html": "text/html",
    "ops.js": "text/javascript",
    "ops.css": "text/css",
}

#: The page loads only its own files and talks only to this worker.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

log = logging.getLogger("recstream.worker")

Handler = Callable[..., Awaitable[Any]]


def protect(access: WebAccess, handler: Handler) -> Handler:
    """``handler`` behind the access rule: 401 with the reason and a challenge when refused."""

    @functools.wraps(handler)
    async def guarded(web: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        reason = access.refusal(request.headers.get("Authorization"))
        if reason is not None:
            return web.json(
                {"error": reason},
                status=401,
                headers={"WWW-Authenticate": CHALLENGE, "Cache-Control": "no-store"},
            )
        return await handler(web, request, *args, **kwargs)

    return guarded


def asset(name: str) -> bytes:
    """The bytes of one packaged ops-page file (``ops.html``, ``ops.js`` or ``ops.css``)."""
    if name not in ASSETS:
        raise KeyError(name)
    return resources.files("streams.web").joinpath(name).read_bytes()


class OpsWeb:
    """State behind the routes: the ops windows and the readiness checks (built once ready)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state = OpsState()
        self.kafka = KafkaCheck(settings)
        self.readiness: Readiness | None = None
        self.lists: ListReader | None = None

    async def close(self) -> None:
        """Release the readiness checks' Kafka client."""
        await self.kafka.close()


def register(app: Any, settings: Settings) -> OpsWeb:
    """Add every route of the module docstring and the ops sampling timer to ``app``."""
    ops = OpsWeb(settings)
    access = WebAccess.from_settings(settings)
    if access.required and access.token is None:
        log.warning(
            "web server bound to %s without RECSTREAM_WEB_TOKEN(_FILE): the ops page, /api/* and "
            "/v1/users/{id}/recommendations answer 401",
            settings.web_host,
        )
    files = {name: asset(name) for name in ASSETS}  # read once; a missing file fails at start
    info = worker_info(settings)

    def runtime_facts() -> tuple[Any, int, str]:
        runtime = app.runtime
        if runtime is None:
            return None, 0, ""
        return runtime, len(runtime.processor.index), runtime.processor.model.version

    @app.timer(1.0)
    async def sample_ops() -> None:
        """Snapshot the events counter once a second (the throughput window)."""
        ops.state.sample()

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        runtime, items, _ = runtime_facts()
        results = []
        if runtime is not None:
            if ops.readiness is None:
                ops.readiness = Readiness(runtime_checks(settings, runtime, ops.kafka))
            results = await ops.readiness.results()
        status, body = aggregate(
            results, runtime_up=runtime is not None, catalog_items=items, waiting_for=app.waiting_for
        )
        return web.json(body, status=status)

    def page(path: str) -> Callable[[Handler], Any]:
        """``app.page`` for a protected route."""

        def register_page(handler: Handler) -> Any:
            return app.page(path)(protect(access, handler))

        return register_page

    @page("/ops")
    async def ops_page(web: Any, request: Any) -> Any:
        return web.bytes(files["ops.html"], content_type=ASSETS["ops.html"], headers=dict(SECURITY_HEADERS))

    @page("/ops/{name}")
    async def ops_asset(web: Any, request: Any, name: str) -> Any:
        if name not in files:
            return web.json({"error": "not found"}, status=404)
        return web.bytes(files[name], content_type=ASSETS[name], headers=dict(SECURITY_HEADERS))

    @page("/api/ops/summary")
    async def ops_summary(web: Any, request: Any) -> Any:
        _, items, version = runtime_facts()
        return web.json(ops.state.summary(info, items, version), headers={"Cache-Control": "no-store"})

    @page("/api/users/{user_id:.+}/list")  # ids may hold "/"
    async def user_list(web: Any, request: Any, user_id: str) -> Any:
        runtime, _, _ = runtime_facts()
        found = latest.LISTS.get(user_id)
        if found is None:
            return web.json(
                {"user_id": user_id, "error": "no list published for this user by this worker (recently)"},
                status=404,
            )
        titles = runtime.processor.titles if runtime is not None else {}
        return web.json(list_document(found, titles), headers={"Cache-Control": "no-store"})

    @page("/v1/users/{user_id:.+}/recommendations")  # ids may hold "/"
    async def recommendations(web: Any, request: Any, user_id: str) -> Any:
        problem = user_id_problem(user_id)
        if problem is not None:
            return web.json({"error": problem}, status=400)
        runtime = app.runtime
        if runtime is None:
            return web.json({"error": "worker starting"}, status=503, headers={"Retry-After": "1"})
        if ops.lists is None:
            ops.lists = ListReader(runtime.processor.store, runtime.processor.cache)
        try:
            payload = await ops.lists.latest(user_id)
        except StateError as exc:
            return web.json(
                {"error": f"state store unavailable: {exc}"}, status=503, headers={"Retry-After": "1"}
            )
        if payload is None:
            return web.json({"user_id": user_id, "error": "no list for this user"}, status=404)
        return web.bytes(payload, content_type="application/json", headers={"Cache-Control": "max-age=1"})

    return ops
