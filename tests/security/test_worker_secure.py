"""A real `recstream worker` on the secured stack: it works, keeps its secrets and binds loopback.

The worker runs at DEBUG log level (the most its libraries ever print) with unique passwords
for Kafka and Cassandra; its whole log, its web pages and ``recstream config`` are searched for
them.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from recstream.testing import RECSTREAM, Deployment, EventProducer, ListCollector
from tests.security.conftest import SecureStack, is_loopback, listening_sockets

pytestmark = [pytest.mark.integration, pytest.mark.kafka, pytest.mark.cassandra, pytest.mark.triton]
T0 = 1_700_000_000_000


def _event(kind: str, i: int, user: str, item: str) -> dict[str, object]:
    ev: dict[str, object] = {
        "type": kind,
        "event_id": f"{kind}-{i}",
        "user_id": user,
        "item_id": item,
        "ts": T0 + 60_000 * i,
        "schema_version": 1,
    }
    if kind == "upload":
        ev.update(title=f"Secure film {i}", tags=["Drama"])
    return ev


@pytest.fixture(scope="module")
def lists(secure_deployment: Deployment) -> dict[str, dict[str, object]]:
    """Uploads three items, then a click; returns the published lists by trigger event id."""
    s = secure_deployment.settings
    deadline = time.monotonic() + 120
    with ListCollector(s) as got, EventProducer(s) as producer:
        for i in range(3):
            producer.send_doc("upload", "studio", _event("upload", i, "studio", f"m{i}"))
        producer.flush(30)
        missing = got.wait_for({"upload-0", "upload-1", "upload-2"}, deadline - time.monotonic())
        if not missing:  # the click once its items are in the catalogue
            producer.send_doc("click", "alice", _event("click", 9, "alice", "m1"))
            producer.flush(30)
            got.wait_for({"click-9"}, deadline - time.monotonic())
    return {t: json.loads(a.value) for t, a in got.first.items()}


def test_the_worker_consumes_and_publishes_over_sasl_ssl(lists: dict[str, dict[str, object]]) -> None:
    assert {"upload-0", "upload-1", "upload-2", "click-9"} <= set(lists), sorted(lists)
    click_list = lists["click-9"]
    assert click_list["user_id"] == "alice"
    items = [it["item_id"] for it in click_list["items"]]  # type: ignore[attr-defined]
    assert items and "m1" not in items and set(items) <= {"m0", "m2"}  # the clicked item is seen


def _get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_secrets_appear_in_no_log_page_or_config_output(
    secure_stack: SecureStack, secure_deployment: Deployment, lists: dict[str, dict[str, object]]
) -> None:
    secrets = [secure_stack.kafka_password, secure_stack.cassandra_password]
    worker = secure_deployment.workers[0]
    log = worker.log_path.read_text(errors="replace")
    # The log is a real DEBUG log of a worker that authenticated and worked ...
    assert "DEBUG" in log and len(log) > 50_000
    assert "click-9" in lists
    # ... and kafka-python printed its client configuration, with the password masked.
    assert "'sasl_plain_password': '**********'" in log
    bodies: dict[str, bytes] = {}
    for path in ("/metrics", "/healthz", "/readyz", "/", "/ops", "/ops/ops.js", "/api/ops/summary"):
        status, body = _get(worker.port, path)
        bodies[path] = body
        assert status < 500, (path, status)
    _, user_list = _get(worker.port, "/api/users/alice/list")
    bodies["/api/users/alice/list"] = user_list
    assert b"recstream_" in bodies["/metrics"]
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("RECSTREAM_")}
    config = subprocess.run(
        [RECSTREAM, "config"],
        env={**env, **secure_deployment.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert config.returncode == 0, config.stderr
    shown = json.loads(config.stdout)
    assert shown["kafka_sasl_password"] == "**********" and shown["cassandra_password"] == "**********"
    for secret in secrets:
        assert secret not in log, "a password is in the worker's log"
        for path, body in bodies.items():
            assert secret.encode() not in body, f"a password is in {path}"
        assert secret not in config.stdout + config.stderr


def test_the_worker_listens_on_loopback_only(secure_deployment: Deployment) -> None:
    worker = secure_deployment.workers[0]
    sockets = listening_sockets(worker.proc.pid)
    assert ("127.0.0.1", worker.port) in sockets, sockets
    assert not [s for s in sockets if not is_loopback(s[0])], sockets
