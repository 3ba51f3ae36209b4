"""Replay a MovieLens folder as contract events, to Kafka or to a JSONL file.

:func:`movielens_events` is a pure generator over a loaded dataset: interactions in timestamp
order (ties keep file order, see :mod:`recstream.lab.datasets`), each movie's upload emitted just
before its first interaction. :func:`replay` drives any :class:`EventSink` (Kafka or JSONL),
optionally paced by a :class:`Pacer` (a token bucket for ``--rate``, event time divided by
``--speedup``).
"""

from __future__ import annotations

import sys
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol, Self

from pydantic import ValidationError

from recstream.lab.datasets import Interaction, Movie, MovieLens
from recstream.settings import Settings
from recstream.testing import DeliveryError, EventProducer
from schemas.events import (
    SCHEMA_VERSION,
    ClickEvent,
    Event,
    ReviewEvent,
    UploadEvent,
    validation_problem,
)
from streams.errors import StreamError

#: ``user_id`` of catalogue uploads made by the replay.
CATALOGUE_USER = "movielens"


class ReplayError(StreamError):
    """The replay could not build an event or deliver it (message says which and why)."""


def _upload(movie: Movie, ts_ms: int) -> UploadEvent:
    return UploadEvent(
        type="upload",
        schema_version=SCHEMA_VERSION,
        event_id=f"ml-upload-{movie.movie_id}",
        user_id=CATALOGUE_USER,
        item_id=str(movie.movie_id),
        ts=ts_ms,
        title=movie.title or f"movie {movie.movie_id}",
        tags=movie.genres or None,
        features={"visual": movie.visual} if movie.visual else None,
    )


def _interaction(i: Interaction) -> ClickEvent | ReviewEvent:
    user, item, ts = str(i.user_id), str(i.movie_id), i.ts * 1000
    if i.kind == "tag":
        return ReviewEvent(
            type="review",
            schema_version=SCHEMA_VERSION,
            event_id=f"ml-review-{i.order}",
            user_id=user,
            item_id=item,
            ts=ts,
            text=i.text,
        )
    weight = i.value if i.value > 0 else None
    return ClickEvent(
        type="click",
        schema_version=SCHEMA_VERSION,
        event_id=f"ml-click-{i.order}",
        user_id=user,
        item_id=item,
        ts=ts,
        weight=weight,
    )


def movielens_events(ml: MovieLens) -> Iterator[Event]:
    """Turn a loaded MovieLens dataset into events, in time order.

    Ratings become clicks (``weight`` = stars), tags become reviews (``text`` = tag), and each
    movie becomes an upload by user ``"movielens"`` emitted immediately before its first
    interaction, with the same ``ts``. Timestamps are converted to milliseconds.

    Args:
        ml: Dataset from :func:`recstream.lab.datasets.load_movielens`.

    Yields:
        Validated event records.

    Raises:
        ReplayError: A row cannot form a valid event (e.g. a title over the default limit).
    """
    uploaded: set[int] = set()
    for inter in ml.interactions:
        try:
            if inter.movie_id not in uploaded:
                uploaded.add(inter.movie_id)
                yield _upload(ml.movies[inter.movie_id], inter.ts * 1000)
            yield _interaction(inter)
        except ValidationError as exc:
            reason, detail = validation_problem(exc)
            raise ReplayError(
                f"interaction #{inter.order} (user {inter.user_id}, movie {inter.movie_id}): "
                f"{reason}: {detail}"
            ) from None


def count_movielens_events(ml: MovieLens) -> int:
    """How many events :func:`movielens_events` yields (for a progress bar's total)."""
    return len(ml.interactions) + len({i.movie_id for i in ml.interactions})


class Pacer:
    """Paces a replay: ``rate`` events per second (token bucket) and/or event time / ``speedup``.

    With both, each event waits for the later of the two. ``clock`` and ``sleep`` are injectable
    so tests run instantly.
    """

    def __init__(
        self,
        *,
        rate: float | None = None,
        speedup: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Create a pacer.

        Args:
            rate: Events per second, > 0 (None: unlimited). Bursts of up to a tenth of a
                second's worth of events are allowed, so high rates do not sleep per event.
            speedup: Replay this many times faster than event time, > 0 (None: ignore time).
            clock: Monotonic clock in seconds.
            sleep: Sleep function.
        """
        if rate is not None and not rate > 0:
            raise ValueError("rate must be > 0")
        if speedup is not None and not speedup > 0:
            raise ValueError("speedup must be > 0")
        self._rate = rate
        self._speedup = speedup
        self._clock = clock
        self._sleep = sleep
        self._capacity = max(1.0, (rate or 0.0) / 10)
        self._tokens = self._capacity
        self._last = clock()
        self._origin: tuple[float, int] | None = None  # (wall start, first event ts_ms)

    def wait(self, ts_ms: int) -> None:
        """Block until the event stamped ``ts_ms`` may be sent."""
        if self._speedup is not None:
            if self._origin is None:
                self._origin = (self._clock(), ts_ms)
            start, first = self._origin
            delay = start + (ts_ms - first) / 1000.0 / self._speedup - self._clock()
            if delay > 0:
                self._sleep(delay)
        if self._rate is not None:
            now = self._clock()
            self._tokens = min(self._capacity, self._tokens + (now - self._last) * self._rate)
            self._last = now
            if self._tokens < 1.0:
                self._sleep((1.0 - self._tokens) / self._rate)
                self._last = self._clock()
                self._tokens = 1.0
            self._tokens -= 1.0


class EventSink(Protocol):
    """Where replayed events go."""

    def send(self, event: Event) -> None:
        """Queue one event."""

    def close(self) -> None:
        """Deliver everything queued and release resources."""


class _SinkBase(ABC):
    @abstractmethod
    def send(self, event: Event) -> None:
        """Queue one event."""

    @abstractmethod
    def close(self) -> None:
        """Deliver everything queued and release resources."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class JsonlSink(_SinkBase):
    """Writes events as JSON lines to a file (``"-"`` is standard output); no Kafka needed."""

    def __init__(self, path: str | Path, *, stdout: IO[bytes] | None = None) -> None:
        """Open ``path`` for writing (``stdout`` is used when ``path`` is ``"-"``)."""
        self._owned = str(path) != "-"
        if self._owned:
            self._fh: IO[bytes] = open(path, "wb")  # noqa: SIM115 - closed in close()
        else:
            self._fh = stdout or sys.stdout.buffer

    def send(self, event: Event) -> None:
        """Write one event line."""
        self._fh.write(event.to_json_bytes() + b"\n")

    def close(self) -> None:
        """Flush, and close the file if this sink opened it."""
        self._fh.flush()
        if self._owned:
            self._fh.close()


class KafkaEventSink(_SinkBase):
    """Sends each event's JSON to the topic of its type, keyed by ``user_id``.

    An :class:`~recstream.testing.EventProducer` with the client's defaults: ``acks="all"`` and
    its idempotence keep per-partition order through retries; ``linger_ms`` batches sends.
    Delivery failures are counted and raised at :meth:`close`, after a final flush.
    """

    def __init__(self, settings: Settings, *, linger_ms: int = 20, producer: Any | None = None) -> None:
        """Connect to Kafka.

        Args:
            settings: Bootstrap servers, security and topic names.
            linger_ms: How long the client waits to fill a batch.
            producer: A ready producer with kafka-python's ``send/flush/close`` (tests).

        Raises:
            ReplayError: No broker could be reached.
        """
        from kafka.errors import KafkaError

        try:
            self._producer = EventProducer(settings, linger_ms=linger_ms, durable=False, client=producer)
        except KafkaError as exc:
            raise ReplayError(f"cannot connect to Kafka: {exc}") from exc

    def send(self, event: Event) -> None:
        """Queue one event on the topic of its type."""
        self._producer.send(event)

    def close(self) -> None:
        """Flush, close the producer, and raise if any event was not delivered.

        Raises:
            ReplayError: Some sends failed.
        """
        try:
            self._producer.close()
        except DeliveryError as exc:
            raise ReplayError(str(exc)) from exc


@dataclass(slots=True)
class ReplayStats:
    """What a replay sent: events per type and elapsed wall time."""

    counts: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        """Events sent."""
        return sum(self.counts.values())


def replay(
    events: Iterable[Event],
    sink: EventSink,
    *,
    pacer: Pacer | None = None,
    limit: int | None = None,
    progress: Callable[[int], object] | None = None,
) -> ReplayStats:
    """Send events to a sink, paced, and count them.

    Args:
        events: Events in the order to send.
        sink: Destination (the caller closes it).
        pacer: Optional pacing.
        limit: Stop after this many events.
        progress: Called with 1 after each event (e.g. ``tqdm.update``).

    Returns:
        Counts per type and elapsed seconds.
    """
    stats = ReplayStats()
    t0 = time.perf_counter()
    for n, event in enumerate(events):
        if limit is not None and n >= limit:
            break
        if pacer is not None:
            pacer.wait(event.ts)
        sink.send(event)
        stats.counts[event.type] += 1
        if progress is not None:
            progress(1)
    stats.seconds = time.perf_counter() - t0
    return stats
