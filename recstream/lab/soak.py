"""Soak test: a real worker under a fixed offered rate for minutes, measured from outside.

:func:`run_soak` creates an isolated deployment (own topics, consumer group and keyspace) on
the configured stack, starts one ``recstream worker`` process, and sends MovieLens events at a
fixed rate, stamped with the wall clock as a live producer would. An independent consumer reads
every published list; freshness is list publish time (its Kafka timestamp) minus the event's
``ts``. The worker's RSS is sampled from ``/proc``; the lag is the consumer group's log end minus
committed offset (the worker's own gauge counts fetched, not processed, events).
Workers, isolated deployments, the producer and the list collector come from
:mod:`recstream.testing`; the pure helpers here are shared with the fault-injection tests in
``tests/chaos``.
"""

from __future__ import annotations

import itertools
import json
import math
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from recstream.settings import Settings
from recstream.testing import DeliveryError, Deployment, EventProducer, ListCollector, WorkerProcess
from schemas.events import Event


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by the nearest-rank method; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return float(ordered[rank - 1])


def replace_section(doc: str, name: str, body: str) -> str:
    """``doc`` with the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` replaced.

    The markers are appended (with ``body``) when the document lacks them.
    """
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in doc and end in doc:
        head, rest = doc.split(start, 1)
        return head + block + rest.split(end, 1)[1]
    return doc.rstrip() + "\n\n" + block + "\n"


# --- the soak run -------------------------------------------------------------------------


def live_messages(
    settings: Settings, events: Sequence[Event]
) -> Iterator[tuple[str, bytes, str, int, bytes]]:
    """``events`` over and over as ``(topic, key, event_id, ts, value)``, stamped when taken.

    ``ts`` is the wall clock at that moment (a live producer); pass ``k > 0`` suffixes event ids
    with ``~k`` so every event is new (items are uploaded again, replacing themselves).
    """
    base = [(settings.event_topics[e.type], e.kafka_key, json.loads(e.to_json_bytes())) for e in events]
    for k in itertools.count():
        for topic, key, doc in base:
            ts = int(time.time() * 1000)
            eid = f"{doc['event_id']}~{k}" if k else doc["event_id"]
            value = json.dumps({**doc, "event_id": eid, "ts": ts}, separators=(",", ":")).encode()
            yield topic, key, eid, ts, value


def window_rates(times: Sequence[float], start: float, end: float, width: float = 10.0) -> list[float]:
    """Events per second in consecutive ``width``-second windows of ``[start, end)``."""
    n = max(1, math.ceil((end - start) / width))
    counts = [0] * n
    for t in times:
        if start <= t < end:
            counts[min(n - 1, int((t - start) // width))] += 1
    return [c / width for c in counts]


def lag_zero_after(timeline: Sequence[Mapping[str, Any]], t_end: float) -> float | None:
    """Seconds from ``t_end`` to the first sample at or after it whose total lag is 0."""
    for row in timeline:
        if row["t"] >= t_end and row.get("lag") == 0:
            return float(row["t"] - t_end)
    return None


def window_p99(
    sent_ms: Mapping[str, int], listed_ms: Mapping[str, int], start: float, end: float, width: float = 10.0
) -> list[float]:
    """p99 freshness (ms) of the events sent in each ``width``-second window (NaN: none listed)."""
    n = max(1, math.ceil((end - start) / width))
    buckets: list[list[float]] = [[] for _ in range(n)]
    for eid, ts in sent_ms.items():
        if eid in listed_ms and start <= ts / 1000.0 < end:
            buckets[min(n - 1, int((ts / 1000.0 - start) // width))].append(listed_ms[eid] - ts)
    return [percentile(b, 99) for b in buckets]


def warmup_seconds(seconds: float) -> float:
    """The warm-up of a soak sending for ``seconds``: its first quarter, at most 2 minutes."""
    return min(120.0, seconds / 4)


def rss_growth(
    timeline: Sequence[Mapping[str, Any]], warmup_s: float, t_end: float, window_s: float = 30.0
) -> dict[str, float | None]:
    """Whether RSS stayed flat after the warm-up: medians of two windows of the RSS samples.

    ``after_warmup``: the first ``window_s`` after ``warmup_s``; ``end``: the last ``window_s``
    before ``t_end`` (windows shrink to half the span between, so they never overlap); both
    MiB. ``growth_after_warmup_pct``: the second over the first, in percent (None: no samples).
    """
    width = min(window_s, max(0.0, t_end - warmup_s) / 2)

    def median_mib(lo: float, hi: float) -> float | None:
        vals = sorted(r["rss_kib"] for r in timeline if lo <= r["t"] < hi and r.get("rss_kib"))
        return vals[len(vals) // 2] / 1024 if vals else None

    first = median_mib(warmup_s, warmup_s + width)
    last = median_mib(t_end - width, t_end)
    growth = None if first is None or last is None else (last - first) / first * 100
    return {
        "warmup_s": warmup_s,
        "after_warmup": None if first is None else round(first, 1),
        "end_of_sending": None if last is None else round(last, 1),
        "growth_after_warmup_pct": None if growth is None else round(growth, 2),
    }


@dataclass(frozen=True)
class SoakConfig:
    """What a soak run offers the worker."""

    rate: float = 200.0
    seconds: float = 600.0
    drain_timeout_s: float = 600.0
    sample_every_s: float = 1.0


class GroupLag:
    """Events not yet processed by a consumer group: log end minus committed offset, summed."""

    def __init__(self, settings: Settings) -> None:
        from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

        from streams.kafka_config import kafka_python_config

        cfg = kafka_python_config(settings)
        self.group = settings.consumer_group
        self.admin = KafkaAdminClient(**cfg)
        self.consumer = KafkaConsumer(group_id=None, **cfg)
        self.tps = [
            TopicPartition(t, p)
            for t in settings.event_topics.values()
            for p in sorted(self.consumer.partitions_for_topic(t) or ())
        ]

    def __call__(self) -> int | None:
        """The lag now, or None when Kafka does not answer."""
        try:
            committed = self.admin.list_group_offsets(self.group).get(self.group, {})
            ends = self.consumer.end_offsets(self.tps)
        except Exception:
            return None
        total = 0
        for tp in self.tps:
            c = committed.get(tp)
            total += max(0, ends[tp] - (c.offset if c is not None and c.offset >= 0 else 0))
        return total

    def close(self) -> None:
        """Release both clients."""
        self.admin.close()
        self.consumer.close()


def run_soak(
    deployment: Deployment, events: Sequence[Event], cfg: SoakConfig, progress: Any = print
) -> dict[str, Any]:
    """Offer ``cfg.rate`` events/s to one worker of ``deployment`` for ``cfg.seconds``; measure.

    Events are sent on a fixed schedule (event ``n`` at ``n / rate`` s, catching up after a
    hiccup); a sampler thread records sent and listed counts, RSS and group lag every
    ``cfg.sample_every_s``. After sending stops it waits until every event has a list and the
    lag is 0 (or ``cfg.drain_timeout_s``).

    Returns:
        The report (see ``docs/RELIABILITY.md``): rates, freshness, RSS, lag, timeline.
    """
    s = deployment.settings
    worker = deployment.start_worker()
    with ListCollector(s, keep="nothing") as lists:
        sent_ts, timeline, t0, t_end = _offer(worker, lists, events, cfg, progress)
    listed_ms = {t: a.timestamp_ms for t, a in lists.first.items()}  # first publish time per trigger
    fresh = [listed_ms[e] - ts for e, ts in sent_ts.items() if e in listed_ms]
    listed_at = [v / 1000.0 for v in listed_ms.values()]
    return {
        "offered_rate_per_s": cfg.rate,
        "seconds": round(t_end - t0, 1),
        "sent": len(sent_ts),
        "send_rate_per_s": round(len(sent_ts) / (t_end - t0), 1),
        "lists_distinct": len(listed_ms),
        "lists_total": lists.total,
        "missing": len(sent_ts) - len(listed_ms),
        "throughput_per_s": round(sum(t0 <= t < t_end for t in listed_at) / (t_end - t0), 1),
        "throughput_windows": window_rates(listed_at, t0, t_end),
        "freshness_ms": {
            q: percentile(fresh, p) for q, p in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))
        },
        "freshness_p99_windows_ms": window_p99(sent_ts, listed_ms, t0, t_end),
        "rss_mib": {
            "start": round(timeline[0]["rss_kib"] / 1024, 1),
            "end": round(timeline[-1]["rss_kib"] / 1024, 1),
            "peak": round(max(r["hwm_kib"] for r in timeline) / 1024, 1),
            **rss_growth(timeline, warmup_seconds(cfg.seconds), t_end - t0),
        },
        "lag": {
            "max": max((r["lag"] or 0) for r in timeline),
            "zero_after_s": lag_zero_after(timeline, t_end - t0),
        },
        "worker_alive": worker.alive,
        "timeline": timeline,
    }


def _offer(
    worker: WorkerProcess, lists: ListCollector, events: Sequence[Event], cfg: SoakConfig, progress: Any
) -> tuple[dict[str, int], list[dict[str, Any]], float, float]:
    """Send at ``cfg.rate`` for ``cfg.seconds`` while sampling, then wait for the lists and lag 0.

    Returns:
        ``ts`` per event id sent, the timeline of samples, the start and the end of sending.
    """
    s = lists.settings
    lag = GroupLag(s)
    sent_ts: dict[str, int] = {}
    timeline: list[dict[str, Any]] = []
    t0 = time.time()
    stop = threading.Event()

    def sampler() -> None:
        while not stop.wait(cfg.sample_every_s):
            rss, hwm = worker.rss_kib()
            timeline.append(
                {"t": round(time.time() - t0, 2), "sent": len(sent_ts), "listed": len(lists),
                 "rss_kib": rss, "hwm_kib": hwm, "lag": lag()}
            )  # fmt: skip
            if len(timeline) % 60 == 0:
                progress(f"[soak] {timeline[-1]['t']:.0f} s: sent {len(sent_ts):,}, listed {len(lists):,}")

    thread = threading.Thread(target=sampler, daemon=True, name="soak-sampler")
    thread.start()
    producer = EventProducer(s)
    for n, (topic, key, eid, ts, value) in enumerate(live_messages(s, events)):
        due = t0 + n / cfg.rate
        if due >= t0 + cfg.seconds:
            break
        if (wait := due - time.time()) > 0:
            time.sleep(wait)
        producer.send_raw(topic, key, value)
        sent_ts[eid] = ts
    producer.flush(120)
    try:
        producer.close()
    except DeliveryError as exc:  # the report counts the events without a list
        progress(f"[soak] {exc}")
    t_end = time.time()
    deadline = t_end + cfg.drain_timeout_s
    while time.time() < deadline and not (
        len(lists) >= len(sent_ts)
        and timeline
        and timeline[-1]["t"] > t_end - t0
        and timeline[-1]["lag"] == 0
    ):
        time.sleep(0.5)
    stop.set()
    thread.join(10)
    lag.close()
    return sent_ts, timeline, t0, t_end
