"""A worker whose dependencies are down at start, and a worker bound beyond loopback.

Real Kafka, Cassandra and Triton; the worker reaches Cassandra and Triton through
:class:`recstream.testing.TcpForwarder`, which refuses connections (a server not started)
until the test switches it on.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from recstream.testing import Deployment, EventProducer, ListCollector, TcpForwarder, WorkerProcess

pytestmark = pytest.mark.integration
T0 = 1_700_000_000_000
TOKEN = "live-test-token-5f0c2e9a7b"


def _readyz(worker: WorkerProcess) -> dict[str, Any]:
    try:
        return dict(json.loads(worker.get("/readyz")))
    except urllib.error.HTTPError as err:
        assert err.code == 503
        return dict(json.loads(err.read()))


def _wait_failing(worker: WorkerProcess, name: str, timeout_s: float = 60.0) -> dict[str, Any]:
    """The first /readyz body naming ``name`` as the failing dependency."""
    deadline = time.monotonic() + timeout_s
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        assert worker.alive, worker.log_tail()
        try:
            body = _readyz(worker)
        except OSError:  # the web server is not up yet
            time.sleep(0.3)
            continue
        if name in body.get("failing", []):
            return body
        time.sleep(0.3)
    raise AssertionError(f"/readyz never named {name}: {body}\n{worker.log_tail()}")


def _events(n_clicks: int) -> list[tuple[str, str, dict[str, Any]]]:
    out: list[tuple[str, str, dict[str, Any]]] = []
    for i in range(4):
        out.append(
            (
                "upload",
                "studio",
                {
                    "type": "upload",
                    "event_id": f"up-{i}",
                    "user_id": "studio",
                    "item_id": f"m{i}",
                    "ts": T0 + i,
                    "schema_version": 1,
                    "title": f"Film {i}",
                },
            )
        )
    for n in range(n_clicks):
        user = f"user{n % 5}"
        out.append(
            (
                "click",
                user,
                {
                    "type": "click",
                    "event_id": f"c-{n}",
                    "user_id": user,
                    "item_id": f"m{n % 4}",
                    "ts": T0 + 60_000 * (n + 1),
                    "schema_version": 1,
                },
            )
        )
    return out


def test_worker_waits_for_cassandra_and_triton_then_processes_what_queued(
    deployment_factory: Callable[[], Deployment],
) -> None:
    dep = deployment_factory()
    s = dep.settings
    host, port = s.triton_grpc_url.rsplit(":", 1)
    triton = TcpForwarder((host, int(port)))
    cassandra = TcpForwarder((s.cassandra_hosts[0], s.cassandra_port))
    try:
        worker = dep.start_worker(
            wait=False,
            RECSTREAM_TRITON_GRPC_URL=triton.address,
            RECSTREAM_CASSANDRA_PORT=str(cassandra.port),
        )
        body = _wait_failing(worker, "cassandra")
        assert body["ready"] is False and body["runtime"] == "starting"
        assert body["checks"]["cassandra"]["detail"], body

        # Events arrive while the worker waits: none may be lost.
        events = _events(30)
        with EventProducer(s) as producer:
            for kind, key, ev in events:
                producer.send_doc(kind, key, ev)
            producer.flush(30)

        cassandra.start()
        body = _wait_failing(worker, "triton")  # Cassandra answers now; Triton is still down
        assert "cassandra" not in body["failing"]
        time.sleep(3)
        assert worker.alive and not _readyz(worker)["ready"]

        triton.start()
        worker.wait_ready(120)
        ids = {ev["event_id"] for _, _, ev in events}
        with ListCollector(s) as lists:
            lists.wait_for(ids, timeout_s=120)
        assert ids <= set(lists.first), sorted(ids - set(lists.first))
        log = worker.log_tail(200_000)
        assert "worker not ready: cassandra" in log and "worker not ready: triton" in log
    finally:
        dep.stop_all()
        triton.stop()
        cassandra.stop()


def _status(worker: WorkerProcess, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    try:
        return 200, worker.get(path, headers=headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_worker_bound_beyond_loopback_needs_the_token_for_user_data(
    deployment_factory: Callable[[], Deployment], tmp_path: Path
) -> None:
    dep = deployment_factory()
    token_file = tmp_path / "web-token"
    token_file.write_text(TOKEN + "\n")
    worker = dep.start_worker(RECSTREAM_WEB_HOST="0.0.0.0", RECSTREAM_WEB_TOKEN_FILE=str(token_file))
    try:
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        basic = {"Authorization": "Basic " + base64.b64encode(f"ops:{TOKEN}".encode()).decode()}
        protected = ("/ops", "/ops/ops.js", "/api/ops/summary", "/api/users/nobody/list")
        for path in (*protected, "/v1/users/nobody/recommendations"):
            code, body = _status(worker, path)
            assert code == 401 and b"authorization required" in body, (path, code, body)
            code, _ = _status(worker, path, {"Authorization": "Bearer wrong-token-wrong-token"})
            assert code == 401, path
        assert _status(worker, "/ops", bearer)[0] == 200
        assert b"<html" in _status(worker, "/ops", basic)[1].lower()
        assert _status(worker, "/api/ops/summary", bearer)[0] == 200
        assert _status(worker, "/api/users/nobody/list", bearer)[0] == 404  # served: no list yet
        assert _status(worker, "/v1/users/nobody/recommendations", bearer)[0] == 404
        assert _status(worker, "/v1/users/nobody/recommendations", basic)[0] == 404
        for open_path in ("/healthz", "/readyz", "/metrics"):
            assert _status(worker, open_path)[0] == 200, open_path
        assert TOKEN not in worker.log_tail(200_000)
    finally:
        dep.stop_all()
