"""Turns a batch of validated events into user-state updates and refreshed lists.

One call of :meth:`Processor.process` handles a batch end to end: embed uploaded items
(Triton: text, image, fusion), embed review texts, look up clicked items in the catalogue,
apply every event to its user's state (idempotently), write the states, compute one top-K list
per event (from the state right after that event) and return the lists for publishing. The
caller publishes and only then acknowledges the batch; a failure anywhere raises before any
acknowledgement, and the retry re-runs the batch: already applied events are recognised as
duplicates and their lists are recomputed and published again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from recstream import metrics
from recstream.settings import Settings
from schemas.events import SCHEMA_VERSION, ClickEvent, Event, RecItem, RecsUpdated, ReviewEvent, UploadEvent
from serving.client.base import FusionInfo, FusionInputs, InferenceClient
from streams.catalog.base import ItemIndex
from streams.items import fusion_inputs, upload_image_bytes, upload_text
from streams.state.base import ItemRecord, SourcePos, StateStore, StoredList, UserState
from streams.trending import Trending
from streams.userstate import Contribution, apply_contributions


@dataclass(frozen=True, slots=True)
class Incoming:
    """A validated event and where it was read (None offline)."""

    event: Event
    source: SourcePos | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one event: its list, and whether it was already applied before."""

    event: Event
    recs: RecsUpdated
    duplicate: bool
    embedded: bool


class UserLocks:
    """Serialises the read-modify-write of a user's state across concurrent batches.

    The click, review and upload agents process their batches concurrently, and one user's
    events arrive on all three topics: two batches holding the same user would both read the
    old state and the later write would drop the other's events. Users map to a fixed number
    of lock stripes, always taken in ascending order (no deadlock between batches).
    """

    def __init__(self, stripes: int = 1024) -> None:
        self._locks = [asyncio.Lock() for _ in range(stripes)]

    def stripes(self, users: Iterable[str]) -> list[int]:
        """The sorted stripe numbers of ``users``."""
        return sorted({zlib.crc32(u.encode("utf-8")) % len(self._locks) for u in users})

    @contextlib.asynccontextmanager
    async def hold(self, users: Iterable[str]) -> AsyncIterator[None]:
        """Hold the locks of ``users`` for the body of an ``async with``."""
        taken: list[asyncio.Lock] = []
        try:
            for i in self.stripes(users):
                await self._locks[i].acquire()
                taken.append(self._locks[i])
            yield
        finally:
            for lock in reversed(taken):
                lock.release()


async def _timed(stage: str, op: Awaitable[None]) -> None:
    t0 = time.perf_counter()
    await op
    metrics.stage(stage).observe(time.perf_counter() - t0)


def effective_tau(settings: Settings, model: FusionInfo) -> float:
    """The user-state decay to apply.

    ``RECSTREAM_DECAY_TAU_S`` wins when it is set explicitly; otherwise the decay the served
    fusion model was trained with (its artefact records it), so the stream keeps the state the
    model was fitted to; the setting's default when the model records none (untrained model).
    """
    if "decay_tau_s" in settings.model_fields_set or model.tau_s <= 0:
        return settings.decay_tau_s
    return model.tau_s


class Processor:
    """The worker's logic, independent of Faust (used by agents, evaluation and tests).

    Args:
        settings: Settings (K, decay, weights, bounds).
        client: Model client (Triton in workers, in-process in the fast evaluation).
        store: State store (Cassandra in workers, memory in the fast evaluation).
        index: Item index for retrieval.
        model: Served model dimensions and version.
        clock: Wall clock in seconds (injectable for tests).
    """

    def __init__(
        self,
        settings: Settings,
        client: InferenceClient,
        store: StateStore,
        index: ItemIndex,
        model: FusionInfo,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.client = client
        self.store = store
        self.index = index
        self.model = model
        self.tau_s = effective_tau(settings, model)
        self.trending = Trending()
        self.clock = clock
        self.titles: dict[str, str] = {}
        #: Batches currently retrying after a dependency failure (maintained by the runtime).
        self.failing_batches = 0
        self.user_locks = UserLocks()
        #: Whether the worker's consumer group is rebalancing (set by the Faust app): a click
        #: waiting for its item then stops waiting, since the rebalance waits for its batch.
        self.rebalancing: Callable[[], bool] = lambda: False

    async def bootstrap(self) -> int:
        """Load the catalogue from the store into the index. Returns the item count."""
        items = await self.store.load_items()
        self.add_items(items)
        return len(items)

    def add_items(self, items: Sequence[ItemRecord]) -> None:
        """Make items retrievable (also used for catalogue updates from other workers)."""
        if not items:
            return
        self.index.upsert([i.item_id for i in items], np.stack([i.embedding for i in items]))
        for it in items:
            self.titles[it.item_id] = it.title
        metrics.CATALOG_ITEMS.set(len(self.index))

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
        metrics.stage("embed_uploads").observe(time.perf_counter() - t0)
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
        text = await self.client.encode_text([r.text for r in reviews])
        n = len(reviews)
        mask = np.zeros((n, 4), dtype=np.float32)
        mask[:, 0] = 1.0
        return await self.client.fuse(
            FusionInputs(
                text=text,
                image=np.zeros((n, self.model.image_dim), dtype=np.float32),
                features=np.zeros((n, self.model.feature_dim), dtype=np.float32),
                item_ids=tuple(f"review:{r.event_id}" for r in reviews),
                mask=mask,
            )
        )

    @property
    def stalled(self) -> bool:
        """Whether a dependency is failing now: a batch is retrying, or a model call is."""
        return self.failing_batches > 0 or self.client.stalled

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

    def _weight(self, event: Event) -> float:
        s = self.settings
        if isinstance(event, ClickEvent):
            w = event.weight or 1.0
            if self.model.rating_power and event.weight:
                # MovieLens replays carry stars as the click weight (0.5-5).
                return s.weight_click * (min(w, 5.0) / 5.0) ** self.model.rating_power
            return s.weight_click * (w if not self.model.rating_power else 1.0)
        if isinstance(event, ReviewEvent):
            return s.weight_review * ((event.rating / 5.0) if event.rating else 1.0)
        return s.weight_upload

    async def process(
        self, batch: Sequence[Incoming], *, defer: Callable[[Incoming], bool] | None = None
    ) -> list[Outcome]:
        """Apply a batch and compute one list per event (see the module docstring).

        Args:
            batch: Validated events with their Kafka positions.
            defer: For a click whose item is still unknown after the wait: True leaves it out
                (no outcome, state untouched; the caller re-queues it), False applies it without
                the item's embedding. None: never defer.
        """
        if not batch:
            return []
        uploads = [x.event for x in batch if isinstance(x.event, UploadEvent)]
        reviews = [x.event for x in batch if isinstance(x.event, ReviewEvent)]
        clicks = [x.event for x in batch if isinstance(x.event, ClickEvent)]
        items: list[ItemRecord] = []
        if uploads:
            items = await self.embed_uploads(uploads)
            t0 = time.perf_counter()
            await self.store.put_items(items)
            metrics.stage("cassandra_items").observe(time.perf_counter() - t0)
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
                batch = [x for x in batch if x.event.event_id not in held]
                clicks = [c for c in clicks if c.event_id not in held]
                if not batch:
                    return []

        per_user: dict[str, list[Contribution]] = defaultdict(list)
        for x in batch:
            ev = x.event
            if isinstance(ev, UploadEvent):
                vec = item_vec.get(ev.item_id)
            elif isinstance(ev, ReviewEvent):
                vec = review_vec.get(ev.event_id)
            else:
                vec = click_vec.get(ev.item_id)
            per_user[ev.user_id].append(
                Contribution(ev.event_id, ev.user_id, ev.item_id, ev.ts, vec, self._weight(ev), x.source)
            )

        async with self.user_locks.hold(per_user):
            return await self._apply(batch, per_user, {c.event_id for c in clicks})

    async def _apply(
        self, batch: Sequence[Incoming], per_user: dict[str, list[Contribution]], click_ids: set[str]
    ) -> list[Outcome]:
        # Read-modify-write of the users' states: the caller holds their locks.
        t0 = time.perf_counter()
        states = await self.store.get_users(list(per_user))
        metrics.stage("cassandra_read").observe(time.perf_counter() - t0)
        finals: list[UserState] = []
        steps_by_event: dict[str, tuple[UserState, bool, bool]] = {}
        for user, contribs in per_user.items():
            final, steps = apply_contributions(
                states.get(user),
                user,
                contribs,
                tau_s=self.tau_s,
                seen_max=self.settings.seen_items_max,
                model_version=self.model.version,
            )
            finals.append(final)
            for c, st, dup in steps:
                steps_by_event[c.event_id] = (st, dup, c.embedding is not None)
                if not dup and c.event_id in click_ids:
                    self.trending.add(c.item_id, c.ts)
        outcomes = self._lists(batch, steps_by_event)
        last: dict[str, Outcome] = {o.event.user_id: o for o in outcomes}
        lists = [
            StoredList(u, o.recs.to_json_bytes().decode(), o.recs.trigger_event_id, o.recs.generated_at)
            for u, o in last.items()
        ]
        # States and latest lists are independent writes: one round trip instead of two.
        await asyncio.gather(
            _timed("cassandra_write", self.store.put_users(finals)),
            _timed("cassandra_lists", self.store.put_lists(lists)),
        )
        return outcomes

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

    def _lists(
        self, batch: Sequence[Incoming], steps: dict[str, tuple[UserState, bool, bool]]
    ) -> list[Outcome]:
        t0 = time.perf_counter()
        k = self.settings.k
        now_ms = int(self.clock() * 1000)
        warm = [x for x in batch if steps[x.event.event_id][0].embedding is not None]
        cold = [x for x in batch if steps[x.event.event_id][0].embedding is None]
        ranked: dict[str, list[tuple[str, float]]] = {}
        if warm:
            queries = np.stack([steps[x.event.event_id][0].embedding for x in warm])  # type: ignore[misc]
            hits = self.index.search(queries, k, [set(steps[x.event.event_id][0].seen) for x in warm])
            ranked = {x.event.event_id: h for x, h in zip(warm, hits, strict=True)}
        for x in cold:
            ranked[x.event.event_id] = self.cold_start(k, set(steps[x.event.event_id][0].seen))
        metrics.stage("retrieval").observe(time.perf_counter() - t0)
        out = []
        for x in batch:
            _, dup, embedded = steps[x.event.event_id]
            recs = RecsUpdated(
                user_id=x.event.user_id,
                items=tuple(RecItem(item_id=i, score=round(s, 6)) for i, s in ranked[x.event.event_id]),
                trigger_event_id=x.event.event_id,
                model_version=self.model.version,
                generated_at=now_ms,
                schema_version=SCHEMA_VERSION,
            )
            out.append(Outcome(x.event, recs, dup, embedded))
        return out
