"""/readyz logic: aggregation, timeouts, caching (pure), and checks against endpoints that are down."""

from __future__ import annotations

import asyncio
import socket
import time

from recstream.settings import load_settings
from streams.web.readiness import (
    CheckResult,
    KafkaCheck,
    Readiness,
    aggregate,
    run_check,
    runtime_checks,
    triton_check,
)

OK = CheckResult("kafka", True, "1 broker(s)", 3.0)


def test_ready_only_when_the_runtime_is_up_and_every_check_passes() -> None:
    status, body = aggregate(
        [OK, CheckResult("triton", True, "ready", 1.04)], runtime_up=True, catalog_items=9
    )
    assert status == 200 and body["ready"] is True and body["catalog_items"] == 9
    assert body["checks"]["triton"] == {"ok": True, "detail": "ready", "latency_ms": 1.0}
    assert "failing" not in body


def test_one_failing_dependency_makes_503_with_its_detail() -> None:
    down = CheckResult("cassandra", False, "NoHostAvailable: ...", 1000.0)
    status, body = aggregate([OK, down], runtime_up=True, catalog_items=9)
    assert status == 503 and body["ready"] is False and body["failing"] == ["cassandra"]
    assert body["checks"]["cassandra"]["detail"].startswith("NoHostAvailable")
    assert body["checks"]["kafka"]["ok"] is True


def test_starting_runtime_or_no_checks_is_not_ready() -> None:
    assert aggregate([OK], runtime_up=False, catalog_items=0)[0] == 503
    status, body = aggregate([], runtime_up=False, catalog_items=0)
    assert status == 503 and body["runtime"] == "starting" and body["checks"] == {}
    assert aggregate([], runtime_up=True, catalog_items=0)[0] == 503


async def test_run_check_turns_errors_and_timeouts_into_failed_checks() -> None:
    async def boom() -> str:
        raise ConnectionRefusedError("[Errno 111] Connection refused")

    async def hang() -> str:
        await asyncio.sleep(10)
        return "never"

    async def fine() -> str:
        return "fine"

    r = await run_check("kafka", boom, 1.0)
    assert not r.ok and r.detail == "ConnectionRefusedError: [Errno 111] Connection refused"
    t0 = time.perf_counter()
    r = await run_check("triton", hang, 0.05)
    assert not r.ok and r.detail == "no answer within 0.05s" and time.perf_counter() - t0 < 1.0
    r = await run_check("x", fine, 1.0)
    assert (r.name, r.ok, r.detail) == ("x", True, "fine") and 0 <= r.latency_ms < 50


async def test_results_are_cached_and_concurrent_probes_share_one_round() -> None:
    calls = 0
    now = [0.0]

    async def slow() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return f"call {calls}"

    r = Readiness({"dep": slow}, ttl_s=2.0, clock=lambda: now[0])
    first = await asyncio.gather(*(r.results() for _ in range(5)))
    assert calls == 1 and all(x == first[0] for x in first)
    now[0] = 1.9
    assert (await r.results())[0].detail == "call 1" and calls == 1  # cached
    now[0] = 2.1
    assert (await r.results())[0].detail == "call 2" and calls == 2  # expired: checked again


async def test_checks_run_concurrently_under_one_deadline() -> None:
    async def slow() -> str:
        await asyncio.sleep(0.2)
        return "ok"

    r = Readiness({"a": slow, "b": slow, "c": slow}, timeout_s=1.0)
    t0 = time.perf_counter()
    results = await r.results()
    assert [x.ok for x in results] == [True, True, True] and time.perf_counter() - t0 < 0.5


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


async def test_kafka_check_fails_when_no_broker_answers() -> None:
    settings = load_settings({"RECSTREAM_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{_closed_port()}"})
    check = KafkaCheck(settings, timeout_s=0.5)
    try:
        r = await run_check("kafka", check, 2.0)
    finally:
        await check.close()
    assert not r.ok and r.latency_ms < 2500, r


async def test_triton_check_fails_when_the_server_is_down() -> None:
    import tritonclient.grpc.aio as grpcclient

    client = grpcclient.InferenceServerClient(url=f"127.0.0.1:{_closed_port()}")
    try:
        r = await run_check("triton", triton_check(client, timeout_s=0.5), 2.0)
    finally:
        await client.close()
    assert not r.ok and r.latency_ms < 2500, r


async def test_runtime_without_store_session_or_grpc_client_fails_those_checks() -> None:
    class Bare:
        store = object()
        client = object()

    class Runtime:
        processor = Bare()

    async def kafka_ok() -> str:
        return "1 broker(s)"

    checks = runtime_checks(load_settings({}), Runtime(), kafka_ok)  # type: ignore[arg-type]
    results = {n: await run_check(n, c, 1.0) for n, c in checks.items()}
    assert results["kafka"].ok
    assert results["cassandra"].detail == "RuntimeError: the runtime has no Cassandra session"
    assert results["triton"].detail == "RuntimeError: the runtime has no Triton gRPC client"


def test_a_worker_waiting_for_a_dependency_names_it_and_why() -> None:
    reason = ("triton", "triton: InferenceServerException: failed to connect to all addresses")
    status, body = aggregate([], runtime_up=False, catalog_items=0, waiting_for=reason)
    assert status == 503 and body["runtime"] == "starting" and body["failing"] == ["triton"]
    assert body["checks"]["triton"]["ok"] is False
    assert "failed to connect" in body["checks"]["triton"]["detail"]
    # Once up, the runtime's own checks speak: a stale reason is not shown.
    status, body = aggregate([OK], runtime_up=True, catalog_items=1, waiting_for=reason)
    assert status == 200 and "failing" not in body and "triton" not in body["checks"]
