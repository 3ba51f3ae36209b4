"""Processor logic with the in-memory store and a deterministic fake model client.

These are unit tests of the batch logic (state, idempotency, one list per event, exclusions);
the same code runs against real Triton, Cassandra and Kafka in tests/streams/test_worker_e2e.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from recstream.settings import load_settings
from schemas.events import ClickEvent, ReviewEvent, UploadEvent
from serving.client.base import FusionInfo, FusionInputs, InferenceClient
from streams.processor import Incoming, Processor, ProcessorDeps, effective_tau
from streams.retrieval.exact import ExactIndex
from streams.state.base import SourcePos
from streams.state.memory import MemoryStateStore

D = 16


def _vec(text: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


class FakeClient(InferenceClient):
    """Hash-seeded vectors: deterministic, no model."""

    def __init__(self) -> None:
        self.fuse_calls = 0

    async def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([_vec(t, 384) for t in texts])

    async def encode_images(self, images: Sequence[bytes]) -> np.ndarray:
        return np.stack([_vec(b.hex(), 256) for b in images])

    async def fuse(self, inputs: FusionInputs) -> np.ndarray:
        self.fuse_calls += 1
        return np.stack([_vec(row.tobytes().hex(), D) for row in inputs.text])

    async def model_info(self) -> FusionInfo:
        return FusionInfo("fake-1", 384, 256, 7, D, 0.0)

    async def close(self) -> None:
        return None


def _upload(i: int) -> UploadEvent:
    return UploadEvent(
        type="upload",
        event_id=f"up{i}",
        user_id="studio",
        item_id=f"item{i}",
        ts=1_600_000_000_000 + i,
        schema_version=1,
        title=f"Movie {i}",
        tags=("Drama",),
    )


def _click(n: int, user: str, item: int, ts: int) -> ClickEvent:
    return ClickEvent(
        type="click",
        event_id=f"c{n}",
        user_id=user,
        item_id=f"item{item}",
        ts=ts,
        schema_version=1,
        weight=4.0,
    )


def deps(store: MemoryStateStore, client: InferenceClient | None = None, **kw: Any) -> ProcessorDeps:
    """Collaborators of a test processor: ``client`` (default a :class:`FakeClient`), the exact
    index, ``store``; ``kw`` sets the others (clock, metrics, rebalancing)."""
    return ProcessorDeps(
        client or FakeClient(), store, ExactIndex(D), FusionInfo("fake-1", 384, 256, 7, D, 0.0), **kw
    )


def _proc(**env: str) -> tuple[Processor, MemoryStateStore]:
    store = MemoryStateStore()
    settings = load_settings({"RECSTREAM_K": "5", **env})
    return Processor(settings, deps(store, clock=lambda: 1.7e9)), store


async def test_uploads_enter_the_catalogue_and_clicks_get_lists_without_seen_items() -> None:
    proc, store = _proc()
    await proc.process([Incoming(_upload(i), SourcePos("events.upload", 0, i)) for i in range(30)])
    assert len(proc.index) == 30 and len(store.items) == 30
    t0 = 1_600_000_100_000
    batch = [Incoming(_click(n, "alice", n, t0 + n), SourcePos("events.click", 0, n)) for n in range(4)]
    outcomes = await proc.process(batch)
    assert [o.recs.trigger_event_id for o in outcomes] == ["c0", "c1", "c2", "c3"]
    for n, o in enumerate(outcomes):
        ids = [it.item_id for it in o.recs.items]
        assert len(ids) == 5 and not ({f"item{j}" for j in range(n + 1)} & set(ids))
        assert o.embedded and not o.duplicate
    st = proc.cache.get("alice")
    assert st.event_count == 4 and tuple(st.seen) == ("item0", "item1", "item2", "item3")
    assert "alice" not in store.users  # written behind, at the next flush
    await proc.cache.flush()
    assert store.users["alice"].event_count == 4 and store.lists["alice"].trigger_event_id == "c3"


async def test_redelivered_batch_changes_nothing_but_still_gets_lists() -> None:
    proc, _store = _proc()
    await proc.process([Incoming(_upload(i)) for i in range(10)])
    batch = [
        Incoming(_click(n, "bob", n % 3, 1_600_000_200_000 + n), SourcePos("events.click", 1, n))
        for n in range(6)
    ]
    first = await proc.process(batch)
    before = proc.cache.get("bob").snapshot()
    again = await proc.process(batch)
    after = proc.cache.get("bob").snapshot()
    assert np.array_equal(before.acc, after.acc)
    assert len(first) == len(again) == 6
    assert all(o.duplicate for o in again) and not any(o.duplicate for o in first)
    assert [o.recs.items for o in again][-1] == [o.recs.items for o in first][-1]


async def test_new_user_gets_trending_items_and_review_moves_state() -> None:
    proc, _store = _proc(RECSTREAM_UNKNOWN_ITEM_WAIT_S="0.05")
    await proc.process([Incoming(_upload(i)) for i in range(10)])
    await proc.process([Incoming(_click(n, f"u{n}", 7, 1_600_000_300_000 + n)) for n in range(3)])
    # A review is the first event of carol: state comes from the text path.
    review = ReviewEvent(
        type="review",
        event_id="r1",
        user_id="carol",
        item_id="item2",
        ts=1_600_000_400_000,
        schema_version=1,
        text="great photography",
        rating=5,
    )
    (o,) = await proc.process([Incoming(review)])
    assert proc.cache.get("carol").embedding is not None and o.embedded
    # A click on an unknown item: counted, no embedding, cold-start list led by trending item7.
    proc_unknown = _click(99, "dave", 12345, 1_600_000_500_000)
    (o2,) = await proc.process([Incoming(proc_unknown)])
    assert not o2.embedded and proc.cache.get("dave").event_count == 1
    # Trending first (only item7 was clicked), then topped up with the newest items to K.
    assert [i.item_id for i in o2.recs.items] == ["item7", "item9", "item8", "item6", "item5"]


async def test_click_waits_for_an_upload_that_arrives_on_another_topic() -> None:
    import asyncio

    proc, _store = _proc()
    click = asyncio.create_task(proc.process([Incoming(_click(1, "fay", 3, 1_600_000_700_000))]))
    await asyncio.sleep(0.2)
    assert not click.done()  # waiting for item3
    await proc.process([Incoming(_upload(3))])
    (o,) = await click
    assert o.embedded and proc.cache.get("fay").embedding is not None


@pytest.mark.parametrize("k", [1, 3])
async def test_lists_have_length_k_and_descending_scores(k: int) -> None:
    proc, _ = _proc(RECSTREAM_K=str(k))
    await proc.process([Incoming(_upload(i)) for i in range(10)])
    (o,) = await proc.process([Incoming(_click(1, "erin", 1, 1_600_000_600_000))])
    scores = [it.score for it in o.recs.items]
    assert len(scores) == k and scores == sorted(scores, reverse=True)


def test_decay_comes_from_the_model_unless_set_explicitly() -> None:
    trained = FusionInfo("fusion-v3", 384, 256, 7, D, 0.0, tau_s=60.0)
    untrained = FusionInfo("fusion-v0-untrained", 384, 256, 7, D, 0.0)
    default = load_settings({})
    assert effective_tau(default, trained) == 60.0
    assert effective_tau(default, untrained) == default.decay_tau_s
    explicit = load_settings({"RECSTREAM_DECAY_TAU_S": "3600"})
    assert effective_tau(explicit, trained) == 3600.0


class _Recorded:
    def __init__(self, sink: list[tuple[str, float]], name: str) -> None:
        self.sink, self.name = sink, name

    def observe(self, amount: float) -> None:
        self.sink.append((self.name, amount))

    def inc(self, amount: float = 1) -> None:
        self.sink.append((self.name, amount))


class RecordingMetrics:
    """A :class:`streams.processor.ProcessorMetrics` that keeps what it is given."""

    def __init__(self) -> None:
        self.stages: list[tuple[str, float]] = []
        self.events_: list[tuple[str, float]] = []
        self.catalog: list[int] = []

    def stage(self, name: str) -> _Recorded:
        return _Recorded(self.stages, name)

    def events(self, event_type: str, outcome: str) -> _Recorded:
        return _Recorded(self.events_, f"{event_type}/{outcome}")

    def catalog_items(self, n: int) -> None:
        self.catalog.append(n)


async def test_collaborators_come_in_at_construction_clock_and_metrics_included() -> None:
    rec = RecordingMetrics()
    store = MemoryStateStore()
    proc = Processor(load_settings({"RECSTREAM_K": "3"}), deps(store, clock=lambda: 1234.5, metrics=rec))
    assert proc.store is store and proc.cache.store is store and not proc.rebalancing()
    await proc.process([Incoming(_upload(i)) for i in range(4)])
    batch = [
        Incoming(_click(n, "hal", n, 1_600_000_800_000 + n), SourcePos("events.click", 0, n))
        for n in range(2)
    ]
    outcomes = await proc.process(batch + batch[:1])  # the third is a duplicate of the first
    assert {o.generated_at for o in outcomes} == {1_234_500}
    assert rec.catalog == [4]
    assert sorted(rec.events_) == [("click/duplicate", 1), ("click/processed", 2), ("upload/processed", 4)]
    assert {name for name, _ in rec.stages} == {
        "embed_uploads",
        "cassandra_items",
        "state_ensure",
        "apply",
        "retrieval",
        "serialise",
    }


async def test_catalogue_updates_apply_changed_items_and_skip_identical_ones() -> None:
    from streams.state.base import ItemRecord

    proc, _ = _proc()
    await proc.process([Incoming(_upload(i), SourcePos("events.upload", 0, i)) for i in range(3)])
    have = proc.index.get("item1")
    assert have is not None
    same = ItemRecord("item1", have.copy(), frozenset(), "fake-1", proc.titles["item1"])
    assert proc.catalogue_changes([same]) == []
    retitled = ItemRecord("item1", have.copy(), frozenset(), "fake-1", "Movie 1 (director's cut)")
    moved = ItemRecord("item2", -np.asarray(proc.index.get("item2")), frozenset(), "fake-1", "Movie 2")
    new = ItemRecord("item9", have.copy(), frozenset(), "fake-1", "Movie 9")
    changed = proc.catalogue_changes([same, retitled, moved, new])
    assert [c.item_id for c in changed] == ["item1", "item2", "item9"]
    proc.add_items(changed)
    assert proc.titles["item1"] == "Movie 1 (director's cut)" and len(proc.index) == 4
    np.testing.assert_allclose(proc.index.get("item2"), moved.embedding, atol=1e-6)
