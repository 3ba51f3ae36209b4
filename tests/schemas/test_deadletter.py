"""Dead letters: original bytes recoverable, schema-valid, truncation flagged."""

from __future__ import annotations

import hashlib
import json

from hypothesis import given
from hypothesis import strategies as st

from schemas.deadletter import DeadLetter, make_dead_letter
from schemas.edge import REASONS, Rejection, decode_event
from schemas.registry import get_validator
from tests.schemas.strategies import FAST, LIMITS, NOW_MS


@FAST
@given(
    st.binary(max_size=300) | st.none(),
    st.binary(max_size=20) | st.none(),
    st.text(max_size=20),
    st.integers(-1, 2**31 - 1) | st.none(),
    st.integers(-1, 2**63 - 1) | st.none(),
)
def test_round_trip_recovers_bytes(
    raw: bytes | None, key: bytes | None, topic: str, partition: int | None, offset: int | None
) -> None:
    rejection = decode_event(raw, key=key, topic=topic, limits=LIMITS, now_ms=NOW_MS)
    assert isinstance(rejection, Rejection)
    dl = make_dead_letter(raw, key, topic, partition, offset, rejection, NOW_MS)
    data = dl.to_json_bytes()
    assert get_validator("dead_letter").is_valid(json.loads(data))
    back = DeadLetter.from_json_bytes(data)
    assert back == dl
    assert back.raw_value() == raw and back.raw_key() == key
    assert back.source_topic == topic and back.rejection == rejection
    assert back.reason in REASONS and back.rejected_at == NOW_MS
    assert back.partition == (partition if partition is not None and partition >= 0 else None)
    assert back.offset == (offset if offset is not None and offset >= 0 else None)
    assert back.value_truncated is False
    if raw is not None:
        assert back.value_size == len(raw)
        assert back.value_sha256 == hashlib.sha256(raw).hexdigest()


def test_large_values_are_truncated_but_identified() -> None:
    raw = b"x" * 5000
    dl = make_dead_letter(raw, b"k", "events.click", 0, 1, Rejection("too_large", "big"), NOW_MS,
                          max_value_bytes=1000)  # fmt: skip
    assert dl.value_truncated and dl.value_size == 5000
    assert dl.raw_value() == raw[:1000]
    assert dl.value_sha256 == hashlib.sha256(raw).hexdigest()
    assert get_validator("dead_letter").is_valid(json.loads(dl.to_json_bytes()))


def test_tombstone_dead_letter_has_no_value_members() -> None:
    dl = make_dead_letter(None, None, "", None, None, Rejection("empty", "no value"), NOW_MS)
    doc = json.loads(dl.to_json_bytes())
    assert set(doc) == {"source_topic", "value_truncated", "reason", "detail", "rejected_at",
                        "schema_version"}  # fmt: skip
    assert get_validator("dead_letter").is_valid(doc)
