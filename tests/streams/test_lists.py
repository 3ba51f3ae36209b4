"""Lists are serialised once, without pydantic: the bytes must be the schema's document."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from schemas.events import SCHEMA_VERSION, RecItem, RecsUpdated
from streams.lists import list_payload

ids = st.text(min_size=1, max_size=40)


@given(
    user=ids,
    items=st.lists(st.tuples(ids, st.floats(-1e6, 1e6, allow_nan=False)), max_size=30),
    trigger=ids,
    generated=st.integers(631_152_000_000, 2**52),
    seq=st.integers(0, 2**53 - 1),
)
def test_payload_is_the_recs_updated_document(
    user: str, items: list[tuple[str, float]], trigger: str, generated: int, seq: int
) -> None:
    items = sorted(((i, round(s, 6)) for i, s in items), key=lambda x: -x[1])
    payload = list_payload(user, items, trigger, "fusion-v1", generated, seq)
    expected = RecsUpdated(
        user_id=user,
        items=tuple(RecItem(item_id=i, score=round(s, 6)) for i, s in items),
        trigger_event_id=trigger,
        model_version="fusion-v1",
        generated_at=generated,
        seq=seq,
        schema_version=SCHEMA_VERSION,
    )
    assert RecsUpdated.from_json_bytes(payload) == expected
    assert payload == expected.to_json_bytes()
