"""Regressions of bugs the fault tests (tests/chaos) found in the worker.

* Triton stopped for 30 s: clicks on items whose upload was stuck behind the outage waited
  ``unknown_item_wait_s`` and were applied without the item's embedding, so the user state
  differed from an uninterrupted run. Only healthy time now counts against that wait.
* Kafka broker restarted: the click and review agents drained their backlogs at the same time,
  two batches of one user read the same old state, and the later write dropped the other's
  events (lost events with published lists). User states now live in the partition-owned cache
  and every batch is applied in one synchronous pass after its users are present.
* Two workers, one SIGKILLed: the survivor's clicks waited for items whose uploads sat in the
  dead worker's partitions; the rebalance that would hand them over waits for the batches in
  flight, so the clicks were applied without their items. A click whose item is still unknown
  is now re-queued (its message sent again to the back of its partition) and waits no longer
  once a rebalance starts; only after ``MAX_DEFERRALS`` re-queues is it applied without it.
* An exception escaping the runtime made Faust ack the batch unprocessed (``take_events``
  acks in a ``finally``): the input topics now have acknowledgements off and the runtime
  commits only what it finished (streams/checkpoint.py); failures are retried.
* A worker killed after storing an uploaded item but before broadcasting it on the catalogue
  topic re-processes the upload as a duplicate after the restart, and duplicates were never
  broadcast: other workers never learned the item.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from recstream.settings import load_settings
from serving.client.resilience import RetryPolicy
from serving.client.triton import TritonClient
from serving.errors import TransientInferenceError
from streams.processor import Incoming, Outcome, Processor
from streams.runtime import Runtime
from streams.state.base import SourcePos
from streams.state.memory import MemoryStateStore
from tests.streams.fakes import FakeKafka, message
from tests.streams.test_processor import FakeClient, _click, _upload, deps


def _proc(
    wait_s: float, store: MemoryStateStore | None = None, **deps_kw: Any
) -> tuple[Processor, MemoryStateStore]:
    store = MemoryStateStore() if store is None else store
    settings = load_settings({"RECSTREAM_K": "3", "RECSTREAM_UNKNOWN_ITEM_WAIT_S": str(wait_s)})
    return Processor(settings, deps(store, **deps_kw)), store


async def test_click_keeps_waiting_for_its_item_while_a_dependency_is_down() -> None:
    proc, _store = _proc(wait_s=0.3)
    await proc.process([Incoming(_upload(i)) for i in range(5)])
    proc.retry_started()  # e.g. the upload batch retrying while Triton is down
    click = asyncio.create_task(proc.process([Incoming(_click(1, "ann", 7, 1_600_000_900_000))]))
    await asyncio.sleep(1.0)  # far past the wait, but all of it stalled
    assert not click.done()
    await proc.process([Incoming(_upload(7))])  # the dependency is back: the upload lands
    proc.retry_ended()
    (o,) = await asyncio.wait_for(click, 5)
    assert o.embedded and proc.cache.get("ann").embedding is not None


async def test_click_on_an_item_that_never_comes_is_applied_after_healthy_waiting() -> None:
    proc, _store = _proc(wait_s=0.2)
    await proc.process([Incoming(_upload(i)) for i in range(5)])
    (o,) = await asyncio.wait_for(proc.process([Incoming(_click(1, "bo", 999, 1_600_000_900_000))]), 5)
    assert not o.embedded and proc.cache.get("bo").event_count == 1


class _StallingClient(FakeClient):
    """Stalled (a call between a transient failure and its end) while ``on`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.on = True

    @property
    def stalled(self) -> bool:
        return self.on


async def test_a_stalled_model_client_also_pauses_the_wait() -> None:
    client = _StallingClient()
    proc, _ = _proc(wait_s=0.2, client=client)
    click = asyncio.create_task(proc.process([Incoming(_click(1, "cy", 4, 1_600_000_900_000))]))
    await asyncio.sleep(0.6)
    assert not click.done()
    client.on = False
    (o,) = await asyncio.wait_for(click, 5)
    assert not o.embedded  # never uploaded: given up after 0.2 s of healthy time


async def test_triton_client_is_stalled_only_between_a_transient_failure_and_success() -> None:
    client = TritonClient("127.0.0.1:1", retry=RetryPolicy(max_attempts=None, base_delay_s=0.05))
    client._max_batch["m"] = 0
    seen: list[bool] = []
    fails = {"left": 3}

    async def once(model: str, inputs: Any, outputs: Sequence[str]) -> dict[str, Any]:
        seen.append(client.stalled)
        if fails["left"]:
            fails["left"] -= 1
            raise ConnectionError("down")
        return {"Y": inputs["X"]}

    client._once = once  # type: ignore[method-assign]
    assert not client.stalled
    await client.infer("m", {"X": [1]}, ["Y"])
    assert seen == [False, True, True, True] and not client.stalled
    await client.close()


class _FlakyProcessor:
    """Fails ``fails`` times with a transient error, then delegates."""

    def __init__(self, inner: Processor, fails: int) -> None:
        self.inner, self.fails, self.failing_seen = inner, fails, []
        self.index, self.titles, self.cache, self.model = inner.index, inner.titles, inner.cache, inner.model
        self.settings = inner.settings

    @property
    def failing_batches(self) -> int:
        return self.inner.failing_batches

    def retry_started(self) -> None:
        self.inner.retry_started()

    def retry_ended(self) -> None:
        self.inner.retry_ended()

    async def process(self, batch: Sequence[Incoming], **kw: Any) -> list[Outcome]:
        self.failing_seen.append(self.inner.failing_batches)
        if self.fails:
            self.fails -= 1
            raise TransientInferenceError("text_encoder", "unavailable")
        return await self.inner.process(batch, **kw)


def _runtime(proc: Any, kafka: FakeKafka) -> Runtime:
    runtime = Runtime(proc.settings, proc, kafka, "catalog")
    s = proc.settings
    runtime.assign_for_tests({(t, 0): 0 for t in s.event_topics.values()})
    return runtime


async def _settle(runtime: Runtime) -> None:
    await asyncio.sleep(0)
    if runtime._finishing:
        await asyncio.wait(set(runtime._finishing), timeout=2)


async def test_runtime_marks_retrying_batches_and_rebroadcasts_redelivered_uploads() -> None:
    proc, store = _proc(wait_s=0.1)
    flaky = _FlakyProcessor(proc, fails=2)
    kafka = FakeKafka(store)
    runtime = _runtime(flaky, kafka)
    settings = proc.settings
    up = _upload(1)
    await runtime.handle([message(settings.topic_upload, 0, up.to_json_bytes(), up.kafka_key)])
    assert flaky.failing_seen == [0, 1, 1] and proc.failing_batches == 0
    assert any(t == "catalog" and k == b"item1" for t, k, _ in kafka.sent)
    # A worker killed after storing the item but before broadcasting it: the next owner
    # reads the upload again (a new runtime, the state written), and must broadcast it.
    await _settle(runtime)
    await runtime.checkpointer.checkpoint()
    proc2, _ = _proc(wait_s=0.1, store=store)
    proc2.add_items(list(store.items.values()))
    kafka2 = FakeKafka(store)
    runtime2 = _runtime(proc2, kafka2)
    runtime2.tracker.assign((settings.topic_upload, 0), 0)
    await runtime2.handle([message(settings.topic_upload, 0, up.to_json_bytes(), up.kafka_key)])
    await _settle(runtime2)
    assert proc2.cache.get("studio").event_count == 1  # a duplicate: not applied twice
    assert any(t == "catalog" and k == b"item1" for t, k, _ in kafka2.sent)


class _SlowStore(MemoryStateStore):
    """Reads take a while, so concurrent batches overlap between read and apply."""

    async def get_users(self, user_ids: Sequence[str]) -> dict[str, Any]:
        out = await super().get_users(user_ids)
        await asyncio.sleep(0.05)
        return out


async def test_concurrent_batches_of_one_user_both_land() -> None:
    proc, store = _proc(wait_s=0.1, store=_SlowStore())
    await proc.process([Incoming(_upload(i)) for i in range(3)])
    clicks = [
        Incoming(_click(n, "dee", n % 3, 1_600_001_000_000 + n), SourcePos("click", 0, n)) for n in range(4)
    ]
    reviews = [
        Incoming(_click(10 + n, "dee", 1, 1_600_001_000_100 + n), SourcePos("review", 0, n)) for n in range(4)
    ]
    await asyncio.gather(*(proc.process([c]) for c in clicks), *(proc.process([r]) for r in reviews))
    await proc.cache.flush()
    assert store.users["dee"].event_count == 8
    assert set(store.users["dee"].recent_events) == {f"c{n}" for n in (0, 1, 2, 3, 10, 11, 12, 13)}


async def test_click_on_an_unknown_item_is_requeued_then_applied_once_the_item_exists() -> None:
    proc, store = _proc(wait_s=0.1)
    kafka = FakeKafka(store)
    runtime = _runtime(proc, kafka)
    topic = proc.settings.topic_click
    await proc.process([Incoming(_upload(i)) for i in range(3)])
    c = _click(1, "eve", 8, 1_600_001_000_000)
    await runtime.handle([message(topic, 0, c.to_json_bytes(), c.kafka_key)])
    await _settle(runtime)
    retry = runtime.retry_topic
    # Re-queued as is, to the retry topic (never back into events.click), no list.
    assert kafka.sent == [(retry, c.kafka_key, c.to_json_bytes())] and kafka.partitions == [0]
    assert "eve" not in proc.cache
    await proc.process([Incoming(_upload(8))])
    runtime.tracker.assign((retry, 0), 0)
    await runtime.handle([message(retry, 0, c.to_json_bytes(), c.kafka_key)])  # the copy
    await _settle(runtime)
    assert proc.cache.get("eve").event_count == 1 and proc.cache.get("eve").embedding is not None
    assert [t for t, _, _ in kafka.sent] == [retry, proc.settings.topic_recs]


async def test_a_click_whose_item_never_comes_is_applied_after_the_last_requeue() -> None:
    from streams.runtime import MAX_DEFERRALS

    proc, store = _proc(wait_s=0.01)
    kafka = FakeKafka(store)
    runtime = _runtime(proc, kafka)
    topic = proc.settings.topic_click
    c = _click(1, "fin", 404, 1_600_001_000_000)
    for offset in range(MAX_DEFERRALS + 1):
        await runtime.handle([message(topic, offset, c.to_json_bytes(), c.kafka_key)])
        await _settle(runtime)
    assert len(kafka.sent) == MAX_DEFERRALS + 1  # MAX_DEFERRALS re-queues, then one list
    assert kafka.sent[-1][0] == proc.settings.topic_recs
    assert proc.cache.get("fin").event_count == 1 and proc.cache.get("fin").embedding is None


async def test_a_rebalance_ends_the_wait_at_once() -> None:
    proc, _ = _proc(wait_s=30.0, rebalancing=lambda: True)
    c = _click(1, "gus", 77, 1_600_001_000_000)
    assert await asyncio.wait_for(proc.process([Incoming(c)], defer=lambda x: True), 2) == []
