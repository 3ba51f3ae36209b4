"""End to end with real Kafka, Triton and Cassandra and real `recstream worker` processes.

An external producer sends uploads, clicks, reviews and malformed messages; an external
collector reads every list and every dead letter (:mod:`recstream.testing`); cassandra-driver
reads the user states, which must equal a pure-function recomputation from the stored item
embeddings.
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from PIL import Image

from recstream.testing import Deployment, EventProducer, ListCollector, read_topic
from schemas.deadletter import DeadLetter
from schemas.events import RecsUpdated
from streams.state.userstate import Contribution, apply_contributions

pytestmark = pytest.mark.integration
T0 = 1_700_000_000_000


def _png() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 30, 30)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _events() -> tuple[list[tuple[str, str, dict[str, Any]]], set[str]]:
    """(topic kind, key, event) in production order, and the ids of the good events."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    for i in range(24):
        ev: dict[str, Any] = {
            "type": "upload",
            "event_id": f"up-{i}",
            "user_id": "studio",
            "item_id": f"m{i}",
            "ts": T0 + i,
            "schema_version": 1,
            "title": f"Film number {i}",
            "tags": ["Drama" if i % 2 else "Comedy"],
        }
        if i % 3 == 0:
            ev["features"] = {"visual": [0.1 * (i % 7)] * 7}
        if i == 5:
            ev["image"] = {"b64": _png()}
        out.append(("upload", "studio", ev))
    for n in range(36):
        user = f"user{n % 3}"
        out.append(
            (
                "click",
                user,
                {
                    "type": "click",
                    "event_id": f"c-{n}",
                    "user_id": user,
                    "item_id": f"m{(n * 7) % 24}",
                    "ts": T0 + 60_000 * (n + 1),
                    "schema_version": 1,
                    "weight": 1 + n % 4,
                },
            )
        )
    out.append(
        (
            "review",
            "rita",
            {
                "type": "review",
                "event_id": "r-1",
                "user_id": "rita",
                "item_id": "m3",
                "ts": T0 + 5_000_000,
                "schema_version": 1,
                "text": "a gentle, funny family drama",
                "rating": 4,
            },
        )
    )
    return out, {e["event_id"] for _, _, e in out}


BAD: list[tuple[str, bytes | None, bytes, str]] = [
    ("click", b"u", b"{not json", "invalid_json"),
    (
        "click",
        b"u",
        b'{"type": "click", "user_id": "u", "item_id": "m1", "ts": 1700000000000, "schema_version": 1}',
        "missing_field",
    ),
    (
        "upload",
        b"u",
        json.dumps(
            {
                "type": "click",
                "event_id": "x1",
                "user_id": "u",
                "item_id": "m1",
                "ts": 1700000000000,
                "schema_version": 1,
            }
        ).encode(),
        "wrong_topic",
    ),
    (
        "click",
        b"u",
        json.dumps(
            {
                "type": "click",
                "event_id": "x2",
                "user_id": "u",
                "item_id": "m1",
                "ts": 1700000000000,
                "schema_version": 9,
            }
        ).encode(),
        "unsupported_version",
    ),
    ("review", b"u", b"\xff\xfe\x00garbage", "invalid_utf8"),
    (
        "click",
        b"someone-else",
        json.dumps(
            {
                "type": "click",
                "event_id": "x3",
                "user_id": "u",
                "item_id": "m1",
                "ts": 1700000000000,
                "schema_version": 1,
            }
        ).encode(),
        "key_mismatch",
    ),
    (
        "click",
        None,  # keyless: would land on an arbitrary partition
        json.dumps(
            {
                "type": "click",
                "event_id": "x4",
                "user_id": "u",
                "item_id": "m1",
                "ts": 1700000000000,
                "schema_version": 1,
            }
        ).encode(),
        "missing_key",
    ),
]


def _produce(env: Deployment, events: list[tuple[str, str, dict[str, Any]]], bad: bool = True) -> None:
    with EventProducer(env.settings) as producer:
        for kind, key, ev in events:
            producer.send_doc(kind, key, ev)
        if bad:
            for kind, bad_key, raw, _ in BAD:
                producer.send_doc(kind, bad_key, raw)
        producer.flush(30)


def _states(env: Deployment) -> dict[str, Any]:
    """Users (UserState) and items as stored, once the worker's write-behind has settled.

    States are written at the worker's checkpoints (every ``commit_interval_s``): read until two
    reads one interval apart agree.
    """
    import asyncio

    from cassandra.cluster import Cluster

    from streams.state.cassandra import CassandraStateStore

    s = env.settings
    cluster = Cluster(s.cassandra_hosts, port=s.cassandra_port)
    try:
        session = cluster.connect(s.cassandra_keyspace)
        items = {
            r.item_id: np.frombuffer(r.embedding, dtype=np.float32)
            for r in session.execute("SELECT * FROM items")
        }
        ids = sorted({r.user_id for r in session.execute("SELECT DISTINCT user_id FROM user_state_v2")})
    finally:
        cluster.shutdown()

    async def read() -> dict[str, Any]:
        async with CassandraStateStore.open(s) as store:
            prev: dict[str, Any] | None = None
            for _ in range(30):
                got = await store.get_users(ids)
                key = {u: st.event_count for u, st in got.items()}
                if prev is not None and key == prev:
                    return got
                prev = key
                await asyncio.sleep(s.commit_interval_s * 1.5)
            return got

    return {"users": asyncio.run(read()), "items": items}


def _wait_lists(env: Deployment, ids: set[str]) -> list[RecsUpdated]:
    """Every list read once each id in ``ids`` has one (or after 120 s)."""
    with ListCollector(env.settings) as lists:
        lists.wait_for(ids, timeout_s=120)
    return [a.recs() for a in lists.first.values()]


def test_pipeline_lists_dead_letters_and_state(deployment_factory: Callable[[], Deployment]) -> None:
    env = deployment_factory()
    worker = env.start_worker()
    events, good_ids = _events()
    # The catalogue first (as in production), so every list can hold K unseen items; a list is
    # shorter only when fewer unseen items exist (e.g. the first click on a one-item catalogue).
    uploads = [e for e in events if e[0] == "upload"]
    _produce(env, uploads, bad=False)
    _wait_lists(env, {e["event_id"] for _, _, e in uploads})
    _produce(env, [e for e in events if e[0] != "upload"])
    lists = _wait_lists(env, good_ids)
    by_trigger = {r.trigger_event_id: r for r in lists}
    assert set(by_trigger) >= good_ids, f"missing lists for {good_ids - set(by_trigger)}"
    assert set(by_trigger) == good_ids  # nothing for the malformed messages

    # Every list: valid, length K, names its trigger, excludes what the user had already clicked.
    clicked: dict[str, list[str]] = defaultdict(list)
    for kind, user, ev in events:
        if kind != "click":
            continue
        clicked[user].append(ev["item_id"])
        rec = by_trigger[ev["event_id"]]
        listed = [it.item_id for it in rec.items]
        assert rec.user_id == user and len(listed) == 10
        assert not set(listed) & set(clicked[user]), (ev["event_id"], listed, clicked[user])

    # Dead letters: every malformed message, with its bytes and the expected reason.
    dlq = read_topic(env.settings, env.settings.topic_dlq, lambda got: len(got) >= len(BAD), timeout_s=120)
    letters = [DeadLetter.from_json_bytes(r.value) for r in dlq]
    assert sorted((d.raw_value(), d.rejection.reason) for d in letters) == sorted(
        (raw, why) for _, _, raw, why in BAD
    )
    assert worker.alive, "the worker must survive malformed input"

    # Consumer lag is exported per input partition and returns to zero once all is processed.
    inputs = set(env.settings.event_topics.values())
    deadline = time.monotonic() + 30
    lag = worker.lag()
    while time.monotonic() < deadline and not ({t for t, _ in lag} >= inputs and not any(lag.values())):
        time.sleep(1)
        lag = worker.lag()
    assert {t for t, _ in lag} >= inputs and not any(lag.values()), lag

    # State in Cassandra equals the pure recomputation from the stored item embeddings.
    st = _states(env)
    assert len(st["items"]) == 24 and st["users"]["rita"].event_count == 1
    for user in ("user0", "user1", "user2"):
        contribs = [
            Contribution(
                ev["event_id"],
                user,
                ev["item_id"],
                ev["ts"],
                st["items"][ev["item_id"]],
                env.settings.weight_click * ev["weight"],
            )
            for kind, u, ev in events
            if kind == "click" and u == user
        ]
        expected, _ = apply_contributions(
            None, user, contribs, tau_s=env.settings.decay_tau_s, seen_max=env.settings.seen_items_max
        )
        row = st["users"][user]
        np.testing.assert_allclose(row.acc, expected.acc, rtol=1e-9, atol=1e-12)
        assert row.event_count == 12 and row.ref_ts == expected.ref_ts


def test_redelivery_and_replay_leave_state_bit_identical(
    deployment_factory: Callable[[], Deployment],
) -> None:
    env = deployment_factory()
    worker = env.start_worker()
    events, good_ids = _events()
    _produce(env, events, bad=False)
    _wait_lists(env, good_ids)
    time.sleep(2)  # let the last offsets commit
    before = {u: (r.acc.tobytes(), r.event_count, r.seen) for u, r in _states(env)["users"].items()}
    worker.stop()

    # Redelivery: a new consumer group starts from the earliest offsets (same as an offset reset).
    env.env["RECSTREAM_CONSUMER_GROUP"] += "-again"
    worker2 = env.start_worker()
    # Replay: the same events produced again (same ids, new offsets).
    _produce(env, events, bad=False)
    with ListCollector(env.settings) as lists:
        lists.wait_until(lambda: lists.total >= 3 * len(good_ids), timeout_s=120)
    assert lists.total >= 3 * len(good_ids)
    time.sleep(1)
    after = {u: (r.acc.tobytes(), r.event_count, r.seen) for u, r in _states(env)["users"].items()}
    assert after == before
    assert worker2.alive


def test_two_workers_reach_the_same_state_as_one(deployment_factory: Callable[[], Deployment]) -> None:
    events, good_ids = _events()
    results = []
    for n_workers in (1, 2):
        env = deployment_factory()
        for _ in range(n_workers):
            env.start_worker()
        _produce(env, events, bad=False)
        _wait_lists(env, good_ids)
        time.sleep(1)
        results.append(_states(env))
    one, two = results
    assert set(one["users"]) == set(two["users"])
    assert len(one["users"]) == 5, sorted(one["users"])  # studio (uploads), user0-2, rita
    for user, row in one["users"].items():
        other = two["users"][user]
        assert row.event_count == other.event_count and set(row.seen) == set(other.seen)
        # Item embeddings come from Triton batches of different composition with one or two
        # workers (float rounding ~1e-7); the user embedding must agree within 1e-6.
        a, b = row.acc, other.acc
        np.testing.assert_allclose(a / np.linalg.norm(a), b / np.linalg.norm(b), atol=1e-6)
