"""Pure helpers of streams/soak.py (no servers)."""

from __future__ import annotations

import itertools
import math
import time

from recstream.settings import load_settings
from schemas.events import ClickEvent
from streams.soak import lag_zero_after, live_messages, percentile, window_p99, window_rates
from streams.workerproc import isolated_env, parse_lag, parse_rss_kib


def test_parse_rss_reads_current_and_peak() -> None:
    status = "Name:\tpython\nVmHWM:\t  812344 kB\nVmRSS:\t  790000 kB\nThreads:\t9\n"
    assert parse_rss_kib(status) == (790_000, 812_344)
    assert parse_rss_kib("Name: x\n") == (0, 0)


def test_parse_lag_reads_each_partition() -> None:
    text = (
        "# TYPE recstream_consumer_lag gauge\n"
        'recstream_consumer_lag{partition="0",topic="t.click"} 12.0\n'
        'recstream_consumer_lag{partition="3",topic="t.upload"} 0.0\n'
        'recstream_events_total{outcome="processed",type="click"} 5.0\n'
    )
    assert parse_lag(text) == {("t.click", 0): 12.0, ("t.upload", 3): 0.0}


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99 and percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7.0 and math.isnan(percentile([], 99))


def test_window_rates_and_p99() -> None:
    assert window_rates([0.5, 1.0, 10.5, 25.0, 31.0], 0.0, 30.0, width=10) == [0.2, 0.1, 0.1]
    sent = {"a": 1_000, "b": 2_000, "c": 12_000}
    listed = {"a": 1_100, "b": 2_900, "c": 12_050}
    assert window_p99(sent, listed, 0.0, 20.0, width=10) == [900, 50]


def test_lag_zero_after_end_of_sending() -> None:
    timeline = [{"t": 1, "lag": 0}, {"t": 5, "lag": 40}, {"t": 11, "lag": None}, {"t": 12, "lag": 0}]
    assert lag_zero_after(timeline, 4.0) == 8.0
    assert lag_zero_after(timeline[:3], 4.0) is None


def test_isolated_env_names_everything_after_one_tag() -> None:
    env = isolated_env({"RECSTREAM_K": "5"}, tag="abc", partitions=2)
    assert env["RECSTREAM_K"] == "5" and env["RECSTREAM_TOPIC_PARTITIONS"] == "2"
    assert env["RECSTREAM_TOPIC_CLICK"] == "tabc.click" and env["RECSTREAM_CASSANDRA_KEYSPACE"] == "ks_abc"


def test_live_messages_restamp_and_rename_each_pass() -> None:
    base = [
        ClickEvent(
            type="click", event_id=f"e{i}", user_id="u", item_id="m", ts=1_700_000_000_000, schema_version=1
        )
        for i in range(2)
    ]
    settings = load_settings({})
    before = int(time.time() * 1000)
    got = list(itertools.islice(live_messages(settings, base), 5))
    assert [m[2] for m in got] == ["e0", "e1", "e0~1", "e1~1", "e0~2"]
    assert all(m[0] == settings.topic_click and m[1] == b"u" and m[3] >= before for m in got)
    again = ClickEvent.from_json_bytes(got[2][4])
    assert again.event_id == "e0~1" and again.ts == got[2][3] and again.item_id == "m"
