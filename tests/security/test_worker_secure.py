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

from streams.kafka_config import kafka_python_config
from tests.security.conftest import RECSTREAM, SecureStack, SecureWorker, is_loopback, listening_sockets

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
def lists(secure_worker: SecureWorker) -> dict[str, dict[str, object]]:
    """Uploads three items, then a click; returns the published lists by trigger event id."""
    from kafka import KafkaConsumer, KafkaProducer

    s = secure_worker.settings
    cfg = kafka_python_config(s)
    producer = KafkaProducer(acks="all", **cfg)
    try:
        for i in range(3):
            producer.send(
                s.topic_upload,
                key=b"studio",
                value=json.dumps(_event("upload", i, "studio", f"m{i}")).encode(),
            )
        producer.flush(30)
    finally:
        producer.close()
    consumer = KafkaConsumer(
        s.topic_recs, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None, **cfg
    )
    got: dict[str, dict[str, object]] = {}
    clicked = False
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and "click-9" not in got:
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    doc = json.loads(r.value)
                    got[str(doc["trigger_event_id"])] = doc
            if not clicked and {"upload-0", "upload-1", "upload-2"} <= set(got):
                producer = KafkaProducer(acks="all", **cfg)
                try:
                    producer.send(
                        s.topic_click,
                        key=b"alice",
                        value=json.dumps(_event("click", 9, "alice", "m1")).encode(),
                    )
                    producer.flush(30)
                finally:
                    producer.close()
                clicked = True
    finally:
        consumer.close()
    return got


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
    secure_stack: SecureStack, secure_worker: SecureWorker, lists: dict[str, dict[str, object]]
) -> None:
    secrets = [secure_stack.kafka_password, secure_stack.cassandra_password]
    log = secure_worker.log.read_text(errors="replace")
    # The log is a real DEBUG log of a worker that authenticated and worked ...
    assert "DEBUG" in log and len(log) > 50_000
    assert "click-9" in lists
    # ... and kafka-python printed its client configuration, with the password masked.
    assert "'sasl_plain_password': '**********'" in log
    bodies: dict[str, bytes] = {}
    for path in ("/metrics", "/healthz", "/readyz", "/", "/ops", "/ops/ops.js", "/api/ops/summary"):
        status, body = _get(secure_worker.port, path)
        bodies[path] = body
        assert status < 500, (path, status)
    _, user_list = _get(secure_worker.port, "/api/users/alice/list")
    bodies["/api/users/alice/list"] = user_list
    assert b"recstream_" in bodies["/metrics"]
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("RECSTREAM_")}
    config = subprocess.run(
        [RECSTREAM, "config"], env={**env, **secure_worker.env}, capture_output=True, text=True, timeout=60
    )
    assert config.returncode == 0, config.stderr
    shown = json.loads(config.stdout)
    assert shown["kafka_sasl_password"] == "**********" and shown["cassandra_password"] == "**********"
    for secret in secrets:
        assert secret not in log, "a password is in the worker's log"
        for path, body in bodies.items():
            assert secret.encode() not in body, f"a password is in {path}"
        assert secret not in config.stdout + config.stderr


def test_the_worker_listens_on_loopback_only(secure_worker: SecureWorker) -> None:
    sockets = listening_sockets(secure_worker.proc.pid)
    assert ("127.0.0.1", secure_worker.port) in sockets, sockets
    assert not [s for s in sockets if not is_loopback(s[0])], sockets
