"""The Cassandra state store against the real node: round trips, chunked reads, items, lists."""

from __future__ import annotations

import asyncio
import uuid

import numpy as np

from recstream.settings import Settings
from streams.state.base import ItemRecord, StoredList, UserState
from streams.state.cassandra import USERS_PER_READ, CassandraStateStore, apply_schema, connect


def _state(i: int) -> UserState:
    rng = np.random.default_rng(i)
    return UserState(
        f"u{i}",
        rng.normal(size=64),
        1_700_000_000_000 + i,
        i + 1,
        "fusion-v9",
        {"events.click:0": 10 * i, "events.review:1": i},
        tuple(f"e{i}-{j}" for j in range(5)),
        tuple(f"item{j}" for j in range(i % 7)),
    )


def test_round_trips_users_items_and_lists(stack: Settings) -> None:
    settings = stack.model_copy(update={"cassandra_keyspace": f"ks_store_{uuid.uuid4().hex[:8]}"})
    apply_schema(settings)

    async def run() -> None:
        async with CassandraStateStore.open(settings) as store:
            states = [_state(i) for i in range(2 * USERS_PER_READ + 5)]  # three read chunks
            await store.put_users(states)
            ids = [s.user_id for s in states] + ["nobody", "u3", "u3"]  # unknown and repeated ids
            got = await store.get_users(ids)
            assert set(got) == {s.user_id for s in states}
            for s in states:
                g = got[s.user_id]
                assert s.acc is not None and g.acc is not None
                np.testing.assert_array_equal(g.acc, s.acc)  # float64 bytes, bit-identical
                assert (g.ref_ts, g.event_count, g.model_version) == (
                    s.ref_ts,
                    s.event_count,
                    s.model_version,
                )
                assert (g.offsets, g.recent_events, g.seen) == (s.offsets, s.recent_events, s.seen)
            assert await store.get_users([]) == {}

            vec = np.ones(64, np.float32) / 8.0
            await store.put_items([ItemRecord("m1", vec, frozenset({"text"}), "fusion-v9", "Title", 5)])
            (item,) = await store.load_items()
            assert item.item_id == "m1" and item.title == "Title"
            np.testing.assert_allclose(item.embedding, vec)

            await store.put_lists([StoredList("u1", '{"items": []}', "e1", 7)])
            assert await store.get_list("u1") == StoredList("u1", '{"items": []}', "e1", 7)
            assert await store.get_list("u2") is None

    try:
        asyncio.run(run())
    finally:
        cluster, session = connect(settings)
        session.execute(f"DROP KEYSPACE IF EXISTS {settings.cassandra_keyspace}")
        cluster.shutdown()
