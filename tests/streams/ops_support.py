"""Helpers of the ops tests: real events with current timestamps, HTTP to a worker, waiting."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from recstream.settings import Settings
from recstream.testing import EventProducer

T = TypeVar("T")

#: (event type, key, event dict or raw bytes)
Produced = tuple[str, str, dict[str, Any] | bytes]


def now_ms() -> int:
    return int(time.time() * 1000)


def uploads(n: int, start: int = 0) -> list[Produced]:
    """``n`` uploads of items ``ops-m{i}`` titled ``Ops film {i}``, stamped now."""
    return [
        (
            "upload",
            "studio",
            {
                "type": "upload",
                "event_id": f"up-{uuid.uuid4().hex[:12]}",
                "user_id": "studio",
                "item_id": f"ops-m{i}",
                "ts": now_ms(),
                "schema_version": 1,
                "title": f"Ops film {i}",
                "tags": ["Drama" if i % 2 else "Comedy"],
            },
        )
        for i in range(start, start + n)
    ]


def clicks(users: list[str], items: list[str]) -> list[Produced]:
    """One click per (user, item) pair, stamped now."""
    return [
        (
            "click",
            user,
            {
                "type": "click",
                "event_id": f"c-{uuid.uuid4().hex[:12]}",
                "user_id": user,
                "item_id": item,
                "ts": now_ms(),
                "schema_version": 1,
                "weight": 1,
            },
        )
        for user in users
        for item in items
    ]


def bad_json(n: int = 1) -> list[Produced]:
    """``n`` messages that are not JSON (dead letters with reason ``invalid_json``)."""
    return [("click", "u-bad", b"{not json") for _ in range(n)]


def produce(settings: Settings, events: list[Produced]) -> None:
    """Send events to the deployment's input topics and wait until Kafka has them."""
    with EventProducer(settings) as producer:
        for kind, key, ev in events:
            producer.send_doc(kind, key, ev)
        producer.flush(30)


def http(port: int, path: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """GET ``path`` from a worker: status, headers, body (errors are answers too)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def get_json(port: int, path: str) -> tuple[int, Any]:
    status, _, body = http(port, path)
    return status, json.loads(body)


def wait_until(fn: Callable[[], T | None], what: str, timeout_s: float = 90.0, every_s: float = 0.5) -> T:
    """Call ``fn`` until it returns something truthy; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last: {last!r})")


def summary_when(port: int, pred: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    """The worker's ``/api/ops/summary`` once ``pred`` holds for it."""

    def check() -> dict[str, Any] | None:
        status, body = get_json(port, "/api/ops/summary")
        return body if status == 200 and pred(body) else None

    return wait_until(check, what)
