"""``/readyz``: is this worker able to do its work right now?

A worker is ready when its runtime is up (catalogue bootstrapped) and Kafka (cluster metadata
through the bootstrap servers), Cassandra (a query through the store's session) and Triton
(server and the served models ready, through the runtime's client) all answer within a short
timeout. Checks run concurrently, and their results are cached for ``ttl_s`` so frequent probes
cost one round of checks every couple of seconds; concurrent probes share one round.

:func:`aggregate` (results -> status and body) is pure; the checks are small async callables
that return a detail string or raise.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from recstream.settings import Settings
from streams.kafka_config import aiokafka_config

if TYPE_CHECKING:
    from streams.runtime import Runtime

#: A dependency check: returns a short detail when healthy, raises when not.
Check = Callable[[], Awaitable[str]]

#: Models a worker calls (text and image encoders for uploads and reviews, fusion for all).
MODELS = ("text_encoder", "image_encoder", "fusion")
CHECK_TIMEOUT_S = 1.0
CACHE_TTL_S = 2.0


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Outcome of one dependency check."""

    name: str
    ok: bool
    detail: str
    latency_ms: float


def aggregate(
    results: Sequence[CheckResult],
    *,
    runtime_up: bool,
    catalog_items: int,
    waiting_for: tuple[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """HTTP status and body of ``/readyz``.

    Args:
        results: The dependency checks (empty while the runtime is starting).
        runtime_up: Whether the runtime is connected and the catalogue bootstrapped.
        catalog_items: Items in the retrieval catalogue.
        waiting_for: While starting, the dependency the worker waits for and why
            (``(name, reason)``, from its last connection attempt).

    Returns:
        ``(200, body)`` when the runtime is up and every check passed, else ``(503, body)``;
        ``body["checks"]`` names each dependency with ``ok``, ``detail`` and ``latency_ms``.
    """
    ready = runtime_up and bool(results) and all(r.ok for r in results)
    body: dict[str, Any] = {
        "ready": ready,
        "runtime": "up" if runtime_up else "starting",
        "catalog_items": catalog_items,
        "checks": {
            r.name: {"ok": r.ok, "detail": r.detail, "latency_ms": round(r.latency_ms, 1)} for r in results
        },
    }
    failing = [r.name for r in results if not r.ok]
    if waiting_for is not None and not runtime_up:
        name, reason = waiting_for
        body["checks"].setdefault(name, {"ok": False, "detail": reason[:300], "latency_ms": None})
        failing.append(name)
    if failing:
        body["failing"] = failing
    return (200 if ready else 503), body


async def run_check(name: str, check: Check, timeout_s: float) -> CheckResult:
    """Run one check with a deadline; any exception or timeout is a failed check."""
    t0 = time.perf_counter()
    try:
        detail = await asyncio.wait_for(check(), timeout_s)
        ok = True
    except TimeoutError:
        detail, ok = f"no answer within {timeout_s:g}s", False
    except Exception as exc:
        detail, ok = f"{type(exc).__name__}: {exc}"[:300], False
    return CheckResult(name, ok, detail, (time.perf_counter() - t0) * 1000)


class Readiness:
    """Runs the checks at most once per ``ttl_s`` and shares a running round between callers.

    Args:
        checks: Check per dependency name.
        timeout_s: Deadline of each check.
        ttl_s: How long results are reused.
        clock: Monotonic clock (injectable for tests).
    """

    def __init__(
        self,
        checks: Mapping[str, Check],
        *,
        timeout_s: float = CHECK_TIMEOUT_S,
        ttl_s: float = CACHE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.checks = dict(checks)
        self.timeout_s = timeout_s
        self.ttl_s = ttl_s
        self.clock = clock
        self._cached: list[CheckResult] | None = None
        self._at = 0.0
        self._round: asyncio.Task[list[CheckResult]] | None = None

    async def results(self) -> list[CheckResult]:
        """The latest results, re-checked when older than ``ttl_s``."""
        if self._cached is not None and self.clock() - self._at < self.ttl_s:
            return self._cached
        if self._round is None:
            self._round = asyncio.ensure_future(self._run())
        return await asyncio.shield(self._round)

    async def _run(self) -> list[CheckResult]:
        try:
            results = await asyncio.gather(
                *(run_check(name, check, self.timeout_s) for name, check in self.checks.items())
            )
            self._cached, self._at = list(results), self.clock()
            return self._cached
        finally:
            self._round = None


class KafkaCheck:
    """Cluster metadata through the bootstrap servers, on one long-lived client.

    Args:
        settings: Kafka bootstrap servers and security settings.
        timeout_s: Request timeout of the client.
    """

    def __init__(self, settings: Settings, timeout_s: float = CHECK_TIMEOUT_S) -> None:
        self.settings = settings
        self.timeout_ms = max(1, int(timeout_s * 1000))
        self._client: Any = None

    async def __call__(self) -> str:
        from aiokafka.client import AIOKafkaClient

        if self._client is None:
            client = AIOKafkaClient(
                **aiokafka_config(self.settings),
                client_id="recstream-readyz",
                request_timeout_ms=self.timeout_ms,
            )
            try:
                await client.bootstrap()
            except BaseException:
                await client.close()
                raise
            self._client = client
            return f"{len(client.cluster.brokers())} broker(s)"
        md = await self._client.fetch_all_metadata()
        return f"{len(md.brokers())} broker(s)"

    async def close(self) -> None:
        """Close the client (at worker stop)."""
        if self._client is not None:
            await self._client.close()
            self._client = None


def cassandra_check(session: Any, timeout_s: float = CHECK_TIMEOUT_S) -> Check:
    """A check running ``SELECT release_version FROM system.local`` on ``session``.

    Args:
        session: The ``cassandra.cluster.Session`` the state store uses.
        timeout_s: Driver-side timeout of the query.
    """

    async def check() -> str:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()

        def settle(rows: Any, exc: BaseException | None) -> None:
            if done.done():  # timed out meanwhile
                return
            if exc is None:
                done.set_result(rows)
            else:
                done.set_exception(exc)

        # Callbacks run on the driver's thread; hand the result to the event loop.
        fut = session.execute_async("SELECT release_version FROM system.local", timeout=timeout_s)
        fut.add_callbacks(
            lambda rows: loop.call_soon_threadsafe(settle, rows, None),
            lambda exc: loop.call_soon_threadsafe(settle, None, exc),
        )
        rows = await done
        row = rows[0] if rows else None
        return f"release {row.release_version}" if row is not None else "answered"

    return check


def triton_check(
    grpc_client: Any, models: Sequence[str] = MODELS, timeout_s: float = CHECK_TIMEOUT_S
) -> Check:
    """A check that the server and each of ``models`` are ready.

    Args:
        grpc_client: The ``tritonclient.grpc.aio.InferenceServerClient`` the worker uses.
        models: Models that must be ready.
        timeout_s: gRPC deadline of each call.
    """

    async def check() -> str:
        if not await grpc_client.is_server_ready(client_timeout=timeout_s):
            raise RuntimeError("server not ready")
        ready = await asyncio.gather(
            *(grpc_client.is_model_ready(m, client_timeout=timeout_s) for m in models)
        )
        missing = [m for m, r in zip(models, ready, strict=True) if not r]
        if missing:
            raise RuntimeError(f"model(s) not ready: {', '.join(missing)}")
        return f"server and {len(models)} models ready"

    return check


def runtime_checks(settings: Settings, runtime: Runtime, kafka: Check) -> dict[str, Check]:
    """The checks of a running worker, on the connections its processor already holds.

    Cassandra runs on the store's public ``session``
    (:attr:`streams.state.cassandra.CassandraStateStore.session`), Triton on the model client's
    public ``grpc_client`` (see :func:`grpc_client_of`). A runtime without them (another store
    or client) fails that check with a clear detail.
    """
    session = getattr(runtime.processor.store, "session", None)
    grpc_client = grpc_client_of(runtime.processor.client)
    checks: dict[str, Check] = {"kafka": kafka}
    checks["cassandra"] = cassandra_check(session) if session is not None else _missing("Cassandra session")
    checks["triton"] = (
        triton_check(grpc_client) if grpc_client is not None else _missing("Triton gRPC client")
    )
    return checks


def _missing(what: str) -> Check:
    async def check() -> str:
        raise RuntimeError(f"the runtime has no {what}")

    return check


def grpc_client_of(client: object) -> Any:
    """The ``tritonclient.grpc.aio`` client behind a model client (its public ``grpc_client``),
    or None for a client without one (the in-process client of evaluation)."""
    return getattr(client, "grpc_client", None)
