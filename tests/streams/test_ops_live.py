"""A real worker's ops endpoints, readiness checks and JSON logs, against the real stack."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from recstream.testing import Deployment
from streams.topics import input_topics
from streams.web.readiness import KafkaCheck, cassandra_check, triton_check
from streams.web.routes import ASSETS, asset
from tests.streams.ops_support import bad_json, clicks, get_json, http, produce, summary_when, uploads

pytestmark = pytest.mark.integration

N_ITEMS = 16  # catalogue > K (10) + clicked items, so every list is full


def test_worker_serves_ops_endpoints(deployment_factory: Callable[[], Deployment]) -> None:
    env = deployment_factory()
    worker = env.start_worker()
    port = worker.port

    # /readyz ran the real dependency checks.
    status, ready = get_json(port, "/readyz")
    assert status == 200 and ready["ready"] is True and ready["runtime"] == "up", ready
    checks = ready["checks"]
    assert set(checks) == {"kafka", "cassandra", "triton"}
    assert all(c["ok"] for c in checks.values()), checks
    assert re.fullmatch(r"\d+ broker\(s\)", checks["kafka"]["detail"])
    assert checks["cassandra"]["detail"].startswith("release 5.")
    assert checks["triton"]["detail"] == "server and 3 models ready"

    # The page and its assets: packaged bytes, right types, a CSP that forbids other origins.
    assert len(ASSETS) == 3, ASSETS
    for name, ctype in ASSETS.items():
        path = "/ops" if name == "ops.html" else f"/ops/{name}"
        status, headers, body = http(port, path)
        assert status == 200 and headers["Content-Type"].startswith(ctype), (path, headers)
        assert body == asset(name) and not re.search(rb"(https?:)?//[a-z0-9]", body.replace(b"'//", b""))
        assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert http(port, "/ops/..%2Fapp.py")[0] == 404
    assert http(port, "/ops/settings.py")[0] == 404

    # Real events: uploads first (the catalogue), then clicks and two malformed messages.
    produce(env.settings, uploads(N_ITEMS))
    summary_when(port, lambda s: s["throughput"]["events_total"] >= N_ITEMS, "the uploads")
    produce(env.settings, clicks(["ops-alice", "ops-bob"], ["ops-m1", "ops-m2", "ops-m3"]) + bad_json(2))
    total = N_ITEMS + 6 + 2
    s = summary_when(
        port,
        lambda s: s["throughput"]["events_total"] >= total and s["lag"] and s["lag_total"] == 0,
        "clicks, dead letters and the lag export",
    )
    tp = s["throughput"]
    assert tp["events_total"] == total and tp["by_outcome"] == {"dead_letter": 2, "processed": N_ITEMS + 6}
    assert 0 < tp["events_per_s"] <= total and 0 < tp["events_in_window"] <= total
    fresh = s["freshness"]
    assert fresh["count"] == N_ITEMS + 6  # one list per good event
    assert 0 <= fresh["p50"] <= fresh["p95"] <= fresh["p99"] < 60, fresh
    assert s["dead_letters"] == [{"reason": "invalid_json", "total": 2}] and s["dead_letters_total"] == 2
    inputs = set(input_topics(env.settings))  # the retry topic is an input too
    assert {(r["topic"], r["partition"]) for r in s["lag"]} == {(t, p) for t in inputs for p in (0, 1)}
    assert s["catalog_items"] == N_ITEMS and s["model_version"]
    assert s["worker"]["consumer_group"] == env.settings.consumer_group and s["worker"]["uptime_s"] > 0

    # The latest list of a user, with the titles of the uploads, excluding what they clicked.
    status, doc = get_json(port, "/api/users/ops-alice/list")
    assert status == 200 and doc["user_id"] == "ops-alice" and doc["event_type"] == "click", doc
    items = doc["items"]
    assert [it["rank"] for it in items] == list(range(1, 11))
    assert all(it["title"] == f"Ops film {it['item_id'].removeprefix('ops-m')}" for it in items), items
    assert not {it["item_id"] for it in items} & {"ops-m1", "ops-m2", "ops-m3"}
    status, missing = get_json(port, "/api/users/nobody-here/list")
    assert status == 404 and missing["user_id"] == "nobody-here"

    # Structured logs: the dead-letter warnings are JSON lines with their Kafka coordinates.
    assert worker.alive
    lines = _json_lines(worker.log_path)
    letters = [d for d in lines if d.get("msg") == "dead letter"]
    assert len(letters) == 2, lines[-20:]
    for d in letters:
        assert d["level"] == "WARNING" and d["logger"] == "recstream.worker" and d["reason"] == "invalid_json"
        assert d["topic"] == env.settings.topic_click and isinstance(d["offset"], int)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", d["ts"])


def _json_lines(log: Path) -> list[dict[str, Any]]:
    """Every line the worker wrote (stdout and stderr), each of which must be one JSON object."""
    out = []
    for line in log.read_text().splitlines():
        if line.strip():
            doc = json.loads(line)
            assert {"ts", "level", "logger", "msg"} <= set(doc), line
            out.append(doc)
    return out


async def test_dependency_checks_pass_against_the_real_stack(stack: Any) -> None:
    from serving.client.triton import TritonClient
    from streams.state.session import connect

    kafka = KafkaCheck(stack)
    try:
        assert re.fullmatch(r"\d+ broker\(s\)", await kafka())  # bootstrap
        assert re.fullmatch(r"\d+ broker\(s\)", await kafka())  # metadata on the open client
    finally:
        await kafka.close()
    cluster, session = connect(stack)
    try:
        assert (await cassandra_check(session)()).startswith("release ")
    finally:
        cluster.shutdown()
    client = TritonClient(stack.triton_grpc_url)
    try:
        assert await triton_check(client.grpc_client)() == "server and 3 models ready"
        with pytest.raises(RuntimeError, match="not_a_model"):
            await triton_check(client.grpc_client, models=("fusion", "not_a_model"))()
    finally:
        await client.close()
