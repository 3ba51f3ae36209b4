"""Edge validation: every bad input is rejected with a reason, every valid one accepted, and no
exception ever escapes :func:`schemas.edge.decode_event`."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from schemas import edge
from schemas.edge import REASONS, Rejection, decode_event
from schemas.events import MAX_TS_MS, MIN_TS_MS, ClickEvent, Event, UploadEvent
from schemas.limits import Limits
from tests.schemas.strategies import FAST, LIMITS, NOW_MS, encode, events, json_values

TOPIC = {"click": "events.click", "upload": "events.upload", "review": "events.review"}
CLICK: dict[str, Any] = {
    "type": "click",
    "event_id": "e-1",
    "user_id": "u-1",
    "item_id": "i-1",
    "ts": 1_700_000_000_000,
    "schema_version": 1,
}


def decode(
    raw: bytes | None, *, topic: str | None = "events.click", key: bytes | None = None, **kw: Any
) -> Event | Rejection:
    return decode_event(
        raw,
        key=key,
        topic=topic,
        limits=kw.get("limits", LIMITS),
        now_ms=NOW_MS,
        require_key=kw.get("require_key", False),
    )


def rejected(raw: bytes | None, reason: str, **kw: Any) -> Rejection:
    result = decode(raw, **kw)
    assert isinstance(result, Rejection), f"accepted: {result!r}"
    assert result.reason == reason, str(result)
    assert result.detail
    return result


def click(**changes: Any) -> bytes:
    doc = {**CLICK, **changes}
    return encode({k: v for k, v in doc.items() if v is not DROP})


DROP = object()


# --- valid input ---------------------------------------------------------------------------


@FAST
@given(events)
def test_every_valid_event_is_accepted_and_round_trips(doc: dict[str, Any]) -> None:
    raw = encode(doc)
    key = doc["user_id"].encode()
    result = decode(raw, topic=TOPIC[doc["type"]], key=key)
    assert not isinstance(result, Rejection), str(result)
    assert result.type == doc["type"] and result.user_id == doc["user_id"]
    # Unknown members are kept, and re-serialising preserves every member's value.
    again = json.loads(result.to_json_bytes())
    assert again == {k: v for k, v in json.loads(raw).items() if v is not None or k in result.extra}
    assert decode(result.to_json_bytes(), topic=TOPIC[doc["type"]]) == result


def test_unknown_members_are_kept_in_order_and_read_only() -> None:
    result = decode(click(zeta={"nested": [1, 2]}, alpha=None))
    assert isinstance(result, ClickEvent)
    assert list(result.extra) == ["zeta", "alpha"]
    assert result.extra["zeta"] == {"nested": [1, 2]}
    with pytest.raises(TypeError):
        result.extra["new"] = 1  # type: ignore[index]
    with pytest.raises(ValueError, match="frozen"):
        result.user_id = "other"


@pytest.mark.parametrize(
    ("changes", "attr", "value"),
    [
        ({"ts": 1.7e12}, "ts", 1_700_000_000_000),  # JSON Schema integers include 1.7e12
        ({"schema_version": 1.0}, "schema_version", 1),
        ({"weight": None}, "weight", None),  # optional members may be null
        ({"weight": 3}, "weight", 3.0),
        ({"dwell_ms": 0}, "dwell_ms", 0),
        ({"ts": MIN_TS_MS}, "ts", MIN_TS_MS),
        ({"ts": NOW_MS + 86_400_000}, "ts", NOW_MS + 86_400_000),
    ],
)
def test_boundary_values_accepted(changes: dict[str, Any], attr: str, value: Any) -> None:
    result = decode(click(**changes))
    assert isinstance(result, ClickEvent), str(result)
    assert getattr(result, attr) == value


def test_key_equal_to_user_id_and_no_key_are_accepted() -> None:
    assert isinstance(decode(click(), key=b"u-1"), ClickEvent)
    assert isinstance(decode(click(), key=None), ClickEvent)


# --- never raises --------------------------------------------------------------------------


@FAST
@given(st.binary(max_size=200) | st.none(), st.binary(max_size=8) | st.none(), st.text(max_size=8))
def test_arbitrary_bytes_never_raise(raw: bytes | None, key: bytes | None, topic: str) -> None:
    result = decode(raw, key=key, topic=topic)
    assert isinstance(result, Rejection)
    assert result.reason in REASONS


@FAST
@given(json_values)
def test_arbitrary_json_is_rejected_with_a_reason(value: Any) -> None:
    result = decode(encode(value))
    assert isinstance(result, Rejection)
    assert result.reason in REASONS and result.reason != "internal"


def test_unexpected_exception_becomes_internal(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(obj: Any, limits: Limits, topic: str | None) -> Any:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(edge, "_check_object", boom)
    result = rejected(click(), "internal")
    assert str(result) == "internal: ZeroDivisionError: boom"


# --- malformed bytes and JSON --------------------------------------------------------------


@FAST
@given(events, st.data())
def test_truncated_json_is_invalid(doc: dict[str, Any], data: st.DataObject) -> None:
    raw = encode(doc)
    cut = data.draw(st.integers(1, len(raw) - 1))
    assume(raw[:cut].strip())
    result = decode(raw[:cut], topic=None)
    assert isinstance(result, Rejection)
    assert result.reason in {"invalid_json", "invalid_utf8"}, str(result)


@FAST
@given(events, st.data())
def test_invalid_utf8_is_rejected(doc: dict[str, Any], data: st.DataObject) -> None:
    raw = encode(doc)
    at = data.draw(st.integers(0, len(raw)))
    bad = data.draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]))
    rejected(raw[:at] + bad + raw[at:], "invalid_utf8", topic=None)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "-1e999"])
@pytest.mark.parametrize("where", ["weight", "extra", "nested"])
def test_nan_and_infinity_are_rejected_anywhere(literal: str, where: str) -> None:
    text = click().decode()[:-1]
    member = {"weight": f'"weight":{literal}', "extra": f'"x":{literal}'}.get(
        where, f'"x":{{"y":[1,{literal}]}}'
    )
    rejected(f"{text},{member}}}".encode(), "invalid_json")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty"),
        (b"", "empty"),
        (b"{", "invalid_json"),
        (b"{}x", "invalid_json"),
        (b"\xef\xbb\xbf{}", "invalid_json"),  # BOM
        (b'{"a":"\\ud800"}', "invalid_json"),  # lone surrogate
        (b"[" * 40 + b"]" * 40, "invalid_json"),  # too deep
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, "invalid_json"),  # recursion
        (b"1" * 5000, "invalid_json"),  # int beyond int_max_str_digits
        (b'{"type":"click","type":"click"}', "duplicate_key"),
        (b'{"x":{"k":1,"k":2}}', "duplicate_key"),
        (b"[]", "not_object"),
        (b'"click"', "not_object"),
        (b"null", "not_object"),
        (b"{}", "missing_field"),
    ],
)
def test_malformed_messages(raw: bytes | None, reason: str) -> None:
    rejected(raw, reason)


def test_duplicate_keys_rejected_at_top_level() -> None:
    raw = click().replace(b'"user_id": "u-1"', b'"user_id": "u-1", "user_id": "admin"')
    assert rejected(raw, "duplicate_key").detail.startswith("user_id")


def test_too_large_message() -> None:
    small = Limits(max_message_bytes=1024)
    pad = "x" * (1024 - len(click(pad="")))
    assert len(click(pad=pad)) == 1024
    assert isinstance(decode(click(pad=pad), limits=small), ClickEvent)
    result = rejected(click(pad=pad + "x"), "too_large", limits=small)
    assert result.detail == "message is 1025 bytes, limit 1024"


# --- fields --------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["type", "event_id", "user_id", "item_id", "ts", "schema_version"])
def test_missing_required_field(field: str) -> None:
    result = rejected(click(**{field: DROP}), "missing_field")
    assert result.detail == f"{field}: required field is missing"


@FAST
@given(
    st.sampled_from(["event_id", "user_id", "item_id", "ts", "weight", "dwell_ms"]),
    st.sampled_from([True, False, [], {}, "", "1", None, 1.5, -1]),
)
def test_wrong_types_are_invalid(field: str, value: Any) -> None:
    ok = {
        "weight": value is None or (type(value) is float and value > 0),
        "dwell_ms": value is None,
        "ts": False,
    }.get(field, isinstance(value, str) and value != "")
    assume(not ok)
    result = rejected(click(**{field: value}), "invalid_field")
    assert result.detail.startswith(f"{field}: ")


@pytest.mark.parametrize("value", [True, 1, 0.5, None, "x", "Click", ["click"]])
def test_unknown_or_mistyped_type(value: Any) -> None:
    assert rejected(click(type=value), "invalid_field").detail.startswith("type: must be one of")


@pytest.mark.parametrize(
    "ts", [-1, 0, 1_700_000_000, MIN_TS_MS - 1, MAX_TS_MS + 1, 2**64, 1.5e12 + 0.5, "1700000000000"]
)
def test_absurd_timestamps_are_invalid(ts: Any) -> None:
    assert rejected(click(ts=ts), "invalid_field").detail.startswith("ts: ")


@FAST
@given(st.integers(NOW_MS + 86_400_001, MAX_TS_MS))
def test_future_timestamps_are_refused(ts: int) -> None:
    rejected(click(ts=ts), "future_timestamp")


@pytest.mark.parametrize("weight", [0, 0.0, -0.0, -1, True, "1"])
def test_weight_must_be_a_positive_number(weight: Any) -> None:
    assert rejected(click(weight=weight), "invalid_field").detail.startswith("weight: ")


@pytest.mark.parametrize("rating", [-0.5, 5.5, True, "5"])
def test_review_rating_range(rating: Any) -> None:
    raw = click(type="review", text="ok", rating=rating)
    assert rejected(raw, "invalid_field", topic="events.review").detail.startswith("rating: ")


@pytest.mark.parametrize(
    ("changes", "topic", "path"),
    [
        ({"user_id": "u" * 257}, "events.click", "user_id"),
        ({"type": "review", "text": "x" * 10_001}, "events.review", "text"),
        ({"type": "upload", "title": "t" * 1001}, "events.upload", "title"),
        ({"type": "upload", "title": "t", "tags": ["a"] * 257}, "events.upload", "tags"),
        ({"type": "upload", "title": "t", "features": {"v": [1.0] * 257}},
         "events.upload", "features.v"),
        ({"type": "upload", "title": "t", "features": {f"f{i}": [1] for i in range(33)}},
         "events.upload", "features"),
    ],
)  # fmt: skip
def test_huge_values_exceed_limits(changes: dict[str, Any], topic: str, path: str) -> None:
    result = rejected(click(**changes), "limit_exceeded", topic=topic)
    assert result.detail.startswith(f"{path}: ")


def test_limits_are_configurable() -> None:
    roomy = Limits(max_text_chars=20_000)
    raw = click(type="review", text="x" * 15_000)
    assert not isinstance(decode(raw, topic="events.review", limits=roomy), Rejection)
    rejected(raw, "limit_exceeded", topic="events.review")


@FAST
@given(st.integers(2, 10**6))
def test_newer_schema_version_is_unsupported(version: int) -> None:
    # Checked first: a newer version may have another shape (here the body is even empty).
    raw = encode({"schema_version": version, "type": "something-new"})
    result = rejected(raw, "unsupported_version")
    assert result.detail == f"unsupported schema_version {version} (max 1)"


@pytest.mark.parametrize("version", [0, -1, "1", True, None, 1.5])
def test_bad_schema_version(version: Any) -> None:
    rejected(click(schema_version=version), "invalid_field")


# --- routing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc_type", "topic"),
    [("click", "events.upload"), ("click", "events.review"), ("upload", "events.click"),
     ("click", "other.topic")],
)  # fmt: skip
def test_event_on_the_wrong_topic(doc_type: str, topic: str) -> None:
    extra = {"title": "t"} if doc_type == "upload" else {}
    result = rejected(click(type=doc_type, **extra), "wrong_topic", topic=topic)
    assert topic in result.detail


def test_wrong_topic_reported_before_body_errors() -> None:
    rejected(click(user_id=DROP), "wrong_topic", topic="events.upload")


def test_topic_names_come_from_limits() -> None:
    custom = Limits(topic_click="prod.clicks")
    assert isinstance(decode(click(), topic="prod.clicks", limits=custom), ClickEvent)
    rejected(click(), "wrong_topic", topic="events.click", limits=custom)


@pytest.mark.parametrize("key", [b"u-2", b"", b"U-1", b"\xff"])
def test_key_must_equal_user_id(key: bytes) -> None:
    rejected(click(), "key_mismatch", key=key)


def test_keyless_events_are_refused_where_a_key_is_required() -> None:
    r = rejected(click(), "missing_key", require_key=True)
    assert "user_id" in r.detail
    assert isinstance(decode(click(), key=b"u-1", require_key=True), ClickEvent)
    assert isinstance(decode(click()), ClickEvent)  # offline validation of a bare document
    # The cheaper checks come first: a broken keyless message names what is broken in it.
    rejected(b"{nope", "invalid_json", require_key=True)


def test_non_ascii_key_matches_utf8_user_id() -> None:
    assert isinstance(decode(click(user_id="üser"), key="üser".encode()), ClickEvent)


def test_upload_example_accepted() -> None:
    from schemas.registry import load_example

    result = decode(load_example("upload"), topic="events.upload", key=b"studio-42")
    assert isinstance(result, UploadEvent)
    assert result.image is not None and result.image.data() is not None
