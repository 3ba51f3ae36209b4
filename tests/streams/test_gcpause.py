"""Garbage-collector pauses: the start-up heap is frozen, every collection is timed."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from recstream import metrics
from streams import gcpause


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # other tests run in this process: leave the collector as it was


def _count(generation: int) -> float:
    for fam in metrics.GC_PAUSE.collect():
        for s in fam.samples:
            if s.name.endswith("_count") and s.labels.get("generation") == str(generation):
                return s.value
    return 0.0


def test_collections_are_timed_by_generation() -> None:
    gcpause.observe_pauses()
    gcpause.observe_pauses()  # idempotent: one callback
    assert gc.callbacks.count(gcpause._on_gc) == 1
    before = _count(2)
    gc.collect(2)
    assert _count(2) == before + 1


def test_freeze_exempts_the_start_up_heap(unfrozen: None) -> None:
    kept = [object() for _ in range(1000)]
    frozen = gcpause.freeze_startup_heap()
    assert frozen == gc.get_freeze_count() and frozen > len(kept)
