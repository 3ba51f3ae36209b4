"""The latest-list store and the runtime's publish hook (pure)."""

from __future__ import annotations

import pytest

from schemas.events import ClickEvent
from streams.latest import LatestList, LatestLists, record_published
from streams.lists import list_payload
from streams.processor import Outcome
from streams.window import SampleWindow


def _latest(user: str, trigger: str = "e1") -> LatestList:
    return LatestList(user, (("m1", 0.9),), trigger, "click", "v1", 1, 1.0)


def _outcome(user: str, event_id: str, ts_ms: int, items: list[str]) -> Outcome:
    ev = ClickEvent(type="click", event_id=event_id, user_id=user, item_id="x", ts=ts_ms, schema_version=1)
    ranked = tuple((i, 1.0 - n / 10) for n, i in enumerate(items))
    payload = list_payload(user, ranked, event_id, "fusion-v0", ts_ms + 5, 1)
    return Outcome(ev, ranked, payload, ts_ms + 5, duplicate=False, embedded=True)


def test_lru_evicts_the_user_published_longest_ago() -> None:
    store = LatestLists(max_users=2)
    store.put(_latest("a"))
    store.put(_latest("b"))
    store.put(_latest("a", "e2"))  # a is the most recent again
    store.put(_latest("c"))
    assert store.get("b") is None and len(store) == 2
    assert store.get("a") == _latest("a", "e2") and store.get("c") is not None


def test_store_needs_room() -> None:
    with pytest.raises(ValueError):
        LatestLists(max_users=0)


def test_hook_keeps_each_users_last_list_and_every_freshness() -> None:
    lists, fresh = LatestLists(), SampleWindow()
    published = 1_700_000_010.0
    batch = [
        _outcome("ann", "e1", 1_700_000_000_000, ["m1", "m2"]),
        _outcome("bob", "e2", 1_700_000_009_000, ["m3"]),
        _outcome("ann", "e3", 1_700_000_009_500, ["m2", "m4"]),
        _outcome("bob", "e4", 1_700_000_020_000, ["m5"]),  # clock skew: event "after" publish
    ]
    record_published(batch, published, model_version="fusion-v0", lists=lists, freshness=fresh, now=100.0)
    ann = lists.get("ann")
    assert ann is not None and ann.trigger_event_id == "e3"
    assert ann.items == (("m2", 1.0), ("m4", 0.9)) and ann.event_type == "click"
    assert ann.model_version == "fusion-v0" and ann.generated_at == 1_700_000_009_505
    assert ann.published_at == published
    assert lists.get("bob") is not None and lists.get("bob").trigger_event_id == "e4"  # type: ignore[union-attr]
    assert fresh.values(100.0) == pytest.approx([10.0, 1.0, 0.5, 0.0])
