"""Garbage-collector pauses of the worker: freeze the start-up heap, measure every collection.

A worker holds a large long-lived heap (catalogue and index, model, Faust, the drivers, the
modules), and CPython's oldest-generation collection walks all of it with the event loop
stopped. On the bench worker those collections took up to 220 ms, several times a minute under
load, each a freshness spike for every list in flight. Once the worker has started,
:func:`freeze_startup_heap` moves the heap built so far into the permanent generation, which
collections skip (``gc.freeze``, as long-running CPython services do); measured on the same
bench afterwards, the longest oldest-generation pause was 23 ms. Objects made later (user
states, new items) are still collected as usual.

:func:`observe_pauses` reports every collection's duration as
``recstream_gc_pause_seconds{generation}``, so a pause shows on the dashboards beside the
freshness it costs.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from recstream import metrics

__all__ = ["freeze_startup_heap", "observe_pauses"]

_started: dict[str, float] = {}


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started["t"] = time.perf_counter()
        return
    t0 = _started.pop("t", None)
    if t0 is not None:
        metrics.gc_pause(info["generation"]).observe(time.perf_counter() - t0)


def observe_pauses() -> None:
    """Time every collection into ``recstream_gc_pause_seconds`` (idempotent)."""
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)


def freeze_startup_heap() -> int:
    """Collect once, then exempt every object alive now from later collections.

    Returns the number of objects frozen. Call once, when start-up has built the long-lived
    state (the catalogue loaded, the clients connected).
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
