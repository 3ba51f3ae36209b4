"""The JSON documents behind the ops page, built from the worker's own state.

Throughput comes from ``recstream_events_total`` and dead letters from
``recstream_dead_letters_total`` (read from the Prometheus client objects in this process, not
by parsing the exposition text), lag from ``recstream_consumer_lag``, freshness percentiles from
the window fed by :func:`streams.latest.record_published`. The builders are pure functions of
their inputs; :class:`OpsState` holds the windows between requests.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.metrics import MetricWrapperBase

from recstream import metrics
from recstream.settings import Settings
from streams.latest import FRESHNESS, LatestList
from streams.window import WINDOW_S, RateWindow, SampleWindow


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample of a metric: its name, labels and value."""

    name: str
    labels: Mapping[str, str]
    value: float


def collect(metric: MetricWrapperBase) -> list[Sample]:
    """Current samples of a ``prometheus_client`` metric of this process."""
    return [Sample(s.name, dict(s.labels), float(s.value)) for fam in metric.collect() for s in fam.samples]


def counter_total(samples: Iterable[Sample], name: str) -> float:
    """Sum of the samples called ``name`` (e.g. ``recstream_events_total`` over all labels)."""
    return sum(s.value for s in samples if s.name == name)


def by_label(samples: Iterable[Sample], name: str, label: str) -> dict[str, float]:
    """Values of the samples called ``name``, summed per value of ``label``."""
    out: dict[str, float] = {}
    for s in samples:
        if s.name == name:
            key = s.labels.get(label, "")
            out[key] = out.get(key, 0.0) + s.value
    return out


def lag_rows(samples: Iterable[Sample]) -> list[dict[str, Any]]:
    """``recstream_consumer_lag`` as rows ``{topic, partition, lag}``, sorted."""
    rows = [
        {"topic": s.labels["topic"], "partition": int(s.labels["partition"]), "lag": int(s.value)}
        for s in samples
        if s.name == "recstream_consumer_lag"
    ]
    return sorted(rows, key=lambda r: (r["topic"], r["partition"]))


def worker_info(settings: Settings) -> dict[str, Any]:
    """The settings the page shows: an explicit allow-list, so no secret can reach the page."""
    return {
        "consumer_group": settings.consumer_group,
        "topics": dict(settings.event_topics),
        "topic_recs": settings.topic_recs,
        "k": settings.k,
    }


def build_summary(
    *,
    now: float,
    events: RateWindow,
    freshness: SampleWindow,
    events_by_outcome: Mapping[str, float],
    dead_letters: Mapping[str, float],
    lag: list[dict[str, Any]],
    catalog_items: int,
    model_version: str,
    info: Mapping[str, Any],
) -> dict[str, Any]:
    """The ``/api/ops/summary`` document.

    Args:
        now: Monotonic time of the request.
        events: Snapshots of ``recstream_events_total`` (already fed up to ``now``).
        freshness: Freshness samples in seconds.
        events_by_outcome: Events since start per outcome.
        dead_letters: Dead letters since start per reason.
        lag: Consumer lag rows (see :func:`lag_rows`).
        catalog_items: Items in the retrieval catalogue.
        model_version: Served model version ("" before the runtime is up).
        info: Worker facts (see :func:`worker_info`).
    """
    fresh = freshness.values(now)
    return {
        "window_s": events.window_s,
        "throughput": {
            "events_per_s": round(events.rate(now), 3),
            "events_in_window": int(events.increase(now)),
            "events_total": int(events.total),
            "by_outcome": {k: int(v) for k, v in sorted(events_by_outcome.items())},
        },
        "freshness": {"count": len(fresh), **freshness.percentiles(now)},
        "lag": lag,
        "lag_total": sum(r["lag"] for r in lag),
        "dead_letters": [{"reason": r, "total": int(v)} for r, v in sorted(dead_letters.items())],
        "dead_letters_total": int(sum(dead_letters.values())),
        "catalog_items": catalog_items,
        "model_version": model_version,
        "worker": dict(info),
    }


def list_document(latest: LatestList, titles: Mapping[str, str]) -> dict[str, Any]:
    """The ``/api/users/<user_id>/list`` document: a latest list with item titles."""
    return {
        "user_id": latest.user_id,
        "trigger_event_id": latest.trigger_event_id,
        "event_type": latest.event_type,
        "model_version": latest.model_version,
        "generated_at": latest.generated_at,
        "published_at_ms": int(latest.published_at * 1000),
        "items": [
            {"rank": n, "item_id": item, "title": titles.get(item, ""), "score": score}
            for n, (item, score) in enumerate(latest.items, start=1)
        ],
    }


@dataclass
class OpsState:
    """Windows the ops endpoints read, kept between requests.

    Attributes:
        events: Snapshots of ``recstream_events_total``, fed by :meth:`sample`.
        freshness: Freshness samples (the runtime hook fills the process-wide window).
        started: Monotonic start time.
    """

    events: RateWindow = field(default_factory=lambda: RateWindow(WINDOW_S))
    freshness: SampleWindow = field(default_factory=lambda: FRESHNESS)
    started: float = field(default_factory=time.monotonic)

    def sample(self, now: float | None = None) -> float:
        """Snapshot the events counter; returns the time used."""
        t = time.monotonic() if now is None else now
        self.events.add(t, counter_total(collect(metrics.EVENTS), "recstream_events_total"))
        return t

    def summary(
        self, info: Mapping[str, Any], catalog_items: int, model_version: str, now: float | None = None
    ) -> dict[str, Any]:
        """Sample the counters of this process and build the summary document."""
        now = self.sample(now)
        events = collect(metrics.EVENTS)
        return build_summary(
            now=now,
            events=self.events,
            freshness=self.freshness,
            events_by_outcome=by_label(events, "recstream_events_total", "outcome"),
            dead_letters=by_label(collect(metrics.DEAD_LETTERS), "recstream_dead_letters_total", "reason"),
            lag=lag_rows(collect(metrics.CONSUMER_LAG)),
            catalog_items=catalog_items,
            model_version=model_version,
            info={**info, "uptime_s": round(now - self.started, 1)},
        )
