"""The volume run's malformed messages get exactly the reason it expects (no servers)."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from schemas.deadletter import DeadLetter, make_dead_letter
from schemas.edge import REASONS, Rejection, decode_event
from schemas.limits import Limits
from tests.chaos.malformed import CASES, MAX_MESSAGE_BYTES, malformed

TOPICS = {"click": "events.click", "upload": "events.upload", "review": "events.review"}
LIMITS = Limits(max_message_bytes=MAX_MESSAGE_BYTES)


@pytest.mark.parametrize("n", range(3 * len(CASES)))
def test_each_case_is_rejected_with_its_reason_and_kept_byte_for_byte(n: int) -> None:
    kind, key, raw, reason = malformed(n)
    now = int(time.time() * 1000)
    result = decode_event(raw, key=key, topic=TOPICS[kind], limits=LIMITS, now_ms=now, require_key=True)
    assert isinstance(result, Rejection), result
    assert result.reason == reason, result
    letter = make_dead_letter(raw, key, TOPICS[kind], 0, n, result, now)
    back = DeadLetter.from_json_bytes(letter.to_json_bytes())
    assert back.raw_value() == raw and back.rejection.reason == reason


def test_the_cases_cover_most_reasons() -> None:
    reasons = Counter(malformed(n)[3] for n in range(len(CASES)))
    assert set(reasons) >= set(REASONS) - {"internal"}
