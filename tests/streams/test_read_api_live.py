"""The read API and the list ordering rule on a real worker (Kafka, Cassandra, Triton).

``GET /v1/users/{id}/recommendations`` must answer the last list published for the user; the
lists' ``seq`` must let a consumer drop duplicates and stale lists (schemas/ordering.py), shown
by replaying the published lists out of order and twice.
"""

from __future__ import annotations

import itertools
import json
import random
import urllib.error
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
import yaml

from recstream.testing import Deployment, EventProducer, read_topic
from schemas.events import RecsUpdated
from schemas.ordering import LatestLists
from schemas.registry import SCHEMA_DIR

pytestmark = pytest.mark.integration
T0 = 1_700_000_000_000
USERS = ("ann", "bob", "cy/2")  # an id with "/" goes through the path too


def _upload(i: int) -> dict[str, Any]:
    return {
        "type": "upload",
        "event_id": f"up-{i}",
        "user_id": "studio",
        "item_id": f"m{i}",
        "ts": T0 + i,
        "schema_version": 1,
        "title": f"Film {i}",
    }


def _click(n: int, user: str) -> dict[str, Any]:
    return {
        "type": "click",
        "event_id": f"c-{user}-{n}",
        "user_id": user,
        "item_id": f"m{n % 8}",
        "ts": T0 + 60_000 * (n + 1),
        "schema_version": 1,
    }


def _get(worker: Any, user: str) -> tuple[int, bytes]:
    path = "/v1/users/" + user + "/recommendations"
    try:
        return 200, worker.get(path)
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_read_api_answers_the_last_published_list_and_seq_orders_lists(
    deployment_factory: Callable[[], Deployment],
) -> None:
    dep = deployment_factory()
    worker = dep.start_worker()
    s = dep.settings
    clicks = [_click(n, u) for n in range(6) for u in USERS]
    duplicates = [_click(n, "ann") for n in (1, 3)]  # redelivered events: same ids again
    with EventProducer(s) as producer:
        for i in range(8):
            producer.send_doc("upload", "studio", _upload(i))
        producer.flush(30)
        for ev in clicks + duplicates:
            producer.send_doc("click", ev["user_id"], ev)
        producer.flush(30)
    expected = len(clicks) + len(duplicates)

    def done(recs: list[Any]) -> bool:
        return sum(1 for r in recs if r.key and r.key.decode() in USERS) >= expected

    records = [
        r for r in read_topic(s, s.topic_recs, done, timeout_s=120) if r.key and r.key.decode() in USERS
    ]
    assert len(records) >= expected
    lists = [(r, RecsUpdated.from_json_bytes(r.value)) for r in records]

    for user in USERS:
        mine = [lst for _, lst in lists if lst.user_id == user]
        seqs = [lst.seq for lst in mine]
        # One list per event in publishing order; each new event raises seq by one, a duplicate
        # repeats the current seq.
        assert all(q is not None for q in seqs), seqs
        n_dups = 2 if user == "ann" else 0
        assert len(mine) == 6 + n_dups
        assert sorted(set(seqs)) == list(range(1, 7)), seqs
        assert all(b >= a for a, b in itertools.pairwise(seqs)), seqs

        # The read API answers the last published list, byte for byte.
        last = [r.value for r, lst in lists if lst.user_id == user][-1]
        code, body = _get(worker, user)
        assert code == 200 and body == last, (user, body, last)

    # A consumer applying the rule ends with every user's newest list, whatever the order and
    # however many copies; it never applies a list with a seq at or below one it applied.
    shuffled = [lst for _, lst in lists] * 2
    random.Random(7).shuffle(shuffled)
    for order in (shuffled, [lst for _, lst in reversed(lists)]):
        keeper = LatestLists()
        applied: dict[str, list[int]] = {u: [] for u in USERS}
        for lst in order:
            if keeper.offer(lst):
                assert lst.seq is not None
                applied[lst.user_id].append(lst.seq)
        for user in USERS:
            assert applied[user] == sorted(set(applied[user])), applied[user]  # strictly rising
            got = keeper.get(user)
            assert got is not None and got.seq == 6
    # Negative control: "last arrival wins" applied to the reversed order ends with stale lists.
    naive = {lst.user_id: lst for _, lst in reversed(lists)}
    assert all(naive[u].seq == 1 for u in USERS)

    # Errors as schemas/openapi.yaml describes them.
    error = yaml.safe_load((SCHEMA_DIR.parent / "openapi.yaml").read_text())["components"]["schemas"]["Error"]
    code, body = _get(worker, "nobody-here")
    assert code == 404 and json.loads(body)["user_id"] == "nobody-here"
    jsonschema.validate(json.loads(body), error)
    code, body = _get(worker, "x" * 257)
    assert code == 400 and "256" in json.loads(body)["error"]
    jsonschema.validate(json.loads(body), error)
