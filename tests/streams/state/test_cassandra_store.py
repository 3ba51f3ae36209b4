"""The Cassandra state store against the real node: compact rows, fencing, the v1 -> v2 migration."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from recstream.settings import Settings
from streams.state.base import ItemRecord, StoredList, UserState, UserWrite
from streams.state.cassandra import USERS_PER_READ, CassandraStateStore
from streams.state.schema import SCHEMA_VERSION, apply_schema, cql_statements
from streams.state.session import connect

pytestmark = [pytest.mark.integration, pytest.mark.cassandra]


def _state(i: int, events: int = 5, seen: int = 3) -> UserState:
    rng = np.random.default_rng(i)
    return UserState(
        f"u{i}",
        rng.normal(size=64),
        1_700_000_000_000 + i,
        events,
        "fusion-v9",
        {"events.click:0": 10 * i, "events.review:1": i},
        tuple(f"e{i}-{j}" for j in range(events)),
        tuple(f"item{j}" for j in range(seen)),
        seen,
    )


@pytest.fixture()
def keyspace(stack: Settings) -> Iterator[Settings]:
    settings = stack.model_copy(update={"cassandra_keyspace": f"ks_store_{uuid.uuid4().hex[:8]}"})
    yield settings
    cluster, session = connect(settings)
    session.execute(f"DROP KEYSPACE IF EXISTS {settings.cassandra_keyspace}", timeout=60)
    cluster.shutdown()


def test_round_trips_users_items_and_lists(keyspace: Settings) -> None:
    apply_schema(keyspace)

    async def run() -> None:
        async with CassandraStateStore.open(keyspace) as store:
            states = [_state(i, events=1 + i % 9, seen=i % 7) for i in range(2 * USERS_PER_READ + 5)]
            await store.write_users([UserWrite.whole(s) for s in states])
            ids = [s.user_id for s in states] + ["nobody", "u3", "u3"]  # unknown and repeated ids
            got = await store.get_users(ids)
            assert set(got) == {s.user_id for s in states}
            for s in states:
                g = got[s.user_id]
                assert s.acc is not None and g.acc is not None
                np.testing.assert_array_equal(g.acc, s.acc)  # float64 bytes, bit-identical
                assert (g.ref_ts, g.event_count, g.model_version, g.seen_count) == (
                    s.ref_ts,
                    s.event_count,
                    s.model_version,
                    s.seen_count,
                )
                assert (g.offsets, g.recent_events, g.seen) == (s.offsets, s.recent_events, s.seen)
            assert await store.get_users([]) == {}

            vec = np.ones(64, np.float32) / 8.0
            await store.put_items([ItemRecord("m1", vec, frozenset({"text"}), "fusion-v9", "Title", 5)])
            (item,) = await store.load_items()
            assert item.item_id == "m1" and item.title == "Title"
            np.testing.assert_allclose(item.embedding, vec)

            s1 = _state(1, events=3)
            await store.write_users([UserWrite.whole(s1, StoredList("u1", '{"items": []}', "e1", 7))])
            assert await store.get_list("u1") == StoredList("u1", '{"items": []}', "e1", 7)
            assert await store.get_list("nobody") is None

    asyncio.run(run())


def test_appends_only_new_ids_and_keeps_the_newest_window(keyspace: Settings) -> None:
    settings = keyspace.model_copy(update={"recent_events_max": 50, "seen_items_max": 20})
    apply_schema(settings)

    async def run() -> None:
        async with CassandraStateStore.open(settings) as store:
            events: list[str] = []
            seen: list[str] = []
            base = store.statements
            for step in range(30):  # 30 flushes of 7 new events and 2 new items each
                events += [f"e{step}-{j}" for j in range(7)]
                seen += [f"i{step}-{j}" for j in range(2)]
                st = UserState(
                    "heavy",
                    np.ones(8),
                    step,
                    len(events),
                    "m",
                    {},
                    tuple(events[-50:]),
                    tuple(seen[-20:]),
                    len(seen),
                )
                await store.write_users([UserWrite(st, 7, 2)])
            assert store.statements - base == 30  # one request per user per flush
            got = (await store.get_users(["heavy"]))["heavy"]
            assert got.recent_events == tuple(events[-50:]) and got.seen == tuple(seen[-20:])
            assert (got.event_count, got.seen_count) == (210, 60)
        # Old rows are trimmed (range deletes every 100 ordinals), not kept forever.
        cluster, session = connect(settings)
        try:
            rows = session.execute(
                f"SELECT count(*) FROM {settings.cassandra_keyspace}.user_state_v2 WHERE user_id = 'heavy'"
            ).one()
            assert rows.count < 210 + 60
        finally:
            cluster.shutdown()

    asyncio.run(run())


def test_a_lower_fence_never_overwrites_a_higher_one(keyspace: Settings) -> None:
    apply_schema(keyspace)

    async def run() -> None:
        async with CassandraStateStore.open(keyspace) as store:
            new = UserState("u", np.full(4, 2.0), 20, 12, "m", {"t:0": 99}, ("a", "b"), ("x",), 1)
            stale = UserState("u", np.full(4, 1.0), 10, 9, "m", {"t:0": 50}, ("a",), ("x",), 1)
            await store.write_users([UserWrite.whole(new, StoredList("u", "new", "b", 2))])
            await store.write_users([UserWrite.whole(stale, StoredList("u", "stale", "a", 1))])  # woke late
            got = (await store.get_users(["u"]))["u"]
            assert got.event_count == 12 and got.offsets == {"t:0": 99} and got.acc is not None
            np.testing.assert_array_equal(got.acc, new.acc)
            lst = await store.get_list("u")
            assert lst is not None and lst.payload == "new"

    asyncio.run(run())


def test_schema_v1_keyspace_with_data_migrates_to_v2(keyspace: Settings) -> None:
    """A keyspace written by the version-1 code is upgraded by ``recstream schema apply``."""
    ks = keyspace.cassandra_keyspace
    cluster, session = connect(keyspace)
    try:
        for stmt in cql_statements(keyspace, upto=1):
            session.execute(stmt, timeout=60)
        session.execute(f"INSERT INTO {ks}.schema_version (id, version) VALUES (0, 1)")
        acc = np.arange(6, dtype=np.float64)
        ins = session.prepare(
            f"INSERT INTO {ks}.user_state (user_id, acc, ref_ts, event_count, model_version, offsets, "
            "recent_events, seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        )
        for i in range(40):
            recent = [f"e{i}-{j}" for j in range(min(1000, 3 + i * 40))]
            session.execute(
                ins,
                (
                    f"old{i}",
                    acc.tobytes(),
                    1000 + i,
                    3 + i * 40,
                    "fusion-v1",
                    {"events.click:1": i},
                    recent,
                    [f"m{i}"],
                ),
            )
        session.execute(
            f"INSERT INTO {ks}.latest_list (user_id, payload, trigger_event_id, generated_at) "
            "VALUES ('old7', '{\"items\":[]}', 'e7-2', 42)"
        )
    finally:
        cluster.shutdown()

    with pytest.raises(Exception, match="schema version 1"):
        CassandraStateStore.open(keyspace)
    said: list[str] = []
    assert apply_schema(keyspace, progress=said.append) == SCHEMA_VERSION == 2
    assert said == [f"keyspace {ks}: migrated to schema version 2 (40 users copied)"]
    assert apply_schema(keyspace, progress=said.append) == 2 and len(said) == 1  # idempotent

    async def check() -> None:
        async with CassandraStateStore.open(keyspace) as store:
            got = await store.get_users([f"old{i}" for i in range(40)])
            assert len(got) == 40
            g = got["old30"]
            assert g.event_count == 1203 and len(g.recent_events) == 1000
            assert (
                g.recent_events[-1] == "e30-999"
                and g.seen == ("m30",)
                and g.offsets == {"events.click:1": 30}
            )
            np.testing.assert_array_equal(g.acc, acc)
            lst = await store.get_list("old7")
            assert lst is not None and (lst.trigger_event_id, lst.generated_at) == ("e7-2", 42)
            # A worker's next write (higher count) supersedes the migrated copy.
            nxt = UserState(
                "old30",
                acc * 2,
                2000,
                1204,
                "fusion-v1",
                {"events.click:1": 31},
                (*g.recent_events[1:], "n1"),
                g.seen,
                1,
            )
            await store.write_users([UserWrite(nxt, 1, 0)])
            again = (await store.get_users(["old30"]))["old30"]
            assert (
                again.event_count == 1204
                and again.recent_events[-1] == "n1"
                and len(again.recent_events) == 1000
            )

    asyncio.run(check())
