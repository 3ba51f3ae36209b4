"""A re-uploaded item reaches every worker: two workers, the real stack.

The worker that owns the uploader's partition embeds a re-upload and broadcasts it on the
compacted catalogue topic; the other worker must replace the item it already holds (title and
embedding), which the list it publishes for one of its own users then shows.
"""

from __future__ import annotations

import json
import time
import urllib.error
from collections.abc import Callable
from typing import Any

import pytest

from recstream.testing import Deployment, EventProducer, ListCollector, WorkerProcess

pytestmark = pytest.mark.integration
T0 = 1_700_000_000_000
USERS = [f"u{n}" for n in range(12)]


def _upload(i: int, title: str, eid: str) -> dict[str, Any]:
    return {
        "type": "upload",
        "event_id": eid,
        "user_id": "studio",
        "item_id": f"m{i}",
        "ts": T0 + i,
        "schema_version": 1,
        "title": title,
        "tags": ["Drama"],
    }


def _click(user: str, item: int, eid: str, n: int) -> dict[str, Any]:
    return {
        "type": "click",
        "event_id": eid,
        "user_id": user,
        "item_id": f"m{item}",
        "ts": T0 + 60_000 * (n + 1),
        "schema_version": 1,
    }


def _titles(worker: WorkerProcess, user: str) -> dict[str, str] | None:
    """Item id -> title in the list ``worker`` last published for ``user`` (None: not its user)."""
    try:
        doc = json.loads(worker.get(f"/api/users/{user}/list"))
    except urllib.error.HTTPError as err:
        assert err.code == 404
        return None
    return {it["item_id"]: it["title"] for it in doc["items"]}


def test_a_reupload_updates_the_item_on_every_worker(deployment_factory: Callable[[], Deployment]) -> None:
    dep = deployment_factory()
    workers = [dep.start_worker(), dep.start_worker()]
    s = dep.settings
    # Ready is not assigned: wait until each worker owns a partition of the click topic.
    deadline = time.monotonic() + 90
    owned: list[set[int]] = [set(), set()]
    while time.monotonic() < deadline and not all(owned):
        time.sleep(1)
        owned = [{p for t, p in w.lag() if t == s.topic_click} for w in workers]
    assert all(owned) and not owned[0] & owned[1], owned
    with EventProducer(s) as producer, ListCollector(s) as lists:
        for i in range(6):
            producer.send_doc("upload", "studio", _upload(i, f"Film {i}", f"up-{i}"))
        producer.flush(30)
        assert not lists.wait_for({f"up-{i}" for i in range(6)}, timeout_s=120)
        for n, user in enumerate(USERS):
            producer.send_doc("click", user, _click(user, 0, f"c1-{user}", n))
        producer.flush(30)
        assert not lists.wait_for({f"c1-{u}" for u in USERS}, timeout_s=120)

        uploader = next(w for w in workers if _titles(w, "studio") is not None)
        other = next(w for w in workers if w is not uploader)
        theirs = [u for u in USERS if _titles(other, u) is not None]
        assert theirs, "no user hashed to the other worker's partition"
        user = theirs[0]
        assert _titles(other, user) is not None and _titles(other, user).get("m1") == "Film 1"

        producer.send_doc("upload", "studio", _upload(1, "Film 1 (restored)", "up-1-again"))
        producer.flush(30)
        assert not lists.wait_for({"up-1-again"}, timeout_s=120)
        # The other worker follows the catalogue topic; its next list for its user shows the item
        # as re-uploaded (title and embedding are applied together).
        for attempt in range(20):
            producer.send_doc("click", user, _click(user, 0, f"c2-{user}-{attempt}", 100 + attempt))
            producer.flush(30)
            assert not lists.wait_for({f"c2-{user}-{attempt}"}, timeout_s=60)
            if (_titles(other, user) or {}).get("m1") == "Film 1 (restored)":
                break
        assert (_titles(other, user) or {}).get("m1") == "Film 1 (restored)", _titles(other, user)
