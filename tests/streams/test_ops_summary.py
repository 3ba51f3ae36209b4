"""The ops page's JSON documents (pure builders, and reading this process's metrics)."""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry, Counter, Gauge

from recstream.settings import load_settings
from streams.latest import LatestList
from streams.web.summary import (
    OpsState,
    Sample,
    build_summary,
    by_label,
    collect,
    counter_total,
    lag_rows,
    list_document,
    worker_info,
)
from streams.window import RateWindow, SampleWindow


def test_counters_are_read_from_the_client_objects() -> None:
    reg = CollectorRegistry()
    c = Counter("demo_events_total", "d", ["type", "outcome"], registry=reg)
    c.labels("click", "processed").inc(3)
    c.labels("upload", "processed").inc(2)
    c.labels("click", "dead_letter").inc()
    samples = collect(c)
    assert counter_total(samples, "demo_events_total") == 6  # the _created samples are not counted
    assert by_label(samples, "demo_events_total", "outcome") == {"processed": 5, "dead_letter": 1}
    assert by_label(samples, "demo_events_total", "type") == {"click": 4, "upload": 2}


def test_lag_rows_are_sorted_by_topic_and_partition() -> None:
    reg = CollectorRegistry()
    g = Gauge("recstream_consumer_lag", "d", ["topic", "partition"], registry=reg)
    g.labels("b", "10").set(4)
    g.labels("b", "2").set(1)
    g.labels("a", "0").set(0)
    assert lag_rows(collect(g)) == [
        {"topic": "a", "partition": 0, "lag": 0},
        {"topic": "b", "partition": 2, "lag": 1},
        {"topic": "b", "partition": 10, "lag": 4},
    ]
    assert lag_rows([Sample("other", {}, 1.0)]) == []


def test_summary_document() -> None:
    events = RateWindow(window_s=60)
    events.add(0.0, 0)
    events.add(10.0, 50)
    fresh = SampleWindow(window_s=60)
    fresh.add(5.0, [0.01, 0.02, 0.5])
    doc = build_summary(
        now=10.0,
        events=events,
        freshness=fresh,
        events_by_outcome={"processed": 48, "dead_letter": 2},
        dead_letters={"invalid_json": 2},
        lag=[{"topic": "t", "partition": 0, "lag": 3}],
        catalog_items=7,
        model_version="fusion-v1",
        info={"consumer_group": "g"},
    )
    assert doc["throughput"] == {
        "events_per_s": 5.0,
        "events_in_window": 50,
        "events_total": 50,
        "by_outcome": {"dead_letter": 2, "processed": 48},
    }
    assert doc["freshness"] == {"count": 3, "p50": 0.02, "p95": 0.5, "p99": 0.5}
    assert doc["lag_total"] == 3 and doc["dead_letters_total"] == 2
    assert doc["dead_letters"] == [{"reason": "invalid_json", "total": 2}]
    assert doc["window_s"] == 60 and doc["catalog_items"] == 7 and doc["model_version"] == "fusion-v1"
    json.dumps(doc)  # serialisable as is


def test_ops_state_samples_this_processes_events_counter() -> None:
    from recstream import metrics

    state = OpsState(freshness=SampleWindow())
    state.sample(now=100.0)
    metrics.events("click", "processed").inc(4)
    doc = state.summary({"consumer_group": "g"}, catalog_items=1, model_version="v", now=102.0)
    assert doc["throughput"]["events_in_window"] == 4 and doc["throughput"]["events_per_s"] == 2.0
    assert doc["throughput"]["events_total"] >= 4


def test_list_document_adds_titles_and_ranks() -> None:
    latest = LatestList("u1", (("m1", 0.9), ("m2", 0.5)), "e9", "review", "v3", 1000, 2.5)
    doc = list_document(latest, {"m1": "Heat (1995)"})
    assert doc == {
        "user_id": "u1",
        "trigger_event_id": "e9",
        "event_type": "review",
        "model_version": "v3",
        "generated_at": 1000,
        "published_at_ms": 2500,
        "items": [
            {"rank": 1, "item_id": "m1", "title": "Heat (1995)", "score": 0.9},
            {"rank": 2, "item_id": "m2", "title": "", "score": 0.5},
        ],
    }


def test_worker_info_never_carries_secrets_or_hosts() -> None:
    s = load_settings(
        {
            "RECSTREAM_CASSANDRA_USERNAME": "cass-user",
            "RECSTREAM_CASSANDRA_PASSWORD": "cass-Pa55word",
            "RECSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "RECSTREAM_KAFKA_SASL_MECHANISM": "PLAIN",
            "RECSTREAM_KAFKA_SASL_USERNAME": "kafka-user",
            "RECSTREAM_KAFKA_SASL_PASSWORD": "kafka-Pa55word",
            "RECSTREAM_KAFKA_BOOTSTRAP_SERVERS": "broker.internal:9093",
        }
    )
    text = json.dumps(worker_info(s))
    for secret in ("cass-Pa55word", "kafka-Pa55word", "cass-user", "kafka-user", "broker.internal"):
        assert secret not in text
    assert json.loads(text)["consumer_group"] == "recstream"
