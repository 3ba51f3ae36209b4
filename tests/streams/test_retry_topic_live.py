"""A click on an item not uploaded yet waits on recstream's own retry topic (real stack).

An external consumer counts the messages on ``events.click``: the click is there once, as its
producer sent it, however often the worker re-queued it; the copies are on the retry topic, and
the click is applied once its item exists.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from recstream.testing import Deployment, EventProducer, ListCollector, read_topic
from streams.topics import retry_topic

pytestmark = pytest.mark.integration
T0 = 1_700_000_000_000


def test_deferred_clicks_go_to_the_retry_topic_never_back_to_events_click(
    deployment_factory: Callable[[], Deployment],
) -> None:
    dep = deployment_factory()
    dep.env["RECSTREAM_UNKNOWN_ITEM_WAIT_S"] = "0.2"
    dep.start_worker()
    s = dep.settings
    click = {
        "type": "click",
        "event_id": "c-early",
        "user_id": "ann",
        "item_id": "late-item",
        "ts": T0 + 60_000,
        "schema_version": 1,
    }
    upload = {
        "type": "upload",
        "event_id": "up-late",
        "user_id": "studio",
        "item_id": "late-item",
        "ts": T0,
        "schema_version": 1,
        "title": "Arrives late",
    }
    with EventProducer(s) as producer, ListCollector(s) as lists:
        producer.send_doc("click", "ann", click)
        producer.flush(30)
        retry = retry_topic(s)
        deadline = time.monotonic() + 60
        copies: list[object] = []
        while time.monotonic() < deadline and len(copies) < 2:  # re-queued at least twice
            copies = read_topic(s, retry, lambda got: len(got) >= 2, timeout_s=5)
        assert len(copies) >= 2, "the click was not re-queued to the retry topic"
        producer.send_doc("upload", "studio", upload)
        producer.flush(30)
        assert not lists.wait_for({"c-early", "up-late"}, timeout_s=120)
        assert lists["c-early"].user_id == "ann"
    on_click_topic = read_topic(s, s.topic_click, lambda got: False, timeout_s=5)
    assert [r.value for r in on_click_topic] == [producer_bytes(click)], "events.click holds the click once"
    assert {r.partition for r in copies} == {on_click_topic[0].partition}  # same partition number


def producer_bytes(doc: dict[str, object]) -> bytes:
    import json

    return json.dumps(doc).encode()
