"""The runtime's commit protocol with a fake Kafka port (the real one: tests/streams/test_commit_live.py).

What is checked here is the order of effects: offsets are done only after their lists are
delivered, states are written before any commit that covers them, a skipped range is never
processed past, a stale batch is never processed, and a deferred click is durable before the
state that skips it exists.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np

from recstream.settings import load_settings
from schemas.events import ClickEvent, UploadEvent
from streams.processor import Processor
from streams.repair import STALL_S
from streams.runtime import Runtime
from streams.state.memory import MemoryStateStore
from tests.streams.fakes import Ev, FakeKafka, Msg
from tests.streams.test_processor import deps

CLICK = "events.click"
RETRY = "recstream.retry"  # the default consumer group's retry topic


def _click(n: int, user: str, item: int) -> bytes:
    ev = ClickEvent(
        type="click",
        event_id=f"c{n}",
        user_id=user,
        item_id=f"item{item}",
        ts=1_600_000_000_000 + n,
        schema_version=1,
    )
    return ev.to_json_bytes()


def _events(rows: list[tuple[int, str, int]], partition: int = 0, gen: int = 1) -> list[Ev]:
    return [
        Ev(Msg(CLICK, partition, off, user.encode(), _click(off, user, item), gen))
        for off, user, item in rows
    ]


async def _runtime(
    kafka_type: Callable[[MemoryStateStore, Processor], FakeKafka] = lambda store, _: FakeKafka(store),
    **env: str,
) -> tuple[Runtime, FakeKafka, MemoryStateStore]:
    settings = load_settings({"RECSTREAM_K": "3", "RECSTREAM_UNKNOWN_ITEM_WAIT_S": "0.05", **env})
    store = MemoryStateStore()
    proc = Processor(settings, deps(store))
    for i in range(10):
        up = UploadEvent(
            type="upload",
            event_id=f"u{i}",
            user_id="studio",
            item_id=f"item{i}",
            ts=1_600_000_000_000,
            schema_version=1,
            title=f"M{i}",
        )
        items = await proc.embed_uploads([up])
        proc.add_items(items)
    kafka = kafka_type(store, proc)
    rt = Runtime(settings, proc, kafka, "catalog")
    rt.assign_for_tests({(CLICK, 0): 0, (CLICK, 1): 0})
    return rt, kafka, store


async def _settle(rt: Runtime) -> None:
    for _ in range(20):
        await asyncio.sleep(0)
    if rt._finishing:
        await asyncio.wait(set(rt._finishing), timeout=2)


async def test_offsets_are_done_only_when_lists_are_delivered() -> None:
    rt, kafka, _store = await _runtime()
    kafka.auto_deliver = False
    await rt.handle(_events([(0, "a", 1), (1, "b", 2), (2, "a", 3)]))
    assert len(kafka.sent) == 3  # handed to the producer at once, not awaited
    await rt.checkpointer.checkpoint()
    assert kafka.commits == []  # nothing delivered: nothing committable
    kafka.deliver_all()
    await _settle(rt)
    await rt.checkpointer.checkpoint()
    ((positions, counts),) = kafka.commits
    assert positions == {(CLICK, 0): 3}
    # The state covering those offsets was written before the commit.
    assert counts == {"a": 2, "b": 1}


async def test_a_redelivered_batch_is_not_processed_again() -> None:
    rt, kafka, _store = await _runtime()
    batch = _events([(0, "a", 1), (1, "a", 2)])
    await rt.handle(batch)
    await _settle(rt)
    await rt.handle(batch)  # same offsets again (a seek back, a stale fetch)
    await _settle(rt)
    assert len(kafka.sent) == 2 and rt.processor.cache.get("a").event_count == 2


async def test_stale_generation_events_are_dropped() -> None:
    rt, kafka, _ = await _runtime()
    await rt.handle(_events([(0, "a", 1)], gen=0))
    assert kafka.sent == [] and rt.tracker.position((CLICK, 0)) == 0


async def test_a_skipped_range_is_read_again_not_processed_past() -> None:
    rt, kafka, _ = await _runtime()
    await rt.handle(_events([(0, "a", 1)]))
    # Offsets 1-3 never arrive; 4 and 5 do (what a consumer that drops prefetched records does).
    await rt.handle(_events([(4, "a", 2), (5, "b", 3)]))
    await _settle(rt)
    assert len(kafka.sent) == 1 and kafka.seeks == [((CLICK, 0), 1)]
    await rt.handle(_events([(1, "a", 4), (2, "a", 5), (3, "c", 6), (4, "a", 2), (5, "b", 3)]))
    await _settle(rt)
    await rt.checkpointer.checkpoint()
    assert kafka.commits[-1][0] == {(CLICK, 0): 6}
    assert rt.processor.cache.get("a").event_count == 4


class _OrderKafka(FakeKafka):
    """Notes the user's state when a click is re-queued."""

    def __init__(self, store: MemoryStateStore, proc: Processor) -> None:
        super().__init__(store)
        self.cache = proc.cache
        self.order: list[str] = []

    async def send(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None) -> Any:
        if topic == RETRY:
            count = self.cache.get("a").event_count if "a" in self.cache else 0
            self.order.append(f"requeue (state count {count})")
        return await super().send(topic, key, value, partition)


async def test_a_deferred_click_is_delivered_before_its_user_moves_past_it() -> None:
    rt, kafka, _store = await _runtime(_OrderKafka)
    assert isinstance(kafka, _OrderKafka)
    order = kafka.order
    # c0 is on an unknown item; c1 (same user, later offset) is not.
    await rt.handle(_events([(0, "a", 999), (1, "a", 2)]))
    await _settle(rt)
    assert order == ["requeue (state count 0)"]
    assert rt.processor.cache.get("a").offsets == {f"{CLICK}:0": 1}
    requeued = [(v, p) for (t, _, v), p in zip(kafka.sent, kafka.partitions, strict=True) if t == RETRY]
    assert len(requeued) == 1 and b'"c0"' in requeued[0][0]
    assert requeued[0][1] == 0  # the partition number of the original: owned here too
    assert not [m for m in kafka.sent if m[0] == CLICK], "never back into the click topic"


async def test_a_deferred_click_read_back_from_the_retry_topic_is_a_click() -> None:
    rt, kafka, _ = await _runtime()
    await rt.handle(_events([(0, "a", 999)]))
    await _settle(rt)
    copy = next(v for t, _, v in kafka.sent if t == RETRY)
    assert rt.retry_topic == RETRY
    rt.tracker.assign((RETRY, 0), 0)
    await rt.handle([Ev(Msg(RETRY, 0, 0, b"a", copy, 1))])
    await _settle(rt)
    assert not [m for m in kafka.sent if m[0] == rt.settings.topic_dlq], "not a wrong_topic dead letter"


async def test_revocation_writes_states_and_commits_every_owned_partition() -> None:
    rt, kafka, _store = await _runtime()
    await rt.handle(_events([(0, "a", 1), (1, "b", 2)]))
    await _settle(rt)
    assert await rt.on_revoke(timeout_s=1.0)
    positions, counts = kafka.commits[-1]
    assert positions == {(CLICK, 0): 2, (CLICK, 1): 0} and counts == {"a": 1, "b": 1}
    # Not ready until assigned again: a batch waits rather than run unowned.
    waiting = asyncio.create_task(rt.handle(_events([(2, "a", 3)])))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await rt.on_assign([(CLICK, 0)], "group")  # no reader: starts at 0, re-reads from the commit
    await asyncio.wait_for(waiting, 1)


async def test_a_failing_store_blocks_commits_not_lists() -> None:
    rt, kafka, store = await _runtime()

    async def down(writes: Any) -> None:
        from streams.errors import StateError

        raise StateError("cassandra down")

    store.write_users = down  # type: ignore[method-assign]
    await rt.handle(_events([(0, "a", 1)]))
    await _settle(rt)
    assert len(kafka.sent) == 1
    with contextlib.suppress(Exception):
        await rt.checkpointer.checkpoint()
    assert kafka.commits == []
    np.testing.assert_equal(rt.tracker.position((CLICK, 0)), 1)


async def test_a_lost_tail_is_read_again_after_the_partition_stays_silent() -> None:
    # Offsets 1-3 were fetched and dropped by the consumer (a rebalance cleared Faust's buffers)
    # and nothing follows them: no later message ever shows the hole.
    rt, kafka, _ = await _runtime()
    now = [100.0]
    rt.repair._clock = lambda: now[0]
    await rt.handle(_events([(0, "a", 1)]))
    await _settle(rt)
    ends = {(CLICK, 0): 4, (CLICK, 1): 0}
    await rt.reread_stalled(ends)
    assert kafka.seeks == []  # silent for less than STALL_S: no alarm yet
    now[0] += STALL_S + 0.1
    await rt.reread_stalled(ends)
    assert kafka.seeks == [((CLICK, 0), 1)]  # partition 1 is at its log end: left alone
    await rt.handle(_events([(1, "a", 4), (2, "a", 5), (3, "c", 6)]))
    await _settle(rt)
    await rt.checkpointer.checkpoint()
    assert kafka.commits[-1][0] == {(CLICK, 0): 4}
    assert rt.processor.cache.get("a").event_count == 3
    now[0] += STALL_S + 0.1
    await rt.reread_stalled(ends)
    assert kafka.seeks == [((CLICK, 0), 1)]  # caught up: no further re-read


async def test_a_busy_agent_is_not_a_stalled_partition() -> None:
    rt, kafka, _ = await _runtime()
    now = [100.0]
    rt.repair._clock = lambda: now[0]
    await rt.handle(_events([(0, "a", 1)]))
    await _settle(rt)
    rt.repair.busy(CLICK, True)  # e.g. a click waiting for its item's upload
    now[0] += 3 * STALL_S
    await rt.reread_stalled({(CLICK, 0): 4})
    assert kafka.seeks == []
    rt.repair.busy(CLICK, False)
    now[0] += STALL_S / 2
    await rt.reread_stalled({(CLICK, 0): 4})
    assert kafka.seeks == []  # silence counts from the end of the batch
    now[0] += STALL_S
    await rt.reread_stalled({(CLICK, 0): 4})
    assert kafka.seeks == [((CLICK, 0), 1)]


async def test_a_partition_starved_while_others_deliver_is_not_a_lost_tail() -> None:
    rt, kafka, _ = await _runtime()
    now = [100.0]
    rt.repair._clock = lambda: now[0]
    await rt.handle(_events([(0, "a", 1)]))  # partition 0 then says nothing (offsets 1-3 pending)
    now[0] += STALL_S + 1
    await rt.handle(_events([(0, "b", 2)], partition=1))  # but the worker keeps receiving
    await _settle(rt)
    await rt.reread_stalled({(CLICK, 0): 4, (CLICK, 1): 1})
    assert kafka.seeks == []
    now[0] += STALL_S + 0.1  # the whole worker quiet: now it is a lost tail
    await rt.reread_stalled({(CLICK, 0): 4, (CLICK, 1): 1})
    assert kafka.seeks == [((CLICK, 0), 1)]
