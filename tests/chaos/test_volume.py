"""Volume: 100,000 messages, one in ten malformed, through one real worker.

90,000 good events (the first of ``../shared/data/movielens-small``'s replay: clicks, reviews
and uploads) with 10,000 malformed messages mixed in (every tenth message; every dead-letter
reason of the contract tests). Every malformed message must come back from the dead-letter
topic with its bytes and the expected reason (exact counts per reason), every good event must
get its list and be applied exactly once. Figures: ``reports/chaos/volume.json``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from recstream.testing import Deployment, ListCollector, Message, event_message, read_topic
from schemas.deadletter import DeadLetter
from tests.chaos.accounting import account_events, account_lists
from tests.chaos.conftest import ChaosStack
from tests.chaos.harness import PacedProducer, movielens_slice, read_states
from tests.chaos.malformed import MAX_MESSAGE_BYTES, malformed
from tests.chaos.scenario import write_report

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.long, pytest.mark.timeout(5400)]

GOOD = 90_000
EVERY = 10  # one message in EVERY is malformed


def test_100k_messages_with_10_percent_malformed(
    chaos_stack: ChaosStack, chaos_deployment: Callable[..., Deployment], shared_movielens: Path
) -> None:
    d = chaos_deployment(RECSTREAM_MAX_MESSAGE_BYTES=str(MAX_MESSAGE_BYTES))
    s = d.settings
    events = movielens_slice(shared_movielens, limit=GOOD)
    good = [event_message(s, e) for e in events]
    messages: list[Message] = []
    sent_bad: Counter[tuple[bytes, str]] = Counter()
    by_reason: Counter[str] = Counter()
    n_bad = 0
    for i, msg in enumerate(good):
        messages.append(msg)
        if i % (EVERY - 1) == EVERY - 2:
            kind, key, raw, reason = malformed(n_bad)
            n_bad += 1
            messages.append((s.event_topics[kind], key, raw))
            sent_bad[(raw, reason)] += 1
            by_reason[reason] += 1
    d.start_worker()
    t0 = time.time()
    producer = PacedProducer(s, messages, rate=20_000)
    producer.start()
    producer.finish()
    ids = {e.event_id for e in events}
    with ListCollector(s) as lists:
        lists.wait_for(ids, timeout_s=4500, idle_s=300)
    seconds = time.time() - t0
    dlq = read_topic(s, s.topic_dlq, lambda got: len(got) >= n_bad, timeout_s=300)
    letters = [DeadLetter.from_json_bytes(r.value) for r in dlq]
    got_bad = Counter((dl.raw_value() or b"", dl.rejection.reason) for dl in letters)
    mismatches = sum(((sent_bad - got_bad) + (got_bad - sent_bad)).values())
    by_user: dict[str, list[str]] = {}
    for e in events:
        by_user.setdefault(e.user_id, []).append(e.event_id)
    ev = account_events(by_user, read_states(s))
    la = account_lists(lists.counts.elements(), ids)
    alive = all(w.alive for w in d.workers)
    report = {
        "outcome": "pass"
        if not (ev.lost or ev.duplicated or la.missing or mismatches or not alive)
        else "FAIL",
        "messages": len(messages),
        "good": len(events),
        "good_by_type": dict(Counter(e.type for e in events)),
        "malformed": n_bad,
        "malformed_by_reason": dict(by_reason),
        "dead_letters": len(letters),
        "dead_letters_by_reason": dict(Counter(dl.rejection.reason for dl in letters)),
        "dead_letter_mismatches": mismatches,
        "lost": ev.lost,
        "duplicated": ev.duplicated,
        "unexpected": ev.unexpected,
        "lists": lists.total,
        "lists_missing": la.missing,
        "duplicate_lists": la.duplicate_lists,
        "worker_alive": alive,
        "seconds": round(seconds, 1),
        "throughput_per_s": round(len(messages) / seconds, 1),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    write_report("volume", report)
    assert len(messages) == GOOD + GOOD // (EVERY - 1)
    assert alive, d.workers[0].log_tail()
    assert mismatches == 0 and len(letters) == n_bad, report
    assert (ev.lost, ev.duplicated, ev.unexpected, la.missing) == (0, 0, 0, 0), report
