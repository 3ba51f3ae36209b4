"""Turns a batch of validated events into user-state updates and refreshed lists, in one pass.

:meth:`Processor.process` handles a batch end to end: embed uploaded items (Triton: text, image,
fusion) and review texts, look up clicked items in the catalogue, make the batch's users present
in the partition-owned state cache (one read for the new ones), apply every event to its user's
in-memory state (idempotently, in the batch's order), score every event's list with one matrix
product over the catalogue (seen items masked by index row), and serialise each list once into
the bytes that are published and later stored as the user's latest list.

Nothing is written to the state store here: the cache writes changed users behind, before the
offsets covering them are committed (:mod:`streams.checkpoint`). A failure raises before any
state changes (every await comes before the synchronous apply), so the caller may retry the
same batch; events applied by an earlier attempt are recognised as duplicates.

Everything the processor works with (model client, store, index, served model, clock, metrics,
the rebalance signal) comes in one :class:`ProcessorDeps` at construction; nothing is attached
to a processor afterwards.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np

from recstream import metrics
from recstream.settings import Settings
from schemas.events import ClickEvent, Event, RecsUpdated, ReviewEvent, UploadEvent
from serving.client.base import FusionInfo, InferenceClient
from streams.faults import FaultPoints
from streams.items import fusion_inputs, review_fusion_inputs, upload_image_bytes, upload_text
from streams.lists import list_payload
from streams.retrieval.base import ItemIndex
from streams.state.base import ItemRecord, SourcePos, StateStore, StoredList
from streams.state.cache import StateCache
from streams.state.userstate import Contribution, LiveUser, event_weight
from streams.trending import Trending

#: Decimals of the published scores.
SCORE_DECIMALS = 6


@dataclass(frozen=True, slots=True)
class Incoming:
    """A validated event and where it was read (None offline)."""

    event: Event
    source: SourcePos | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one event: its list (as published) and whether it was applied before."""

    event: Event
    items: tuple[tuple[str, float], ...]
    payload: bytes
    generated_at: int
    duplicate: bool
    embedded: bool

    @property
    def recs(self) -> RecsUpdated:
        """The list as a schema record (parsed from the payload; not used on the hot path)."""
        return _parse(self.payload)


def _parse(payload: bytes) -> RecsUpdated:
    return RecsUpdated.from_json_bytes(payload)


def effective_tau(settings: Settings, model: FusionInfo) -> float:
    """The user-state decay to apply.

    ``RECSTREAM_DECAY_TAU_S`` wins when it is set explicitly; otherwise the decay the served
    fusion model was trained with (its artefact records it), so the stream keeps the state the
    model was fitted to; the setting's default when the model records none (untrained model).
    """
    if "decay_tau_s" in settings.model_fields_set or model.tau_s <= 0:
        return settings.decay_tau_s
    return model.tau_s


class Observer(Protocol):
    """A histogram child (``recstream_stage_seconds{stage}``)."""

    def observe(self, amount: float) -> None:
        """Record one duration in seconds."""


class Incrementer(Protocol):
    """A counter child (``recstream_events_total{type,outcome}``)."""

    def inc(self, amount: float = 1) -> None:
        """Add ``amount``."""


class ProcessorMetrics(Protocol):
    """What the processor records into (default: :class:`PrometheusMetrics`)."""

    def stage(self, name: str) -> Observer:
        """Latency of one pipeline stage for one batch; taken once per stage at construction."""

    def events(self, event_type: str, outcome: str) -> Incrementer:
        """Events by type and outcome (``processed``, ``duplicate``, ``unknown_item``)."""

    def catalog_items(self, n: int) -> None:
        """Items in the retrieval catalogue now."""


class PrometheusMetrics:
    """:class:`ProcessorMetrics` on the process's Prometheus metrics (:mod:`recstream.metrics`)."""

    #: The cached children of :mod:`recstream.metrics` themselves (no wrapper call per batch).
    stage = staticmethod(metrics.stage)
    events = staticmethod(metrics.events)

    def catalog_items(self, n: int) -> None:
        metrics.CATALOG_ITEMS.set(n)


#: The default metrics of every processor.
PROMETHEUS = PrometheusMetrics()


def never() -> bool:
    """A rebalance signal that is never raised (evaluation, tests)."""
    return False


@dataclass(frozen=True, slots=True)
class ProcessorDeps:
    """The processor's collaborators, given once at construction.

    Args:
        client: Model client (Triton in workers, in-process in the fast evaluation).
        store: State store (items are written through at once; users through ``cache``).
        index: Item index for retrieval.
        model: Served model dimensions and version.
        clock: Wall clock in seconds; stamps ``generated_at`` of the lists.
        metrics: What the processor records into (default: the Prometheus metrics).
        rebalancing: Whether the worker's consumer group is rebalancing (the Faust app's flag in
            workers): a click waiting for its item then stops waiting, since the rebalance
            waits for its batch.
        cache: Partition-owned user states (default: a new cache over ``store``).
    """

    client: InferenceClient
    store: StateStore
    index: ItemIndex
    model: FusionInfo
    clock: Callable[[], float] = time.time
    metrics: ProcessorMetrics = PROMETHEUS
    rebalancing: Callable[[], bool] = never
    cache: StateCache | None = None


class Processor:
    """The worker's logic, independent of Faust (used by agents, evaluation and tests).

    Args:
        settings: Settings (K, decay, weights, bounds).
        deps: The collaborators (client, store, index, model, clock, metrics, rebalance signal).

    The collaborators are final attributes of the same names (``client``, ``store``, ``index``,
    ``model``, ``cache``, ``clock``, ``rebalancing``), bound once here so the hot path reads them
    directly; the runtime reports a batch retrying after a dependency failure through
    :meth:`retry_started` and :meth:`retry_ended`.
    """

    def __init__(self, settings: Settings, deps: ProcessorDeps) -> None:
        self.settings: Final = settings
        self.deps: Final = deps
        self.client: Final = deps.client
        self.store: Final = deps.store
        self.cache: Final = deps.cache or StateCache(deps.store, settings.state_cache_max_users)
        self.index: Final = deps.index
        self.model: Final = deps.model
        self.clock: Final = deps.clock
        self.rebalancing: Final = deps.rebalancing
        self.tau_s: Final = effective_tau(settings, deps.model)
        self.trending: Final = Trending()
        self.titles: Final[dict[str, str]] = {}
        #: Negative control of the chaos tests only (``RECSTREAM_FAULT_HOOK=no_dedup``).
        self.no_dedup: Final = FaultPoints(settings.fault_hook).no_dedup
        self._failing_batches = 0
        # Bound once: the hot path calls these directly.
        m = deps.metrics
        self._events = m.events
        self._catalog_items = m.catalog_items
        self._observe_embed_uploads = m.stage("embed_uploads").observe
        self._observe_embed_reviews = m.stage("embed_reviews").observe
        self._observe_cassandra_items = m.stage("cassandra_items").observe
        self._observe_state_ensure = m.stage("state_ensure").observe
        self._observe_apply = m.stage("apply").observe
        self._observe_retrieval = m.stage("retrieval").observe
        self._observe_serialise = m.stage("serialise").observe

    async def bootstrap(self) -> int:
        """Load the catalogue from the store into the index. Returns the item count."""
        items = await self.store.load_items()
        self.add_items(items)
        return len(items)

    def catalogue_changes(self, items: Sequence[ItemRecord]) -> list[ItemRecord]:
        """The items that are new here or differ from what the index holds (vector or title).

        A re-upload changes an item's title, image or features, hence its embedding: workers
        that follow the catalogue topic must apply it, while the same item read again (the
        topic is replayed from its start at every start-up) costs nothing.
        """
        out = []
        for it in items:
            have = self.index.get(it.item_id)
            if (
                have is None
                or self.titles.get(it.item_id) != it.title
                or have.shape != it.embedding.shape
                or not np.allclose(have, it.embedding, rtol=0, atol=1e-6)
            ):
                out.append(it)
        return out

    def add_items(self, items: Sequence[ItemRecord]) -> None:
        """Make items retrievable (also used for catalogue updates from other workers)."""
        if not items:
            return
        self.index.upsert([i.item_id for i in items], np.stack([i.embedding for i in items]))
        for it in items:
            self.titles[it.item_id] = it.title
        self._catalog_items(len(self.index))

    async def embed_uploads(self, uploads: Sequence[UploadEvent]) -> list[ItemRecord]:
        """Item embeddings of uploaded items through the text, image and fusion models."""
        t0 = time.perf_counter()
        text = await self.client.encode_text([upload_text(u) for u in uploads])
        images = {i: b for i, u in enumerate(uploads) if (b := upload_image_bytes(u)) is not None}
        image_emb: dict[int, np.ndarray] = {}
        if images:
            emb = await self.client.encode_images(list(images.values()))
            image_emb = dict(zip(images, emb, strict=True))
        inputs = fusion_inputs(
            uploads, text, image_emb, image_dim=self.model.image_dim, feature_dim=self.model.feature_dim
        )
        fused = await self.client.fuse(inputs)
        self._observe_embed_uploads(time.perf_counter() - t0)
        mods = ("text", "image", "features", "id")
        return [
            ItemRecord(
                u.item_id,
                fused[i].astype(np.float32),
                frozenset(m for m, on in zip(mods, inputs.mask[i], strict=True) if on),
                self.model.version,
                u.title,
                u.ts,
            )
            for i, u in enumerate(uploads)
        ]

    async def _review_embeddings(self, reviews: Sequence[ReviewEvent]) -> np.ndarray:
        # Reviews reach the user state through the text path: text encoder, then fusion with
        # only the text modality present, so they land in the shared item/user space.
        t0 = time.perf_counter()
        text = await self.client.encode_text([r.text for r in reviews])
        out = await self.client.fuse(
            review_fusion_inputs(
                reviews, text, image_dim=self.model.image_dim, feature_dim=self.model.feature_dim
            )
        )
        self._observe_embed_reviews(time.perf_counter() - t0)
        return out

    @property
    def failing_batches(self) -> int:
        """Batches retrying now after a dependency failure (reported by the runtime)."""
        return self._failing_batches

    def retry_started(self) -> None:
        """A batch failed on a dependency and is being retried (once per batch, until
        :meth:`retry_ended`): clicks waiting for their items stop counting the wait meanwhile."""
        self._failing_batches += 1

    def retry_ended(self) -> None:
        """A batch reported by :meth:`retry_started` succeeded or was given up."""
        self._failing_batches -= 1

    @property
    def stalled(self) -> bool:
        """Whether a dependency is failing now: a batch is retrying, or a model call is."""
        return self._failing_batches > 0 or self.client.stalled

    async def _click_vectors(self, clicks: Sequence[ClickEvent]) -> dict[str, np.ndarray]:
        missing = {c.item_id for c in clicks if self.index.get(c.item_id) is None}
        # An upload and the first clicks on it travel on different topics (and may be embedded
        # by another worker): wait for the item rather than apply the click without it, which
        # would make the state depend on timing. Only a click on an item that never arrives
        # is applied without an embedding (outcome "unknown_item"). Only healthy time counts
        # against the wait: while Triton or Cassandra is down, the upload bringing the item is
        # stuck as well, and giving up then would drop the click's embedding.
        waited = 0.0
        while missing and waited < self.settings.unknown_item_wait_s and not self.rebalancing():
            t0 = time.monotonic()
            await asyncio.sleep(0.05)
            if not self.stalled:
                waited += time.monotonic() - t0
            missing = {m for m in missing if self.index.get(m) is None}
        out: dict[str, np.ndarray] = {}
        for c in clicks:
            vec = self.index.get(c.item_id)
            if vec is not None:
                out[c.item_id] = vec
        return out

    async def process(
        self,
        batch: Sequence[Incoming],
        *,
        defer: Callable[[Incoming], bool] | None = None,
        requeue: Callable[[list[Incoming]], Awaitable[None]] | None = None,
    ) -> list[Outcome]:
        """Apply a batch and compute one list per event (see the module docstring).

        Args:
            batch: Validated events with their Kafka positions.
            defer: For a click whose item is still unknown after the wait: True leaves it out
                (no outcome, state untouched), False applies it without the item's embedding.
                None: never defer.
            requeue: Awaited with the deferred clicks *before* anything is applied: it must
                make them durable elsewhere (the runtime sends them to the back of their
                partition). A later event of the same user moves its offset guard past them,
                so the state written after this batch would otherwise lose them for good.
        """
        if not batch:
            return []
        uploads = [x.event for x in batch if isinstance(x.event, UploadEvent)]
        reviews = [x.event for x in batch if isinstance(x.event, ReviewEvent)]
        clicks = [x.event for x in batch if isinstance(x.event, ClickEvent)]
        item_vec: dict[str, np.ndarray] = {}
        if uploads:
            items = await self.embed_uploads(uploads)
            t0 = time.perf_counter()
            await self.store.put_items(items)
            self._observe_cassandra_items(time.perf_counter() - t0)
            self.add_items(items)
            item_vec = {it.item_id: it.embedding for it in items}
        review_vec: dict[str, np.ndarray] = {}
        if reviews:
            emb = await self._review_embeddings(reviews)
            review_vec = {r.event_id: emb[i] for i, r in enumerate(reviews)}
        click_vec = await self._click_vectors(clicks) if clicks else {}
        if defer is not None:
            held = {
                x.event.event_id
                for x in batch
                if isinstance(x.event, ClickEvent) and x.event.item_id not in click_vec and defer(x)
            }
            if held:
                if requeue is not None:
                    await requeue([x for x in batch if x.event.event_id in held])
                batch = [x for x in batch if x.event.event_id not in held]
                if not batch:
                    return []
        t0 = time.perf_counter()
        await self.cache.ensure(
            (x.event.user_id, -1 if x.source is None else x.source.partition) for x in batch
        )
        self._observe_state_ensure(time.perf_counter() - t0)
        # From here on nothing awaits: the batch is applied and listed in one synchronous pass,
        # so concurrent agents never interleave inside a user's update.
        return self._apply_and_list(batch, item_vec, review_vec, click_vec)

    def _apply_and_list(
        self,
        batch: Sequence[Incoming],
        item_vec: dict[str, np.ndarray],
        review_vec: dict[str, np.ndarray],
        click_vec: dict[str, np.ndarray],
    ) -> list[Outcome]:
        t0 = time.perf_counter()
        s = self.settings
        seen_max, recent_max, version, tau = (
            s.seen_items_max,
            s.recent_events_max,
            self.model.version,
            self.tau_s,
        )
        warm_rows: list[int] = []
        queries: list[np.ndarray] = []
        excludes: list[np.ndarray] = []
        applied: list[tuple[Incoming, LiveUser, bool, bool, int]] = []
        cold: dict[int, list[str]] = {}
        last_of_user: dict[str, int] = {}
        for x in batch:
            ev = x.event
            user = self.cache.get(ev.user_id)
            if isinstance(ev, UploadEvent):
                vec = item_vec.get(ev.item_id)
            elif isinstance(ev, ReviewEvent):
                vec = review_vec.get(ev.event_id)
            else:
                vec = click_vec.get(ev.item_id)
            c = Contribution(
                ev.event_id,
                ev.user_id,
                ev.item_id,
                ev.ts,
                vec,
                event_weight(ev, s, self.model.rating_power),
                x.source,
            )
            dup = user.is_duplicate(c) and not self.no_dedup
            if not dup:
                added = user.apply(
                    c, tau_s=tau, seen_max=seen_max, recent_max=recent_max, model_version=version
                )
                self._track_seen_rows(user, ev.item_id if added else None)
                if isinstance(ev, ClickEvent):
                    self.trending.add(ev.item_id, ev.ts)
            # The stored latest list is the last one published, a duplicate's included (same
            # seq as the list before it): the read API answers what consumers saw last.
            last_of_user[ev.user_id] = len(applied)
            i = len(applied)
            applied.append((x, user, dup, vec is not None, user.event_count))
            emb = user.embedding
            if emb is None:
                cold[i] = list(user.seen)
            else:
                warm_rows.append(i)
                queries.append(emb)
                excludes.append(self._seen_rows(user))
        self._observe_apply(time.perf_counter() - t0)
        t1 = time.perf_counter()
        k = s.k
        ranked: dict[int, list[tuple[str, float]]] = {}
        if warm_rows:
            hits = self.index.search_rows(np.stack(queries), k, excludes, decimals=SCORE_DECIMALS)
            ranked = dict(zip(warm_rows, hits, strict=True))
        for i, seen in cold.items():
            ranked[i] = [
                (item, round(score, SCORE_DECIMALS)) for item, score in self.cold_start(k, set(seen))
            ]
        self._observe_retrieval(time.perf_counter() - t1)
        t2 = time.perf_counter()
        now_ms = int(self.clock() * 1000)
        out: list[Outcome] = []
        counts: Counter[tuple[str, str]] = Counter()
        for i, (x, user, dup, embedded, seq) in enumerate(applied):
            ev = x.event
            items = tuple(ranked[i])
            payload = list_payload(ev.user_id, items, ev.event_id, version, now_ms, seq)
            out.append(Outcome(ev, items, payload, now_ms, dup, embedded))
            counts[(ev.type, "duplicate" if dup else ("processed" if embedded else "unknown_item"))] += 1
            if last_of_user.get(ev.user_id) == i:
                self.cache.changed(user, StoredList(ev.user_id, payload.decode(), ev.event_id, now_ms))
        events = self._events
        for (etype, outcome), n in counts.items():
            events(etype, outcome).inc(n)
        self._observe_serialise(time.perf_counter() - t2)
        return out

    def _track_seen_rows(self, user: LiveUser, new_item: str | None) -> None:
        """Keep ``user.seen_rows`` (index rows of seen items) up to date after an apply."""
        if new_item is None or user.seen_rows is None:
            return
        row = self.index.row(new_item)
        if row is not None:
            user.seen_rows = np.append(user.seen_rows, row)
        # An item unknown to the index: rows are rebuilt once the index has grown.

    def _seen_rows(self, user: LiveUser) -> np.ndarray:
        """Index rows of the user's seen items (cached on the user; rebuilt when stale)."""
        rows = user.seen_rows
        if rows is None or (len(rows) < len(user.seen) and user.seen_rows_version != self.index.version):
            rows = self.index.rows(user.seen)
            user.seen_rows = rows
            user.seen_rows_version = self.index.version
        return rows

    def cold_start(self, k: int, exclude: set[str]) -> list[tuple[str, float]]:
        """Trending items, topped up with the newest catalogue items so the list has ``k``."""
        top = self.trending.top(k, exclude)
        if len(top) < k:
            have = exclude | {i for i, _ in top}
            for item in reversed(self.titles):  # insertion order: newest items last
                if item not in have:
                    top.append((item, 0.0))
                    if len(top) == k:
                        break
        return top
