"""Every Prometheus metric recstream exports, defined once.

Names follow Prometheus conventions (base units, ``_total`` counters, ``_seconds``
histograms). Three names are a contract that dashboards build on and never change:
``recstream_events_total{type,outcome}``, ``recstream_dead_letters_total{reason}`` and
``recstream_freshness_seconds``. Hot paths take labelled children from the small caches below
instead of calling ``.labels()`` per event.
"""

from __future__ import annotations

from functools import lru_cache

from prometheus_client import Counter, Gauge, Histogram, Info

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

EVENTS = Counter(
    "recstream_events_total",
    "Events seen, by type and outcome (processed, dead_letter, duplicate, unknown_item: applied without "
    "the item's embedding, deferred: a click re-queued to the retry topic).",
    ["type", "outcome"],
)
DEAD_LETTERS = Counter(
    "recstream_dead_letters_total", "Events sent to the dead-letter topic, by reason.", ["reason"]
)
FRESHNESS = Histogram(
    "recstream_freshness_seconds",
    "Event timestamp to refreshed list published.",
    buckets=_LATENCY_BUCKETS,
)
STAGE_SECONDS = Histogram(
    "recstream_stage_seconds",
    "Latency of one pipeline stage for one batch.",
    ["stage"],
    buckets=_LATENCY_BUCKETS,
)
TRITON_SECONDS = Histogram(
    "recstream_triton_request_seconds",
    "Triton request latency, by model.",
    ["model"],
    buckets=_LATENCY_BUCKETS,
)
TRITON_ERRORS = Counter(
    "recstream_triton_errors_total", "Failed Triton requests, by model and kind.", ["model", "kind"]
)
TRITON_RETRIES = Counter("recstream_triton_retries_total", "Retried Triton requests, by model.", ["model"])
TRITON_CIRCUIT = Gauge(
    "recstream_triton_circuit_state",
    "Circuit breaker per model: 0 closed, 1 half-open, 2 open.",
    ["model"],
)
CONSUMER_LAG = Gauge(
    "recstream_consumer_lag", "Messages behind the log end, per partition.", ["topic", "partition"]
)
CASSANDRA_STATEMENTS = Counter(
    "recstream_cassandra_statements_total",
    "Requests sent to Cassandra, by kind (read, write, items); a write is one user's batch.",
    ["kind"],
)
COMMITS = Counter(
    "recstream_commits_total",
    "Input offset commits after a state flush, by outcome (ok, rejected: the group rebalanced).",
    ["outcome"],
)
GC_PAUSE = Histogram(
    "recstream_gc_pause_seconds",
    "Python garbage-collector pauses of the process, by generation (2: the oldest).",
    ["generation"],
    buckets=_LATENCY_BUCKETS,
)
STATE_USERS = Gauge("recstream_state_users", "User states held in memory for the owned partitions.")
STATE_DIRTY = Gauge("recstream_state_dirty_users", "User states changed since their last write.")
OFFSET_HOLES = Counter(
    "recstream_offset_holes_total",
    "Input offsets the consumer skipped, found before processing, by resolution (reread, empty, stalled).",
    ["resolution"],
)
CATALOG_ITEMS = Gauge("recstream_catalog_items", "Items in the retrieval catalogue.")
MODEL_INFO = Info("recstream_model", "Model version serving recommendations.")


@lru_cache(maxsize=64)
def events(event_type: str, outcome: str) -> Counter:
    """Cached child of ``recstream_events_total``."""
    return EVENTS.labels(type=event_type, outcome=outcome)


@lru_cache(maxsize=256)
def dead_letters(reason: str) -> Counter:
    """Cached child of ``recstream_dead_letters_total``."""
    return DEAD_LETTERS.labels(reason=reason)


@lru_cache(maxsize=32)
def stage(name: str) -> Histogram:
    """Cached child of ``recstream_stage_seconds``."""
    return STAGE_SECONDS.labels(stage=name)


@lru_cache(maxsize=32)
def triton_seconds(model: str) -> Histogram:
    """Cached child of ``recstream_triton_request_seconds``."""
    return TRITON_SECONDS.labels(model=model)


@lru_cache(maxsize=8)
def cassandra_statements(kind: str) -> Counter:
    """Cached child of ``recstream_cassandra_statements_total``."""
    return CASSANDRA_STATEMENTS.labels(kind=kind)


@lru_cache(maxsize=4)
def gc_pause(generation: int) -> Histogram:
    """Cached child of ``recstream_gc_pause_seconds`` for one collector generation."""
    return GC_PAUSE.labels(generation=str(generation))
