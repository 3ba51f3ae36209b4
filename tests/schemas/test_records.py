"""Typed records: immutability, extras, serialisation, list ordering, limits from settings."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from recstream.settings import Settings, load_settings
from schemas.errors import InvalidJsonError, RecordError, SchemaError
from schemas.events import (
    SCHEMA_VERSION,
    ClickEvent,
    RecItem,
    RecsUpdated,
    ReviewEvent,
    UploadEvent,
    validation_problem,
)
from schemas.limits import DEFAULT_LIMITS, Limits
from schemas.registry import load_example


def _recs(**changes: Any) -> dict[str, Any]:
    doc = json.loads(load_example("recs_updated"))
    doc.update(changes)
    return doc


def test_limits_defaults_equal_settings_defaults() -> None:
    fields = Settings.model_fields
    for name in (
        "max_message_bytes", "max_text_chars", "max_title_chars", "max_id_chars",
        "max_list_items", "max_features", "max_image_bytes", "max_image_pixels",
        "topic_click", "topic_upload", "topic_review",
    ):  # fmt: skip
        assert getattr(DEFAULT_LIMITS, name) == fields[name].default, name


def test_limits_from_settings() -> None:
    s = load_settings({}, max_text_chars=123, topic_click="c.v1")
    limits = Limits.from_settings(s)
    assert limits.max_text_chars == 123
    assert limits.topic_for("click") == "c.v1" and limits.topic_for("nope") is None
    with pytest.raises(AttributeError):
        limits.max_text_chars = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("click", ClickEvent),
        ("upload", UploadEvent),
        ("review", ReviewEvent),
        ("recs_updated", RecsUpdated),
    ],
)
def test_examples_round_trip_exactly(name: str, cls: type[Any]) -> None:
    raw = load_example(name)
    record = cls.from_json_bytes(raw)
    assert json.loads(record.to_json_bytes()) == json.loads(raw)
    assert cls.from_json_bytes(record.to_json_bytes()) == record


def test_records_are_immutable_and_hashable_when_flat() -> None:
    ev = ClickEvent.from_json_bytes(load_example("click"))
    with pytest.raises(ValidationError):
        ev.weight = 2.0
    assert hash(ev) == hash(ClickEvent.from_json_bytes(load_example("click")))


def test_constructing_records_in_code() -> None:
    ev = ClickEvent(type="click", event_id="e", user_id="u", item_id="i",
                    ts=1_700_000_000_000, schema_version=SCHEMA_VERSION)  # fmt: skip
    assert ev.to_json_bytes() == (
        b'{"type":"click","event_id":"e","user_id":"u","item_id":"i","ts":1700000000000,"schema_version":1}'
    )
    assert ev.kafka_key == b"u"


def test_extras_preserved_through_json() -> None:
    doc = _recs(experiment={"arm": "b"})
    doc["items"][0]["why"] = ["because"]
    rec = RecsUpdated.from_json_bytes(json.dumps(doc))
    assert rec.extra == {"experiment": {"arm": "b"}}
    assert rec.items[0].extra == {"why": ["because"]}
    assert json.loads(rec.to_json_bytes()) == doc


def test_recs_scores_must_descend_ties_allowed() -> None:
    items = [RecItem(item_id=str(i), score=s) for i, s in enumerate([3.0, 2.0, 2.0, -1.0])]
    rec = RecsUpdated(user_id="u", items=tuple(items), trigger_event_id="e", model_version="m",
                      generated_at=1_700_000_000_000, schema_version=1)  # fmt: skip
    assert [i.score for i in rec.items] == [3.0, 2.0, 2.0, -1.0]
    with pytest.raises(ValidationError) as info:
        RecsUpdated.model_validate(_recs(items=[{"item_id": "a", "score": 1},
                                                {"item_id": "b", "score": 2}]))  # fmt: skip
    assert validation_problem(info.value) == (
        "invalid_field",
        "items[1].score: must not exceed the previous score",
    )


@pytest.mark.parametrize(
    ("items", "detail"),
    [
        ([{"item_id": "a", "score": 1}, {"item_id": "b", "score": "x"}],
         "items[1].score: must be a number"),
        ([{"item_id": "a", "score": True}], "items[0].score: must be a number"),
        ([{"item_id": "a"}], "items[0].score: required field is missing"),
        ([{"item_id": "", "score": 1}], "items[0].item_id: must not be empty"),
        ([{"item_id": "a" * 257, "score": 1}], "items[0].item_id: longer than 256 characters"),
        ([{"item_id": "a", "score": 0}] * 1001, "items: must have at most 1000 entries"),
    ],
)  # fmt: skip
def test_recs_error_details(items: list[Any], detail: str) -> None:
    with pytest.raises(RecordError) as info:
        RecsUpdated.from_json_bytes(json.dumps(_recs(items=items)))
    assert str(info.value).split(": ", 1)[1] == detail


def test_from_json_bytes_errors_are_schema_errors() -> None:
    with pytest.raises(InvalidJsonError) as info:
        RecsUpdated.from_json_bytes(b'{"a": NaN}')
    assert info.value.reason == "invalid_json" and isinstance(info.value, SchemaError)
    with pytest.raises(RecordError, match="invalid_utf8"):
        RecsUpdated.from_json_bytes(b"\xff")
    with pytest.raises(RecordError, match="missing_field"):
        RecsUpdated.from_json_bytes(b"{}")


def test_limits_passed_as_context() -> None:
    doc = json.loads(load_example("review"))
    doc["text"] = "x" * 50
    with pytest.raises(RecordError, match="limit_exceeded: text: longer than 10 characters"):
        ReviewEvent.from_json_bytes(json.dumps(doc), limits=Limits(max_text_chars=10))
    assert ReviewEvent.from_json_bytes(json.dumps(doc)).text == "x" * 50
