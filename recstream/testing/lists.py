"""The ``recs.updated`` collector, and a reader of any topic from its beginning.

:class:`ListCollector` reads a deployment's list topic with no consumer group, from the
beginning (``start="earliest"``: every list, whenever the caller subscribes) or from the end
(``start="latest"``: only lists published after it is entered; it fetches once on entry so the
position is fixed then). It decodes each list once, indexes it by trigger event id (the first
copy of a redelivered list stands) and by user (the latest), counts lists per trigger, and waits
until a set of trigger ids has arrived, or a condition holds, or a timeout.

It runs in one of two ways, with the same index and waits: ``with`` reads with kafka-python in a
background thread (tests, soak, scripts); ``async with`` reads with aiokafka in a task of the
running event loop (benchmarks, pipeline evaluation), whose code awaits
:meth:`ListCollector.wait_for_async` (or runs the blocking waits in a thread).
:func:`read_topic` reads raw records of any topics (dead letters, inputs) until a condition
holds.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self, TypedDict, Unpack

from recstream.settings import Settings
from schemas.events import RecsUpdated

Start = Literal["earliest", "latest"]
#: What a collector keeps of each list besides its trigger, user, version and times.
Keep = Literal["bytes", "items", "nothing"]


class GiveUp(TypedDict, total=False):
    """When a wait gives up before its timeout (see :meth:`ListCollector.wait_until`)."""

    idle_s: float | None
    alive: Callable[[], bool] | None


@dataclass(frozen=True, slots=True)
class Arrival:
    """One list as read.

    Attributes:
        trigger: Its ``trigger_event_id`` (for a message that is not a list, its key).
        user_id: The user it is for.
        model_version: The fusion model version that computed it.
        items: Its item ids in order (empty when the collector keeps ``"nothing"``).
        timestamp_ms: Its Kafka timestamp (publish time, epoch ms).
        received: ``time.perf_counter()`` when the collector read it.
        value: Its bytes (empty unless the collector keeps ``"bytes"``).
    """

    trigger: str
    user_id: str
    model_version: str
    items: tuple[str, ...]
    timestamp_ms: int
    received: float
    value: bytes = b""

    def recs(self) -> RecsUpdated:
        """The list as the schema's model (needs a collector that keeps ``"bytes"``)."""
        return RecsUpdated.from_json_bytes(self.value)


def decode_list(
    key: bytes | None, value: bytes, timestamp_ms: int, received: float, keep: Keep = "bytes"
) -> Arrival:
    """An :class:`Arrival` from a message (lenient: a copy of an event is keyed by its id)."""
    try:
        doc = json.loads(value)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        doc = {}
    trigger = doc.get("trigger_event_id") or (key or b"").decode(errors="replace")
    items = doc.get("items") if keep != "nothing" else None
    return Arrival(
        trigger=str(trigger),
        user_id=str(doc.get("user_id", "")),
        model_version=str(doc.get("model_version", "")),
        items=tuple(str(it["item_id"]) for it in items or () if isinstance(it, dict) and "item_id" in it),
        timestamp_ms=timestamp_ms,
        received=received,
        value=value if keep == "bytes" else b"",
    )


def _consumer(settings: Settings, topics: Sequence[str], start: Start) -> Any:
    """A kafka-python consumer of ``topics`` with no group, from ``start``."""
    from kafka import KafkaConsumer

    from streams.kafka_config import kafka_python_config

    return KafkaConsumer(
        *topics,
        auto_offset_reset=start,
        enable_auto_commit=False,
        group_id=None,
        **kafka_python_config(settings),
    )


class ListCollector:
    """Collects the lists of a deployment's ``recs.updated`` topic (see the module docstring).

    Attributes:
        first: The first list read per trigger event id, in order of arrival.
        latest_by_user: The latest list read per user.
        counts: Lists read per trigger (a redelivered event publishes its list again).
        total: Lists read.
        model_versions: Every model version seen on a list.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        topic: str | None = None,
        start: Start = "earliest",
        keep: Keep = "bytes",
        poll_ms: int = 300,
        on_arrival: Callable[[Arrival], None] | None = None,
    ) -> None:
        """Prepare a collector (it reads once entered).

        Args:
            settings: The deployment's Kafka settings and list topic.
            topic: Another topic of lists (or of copies of events, keyed by event id).
            start: Where reading starts: the topic's beginning or its end at entry.
            keep: What to keep of each list: its bytes and items, its items, or neither (a
                soak's 300,000 lists).
            poll_ms: Longest poll of the ``with`` thread (how soon it notices leaving).
            on_arrival: Called with each list read, after it is indexed (in the reading thread
                or task; a live view, for example).
        """
        self.settings = settings
        self.topic = topic or settings.topic_recs
        self.start = start
        self.keep = keep
        self.poll_ms = poll_ms
        self.on_arrival = on_arrival
        self.first: dict[str, Arrival] = {}
        self.latest_by_user: dict[str, Arrival] = {}
        self.counts: Counter[str] = Counter()
        self.total = 0
        self.model_versions: set[str] = set()
        self._order: list[str] = []  # triggers in order of first arrival
        self._cond = threading.Condition()
        self._last = time.monotonic()
        self._error: BaseException | None = None
        self._loop_thread: int | None = None
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self._aio: Any = None

    def __contains__(self, trigger: object) -> bool:
        return trigger in self.first

    def __getitem__(self, trigger: str) -> Arrival:
        return self.first[trigger]

    def __len__(self) -> int:
        """Distinct triggers with a list."""
        return len(self.first)

    def missing(self, ids: Iterable[str]) -> set[str]:
        """The ids among ``ids`` without a list yet."""
        return {i for i in ids if i not in self.first}

    def _take(self, batches: dict[Any, list[Any]]) -> None:
        """Index a poll's records (one lock, one wake-up per poll)."""
        now = time.perf_counter()
        got = [
            decode_list(r.key, r.value, r.timestamp, now, self.keep)
            for records in batches.values()
            for r in records
            if r.value is not None
        ]
        if not got:
            return
        with self._cond:
            for a in got:
                self.total += 1
                self.counts[a.trigger] += 1
                self.model_versions.add(a.model_version)
                self.latest_by_user[a.user_id] = a
                if a.trigger not in self.first:
                    self.first[a.trigger] = a
                    self._order.append(a.trigger)
            self._last = time.monotonic()
            self._cond.notify_all()
        if self.on_arrival is not None:
            for a in got:
                self.on_arrival(a)

    def _failed(self, exc: BaseException) -> None:
        with self._cond:
            self._error = exc
            self._cond.notify_all()

    # --- waiting ----------------------------------------------------------------------------

    def wait_until(
        self, done: Callable[[], bool], timeout_s: float = 120.0, **give_up: Unpack[GiveUp]
    ) -> bool:
        """Block until ``done()`` (checked whenever lists arrive); False when it gave up first.

        Gives up after ``timeout_s``, after ``idle_s`` without a new list (a lost event never
        gets one), or once ``alive()`` is False (the process publishing the lists has exited).

        Raises:
            RuntimeError: The collector's reader failed, or this is the event loop it reads in
                (there, await :meth:`wait_for_async`, or this in a thread).
        """
        idle_s, alive = give_up.get("idle_s"), give_up.get("alive")
        if self._loop_thread == threading.get_ident():
            raise RuntimeError("ListCollector: in its event loop, await wait_for_async or wait in a thread")
        deadline = time.monotonic() + timeout_s
        since = time.monotonic()
        with self._cond:
            while not done():
                if self._error is not None:
                    raise RuntimeError(f"reading {self.topic} failed: {self._error!r}") from self._error
                now = time.monotonic()
                idle = idle_s is not None and now - max(since, self._last) > idle_s
                if now >= deadline or idle or (alive is not None and not alive()):
                    return False
                self._cond.wait(min(deadline - now, 0.25))
        return True

    def wait_for(self, ids: Iterable[str], timeout_s: float = 120.0, **give_up: Unpack[GiveUp]) -> set[str]:
        """Block until every id in ``ids`` has a list (see :meth:`wait_until`); the ids still missing."""
        missing: set[str] | None = None
        seen = 0

        def done() -> bool:
            nonlocal missing, seen
            if missing is None:
                missing = self.missing(ids)
            else:
                missing.difference_update(self._order[seen:])
            seen = len(self._order)
            return not missing

        self.wait_until(done, timeout_s, **give_up)
        return missing or set()

    async def wait_for_async(
        self, ids: Iterable[str], timeout_s: float = 120.0, **give_up: Unpack[GiveUp]
    ) -> set[str]:
        """:meth:`wait_for` without blocking the event loop (it waits in a thread)."""
        ids = list(ids)
        if all(i in self.first for i in ids):
            return set()
        return await asyncio.to_thread(self.wait_for, ids, timeout_s, **give_up)

    # --- with: kafka-python in a thread -----------------------------------------------------

    def __enter__(self) -> Self:
        consumer = _consumer(self.settings, [self.topic], self.start)
        if self.start == "latest":  # the position is resolved at the first fetch: fetch now
            self._take(consumer.poll(timeout_ms=1000))
        self._thread = threading.Thread(
            target=self._run, args=(consumer,), daemon=True, name="list-collector"
        )
        self._thread.start()
        return self

    def _run(self, consumer: Any) -> None:
        try:
            while not self._halt.is_set():
                self._take(consumer.poll(timeout_ms=self.poll_ms, max_records=5000))
        except BaseException as exc:  # surfaced by the waits
            self._failed(exc)
        finally:
            consumer.close()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(self.poll_ms / 1000 + 10)

    # --- async with: aiokafka in a task of the running loop ---------------------------------

    async def __aenter__(self) -> Self:
        from aiokafka import AIOKafkaConsumer

        from streams.kafka_config import aiokafka_config

        self._aio = AIOKafkaConsumer(
            self.topic,
            group_id=None,
            auto_offset_reset=self.start,
            enable_auto_commit=False,
            **aiokafka_config(self.settings),
        )
        await self._aio.start()
        self._loop_thread = threading.get_ident()
        if self.start == "latest":  # the position is resolved at the first fetch: fetch now
            self._take(await self._aio.getmany(timeout_ms=200))
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        try:
            while True:
                self._take(await self._aio.getmany(timeout_ms=1000))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # surfaced by the waits
            self._failed(exc)

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._aio.stop()


@dataclass(frozen=True, slots=True)
class Record:
    """A message read back from a topic."""

    key: bytes | None
    value: bytes
    timestamp_ms: int
    partition: int
    offset: int
    topic: str = ""


def read_topic(
    settings: Settings,
    topics: str | Sequence[str],
    until: Callable[[list[Record]], bool],
    timeout_s: float = 300.0,
) -> list[Record]:
    """Read topics from the beginning (no consumer group) until ``until(records)`` or timeout."""
    names = [topics] if isinstance(topics, str) else list(topics)
    consumer = _consumer(settings, names, "earliest")
    got: list[Record] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not until(got):
            for recs in consumer.poll(timeout_ms=500, max_records=5000).values():
                got.extend(Record(r.key, r.value, r.timestamp, r.partition, r.offset, r.topic) for r in recs)
    finally:
        consumer.close()
    return got
