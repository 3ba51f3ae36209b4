"""recstream.testing: the list collector, the event producer and the worker-process harness.

The unit tests feed the collector records by hand and give the producer a fake client; the
integration tests read and write a fresh topic of the real Kafka with both faces (thread and
event loop) and both start positions.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from recstream.settings import Settings, load_settings
from recstream.testing import (
    AsyncEventProducer,
    DeliveryError,
    Deployment,
    EventProducer,
    ListCollector,
    decode_list,
    event_message,
)
from schemas.events import ClickEvent, RecsUpdated
from schemas.registry import load_example


def _list(trigger: str, user: str = "u1", items: tuple[str, ...] = ("a", "b"), version: str = "v1") -> bytes:
    doc = {
        "trigger_event_id": trigger,
        "user_id": user,
        "model_version": version,
        "items": [{"item_id": i, "score": 1.0 - n / 10} for n, i in enumerate(items)],
    }
    return json.dumps(doc).encode()


@dataclass
class Rec:
    """What the collector reads of a consumer record."""

    value: bytes | None
    key: bytes | None = None
    timestamp: int = 1_700_000_000_000


def _click(eid: str, user: str = "ann") -> ClickEvent:
    return ClickEvent(
        type="click", event_id=eid, user_id=user, item_id="m1", ts=1_700_000_000_000, schema_version=1
    )


def test_decode_list_reads_a_list_and_falls_back_to_the_key() -> None:
    a = decode_list(None, _list("e1", items=("x", "y")), 5, 1.5)
    assert (a.trigger, a.user_id, a.model_version, a.items, a.timestamp_ms, a.received) == (
        "e1", "u1", "v1", ("x", "y"), 5, 1.5,
    )  # fmt: skip
    example = load_example("recs_updated")
    assert decode_list(None, example, 0, 0.0).recs() == RecsUpdated.from_json_bytes(example)
    # A passthrough's copy of an event, and bytes that are not JSON: the key is the event id.
    assert decode_list(b"ev-7", _click("ev-7").to_json_bytes(), 0, 0.0).trigger == "ev-7"
    assert decode_list(b"k", b"\xff{", 0, 0.0).trigger == "k"
    assert decode_list(None, _list("e1"), 0, 0.0, keep="items").value == b""
    lean = decode_list(None, _list("e1"), 0, 0.0, keep="nothing")
    assert lean.items == () and lean.value == b"" and lean.trigger == "e1"


def test_collector_indexes_the_first_copy_per_trigger_and_the_latest_per_user() -> None:
    c = ListCollector(load_settings({}))
    c._take({0: [Rec(_list("e1", items=("a",))), Rec(None), Rec(_list("e2", user="u2"))]})
    c._take({1: [Rec(_list("e1", items=("b",), version="v2"))]})  # a redelivered event's list
    assert len(c) == 2 and "e1" in c and "e3" not in c
    assert c["e1"].items == ("a",) and c.latest_by_user["u1"].items == ("b",)
    assert c.counts == {"e1": 2, "e2": 1} and c.total == 3 and c.model_versions == {"v1", "v2"}
    assert c.missing(["e1", "e3"]) == {"e3"}


def test_waits_return_what_is_missing_and_wake_on_arrival() -> None:
    c = ListCollector(load_settings({}))
    c._take({0: [Rec(_list("e1"))]})
    assert c.wait_for(["e1"], timeout_s=0) == set()
    t0 = time.monotonic()
    assert c.wait_for(["e1", "e2"], timeout_s=0.3) == {"e2"}
    assert time.monotonic() - t0 >= 0.3
    later = threading.Timer(0.2, c._take, args=({0: [Rec(_list("e2"))]},))
    later.start()
    assert c.wait_for(["e1", "e2"], timeout_s=10) == set()
    assert c.wait_until(lambda: c.total >= 2, timeout_s=0)
    # Nothing new for idle_s, or the publisher gone: give up early.
    t0 = time.monotonic()
    assert c.wait_for(["e9"], timeout_s=10, idle_s=0.2) == {"e9"}
    assert c.wait_for(["e9"], timeout_s=10, alive=lambda: False) == {"e9"}
    assert time.monotonic() - t0 < 5


def test_a_failed_reader_surfaces_in_the_waits() -> None:
    c = ListCollector(load_settings({}))
    c._failed(ConnectionError("broker gone"))
    with pytest.raises(RuntimeError, match="broker gone"):
        c.wait_for(["e1"], timeout_s=5)


async def test_async_waits_do_not_block_the_loop() -> None:
    c = ListCollector(load_settings({}))
    assert await c.wait_for_async([], timeout_s=0) == set()
    asyncio.get_running_loop().call_later(0.1, c._take, {0: [Rec(_list("e1"))]})
    assert await c.wait_for_async(["e1"], timeout_s=10) == set()
    assert await asyncio.to_thread(c.wait_until, lambda: "e1" in c, 0)
    c._loop_thread = threading.get_ident()  # as once entered with ``async with``
    with pytest.raises(RuntimeError, match="wait_for_async"):
        c.wait_for(["e1"], timeout_s=0)


class FakeFuture:
    def __init__(self, fail: bool) -> None:
        self.fail = fail

    def add_errback(self, fn: Callable[[BaseException], None]) -> None:
        if self.fail:
            fn(RuntimeError("broker down"))


class FakeClient:
    def __init__(self, fail_every: int = 0) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.fail_every = fail_every
        self.closed = False

    def send(self, topic: str, value: bytes, key: bytes | None) -> FakeFuture:
        self.sent.append((topic, key, value))
        return FakeFuture(bool(self.fail_every) and len(self.sent) % self.fail_every == 0)

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


def test_producer_routes_by_type_keys_by_user_and_sends_documents_as_given() -> None:
    s = load_settings({}, topic_click="clicks.v9")
    client = FakeClient()
    with EventProducer(s, client=client) as p:
        p.send(_click("e1"))
        p.send_doc("upload", "studio", {"type": "upload", "n": 1})
        p.send_doc("click", b"u", b"{not json")
    assert client.closed
    assert (
        client.sent[0]
        == event_message(s, _click("e1"))
        == ("clicks.v9", b"ann", _click("e1").to_json_bytes())
    )
    assert client.sent[1] == ("events.upload", b"studio", b'{"type": "upload", "n": 1}')
    assert client.sent[2] == ("clicks.v9", b"u", b"{not json")


def test_producer_raises_delivery_failures_at_close_without_hiding_an_error() -> None:
    p = EventProducer(load_settings({}), client=FakeClient(fail_every=2))
    for i in range(5):
        p.send(_click(f"e{i}"))
    with pytest.raises(DeliveryError, match="2 event") as err:
        p.close()
    assert err.value.failures == 2
    p.close()  # closing twice is a no-op
    with pytest.raises(KeyError), EventProducer(load_settings({}), client=FakeClient(fail_every=1)) as q:
        q.send(_click("e1"))
        raise KeyError("the block's own error")


@pytest.mark.integration
@pytest.mark.kafka
def test_collector_reads_from_the_beginning_or_from_entry(
    stack: Settings, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory("lists", partitions=2)
    with EventProducer(stack) as p:
        p.send_raw(topic, b"u1", _list("before"))
        p.flush(30)
    with (
        ListCollector(stack, topic=topic, start="latest") as latest,
        ListCollector(stack, topic=topic) as all_,
    ):
        with EventProducer(stack) as p:
            p.send_raw(topic, b"u1", _list("after"))
            p.flush(30)
        assert all_.wait_for(["before", "after"], timeout_s=60) == set()
        assert latest.wait_for(["after"], timeout_s=60) == set()
    assert "before" not in latest and latest.total == 1


@pytest.mark.integration
@pytest.mark.kafka
def test_collector_and_producer_in_an_event_loop(stack: Settings, topic_factory: Callable[..., str]) -> None:
    topic = topic_factory("lists", partitions=2)

    async def run() -> dict[str, Any]:
        async with ListCollector(stack, topic=topic, start="latest") as c, AsyncEventProducer(stack) as p:
            await p.send(_click("c1"), topic=topic, key=b"c1")  # a copy of an event: keyed by its id
            await p.flush()
            missing = await c.wait_for_async(["c1"], timeout_s=60)
            return {"missing": missing, "user": c["c1"].user_id if "c1" in c else None}

    assert asyncio.run(run()) == {"missing": set(), "user": "ann"}


def test_a_deployment_starts_workers_with_its_env_as_it_is_now(tmp_path: Any, monkeypatch: Any) -> None:
    started: list[tuple[dict[str, str], str, float]] = []

    def fake_start(
        cls: Any, env: dict[str, str], log_path: Any, ready_timeout_s: float = 180.0, *, wait: bool = True
    ) -> str:
        assert wait
        started.append((env, log_path.name, ready_timeout_s))
        return f"worker-{len(started)}"

    from recstream.testing import WorkerProcess

    monkeypatch.setattr(WorkerProcess, "start", classmethod(fake_start))
    d = Deployment({"RECSTREAM_K": "5"}, load_settings({}), tmp_path, ready_timeout_s=90)
    d.start_worker()
    d.env["RECSTREAM_K"] = "7"
    d.start_worker(RECSTREAM_LOG_LEVEL="DEBUG")
    assert started == [
        ({"RECSTREAM_K": "5"}, "worker-0.log", 90),
        ({"RECSTREAM_K": "7", "RECSTREAM_LOG_LEVEL": "DEBUG"}, "worker-1.log", 90),
    ]
