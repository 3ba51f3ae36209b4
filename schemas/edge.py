"""Edge validation: raw Kafka message bytes in, a typed event or a :class:`Rejection` out.

Everything here is pure (no I/O, the clock is a parameter) and :func:`decode_event` never
raises, so the worker can call it on every message and dead-letter whatever comes back as a
:class:`Rejection`. Checks run cheapest first:

1. ``empty`` (tombstone / no bytes), ``too_large`` (over ``limits.max_message_bytes``)
2. ``invalid_utf8``, ``invalid_json`` (incl. NaN/Infinity, overflow, nesting, lone
   surrogates), ``duplicate_key``, ``not_object``
3. ``unsupported_version`` (``schema_version`` above :data:`SCHEMA_VERSION`; checked before the
   body because a newer version may have a different shape), ``missing_field``/``invalid_field``
   for ``schema_version`` and ``type``
4. ``wrong_topic`` (the topic must be the one configured for the event's ``type``)
5. ``missing_field``, ``invalid_field``, ``limit_exceeded`` (typed record validation)
6. ``future_timestamp`` (``ts`` more than ``limits.max_future_ms`` after ``now_ms``)
7. ``missing_key`` (with ``require_key``: the message has no Kafka key), ``key_mismatch`` (a
   present Kafka key must equal ``user_id``): per-user order and ownership rely on both
8. ``invalid_image`` (inline image is not a safe JPEG/PNG/WebP within byte and pixel limits)

Anything unexpected becomes ``Rejection("internal", "<ExceptionType>: <message>")``.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from schemas.errors import InvalidJsonError
from schemas.events import (
    EVENT_CLASSES,
    SCHEMA_VERSION,
    Event,
    UploadEvent,
    validation_problem,
)
from schemas.imaging import ImageError, decode_image
from schemas.jsonio import loads_strict
from schemas.limits import Limits

#: Longest ``Rejection.detail`` kept (details never echo payloads, this is a safety net).
MAX_DETAIL_CHARS = 1000
_TYPES = ", ".join(repr(t) for t in EVENT_CLASSES)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message was refused.

    Attributes:
        reason: Short machine code (``invalid_json``, ``missing_field``, ``wrong_topic``...).
        detail: Field path and message, e.g. ``"items[3].score: must be a number"``.
    """

    reason: str
    detail: str

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


def _reject(reason: str, detail: str) -> Rejection:
    return Rejection(reason, detail if len(detail) <= MAX_DETAIL_CHARS else detail[:MAX_DETAIL_CHARS])


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "null" if value is None else "an object"


def check_event_object(obj: Any, *, limits: Limits) -> Event | Rejection:
    """Validate an already-parsed JSON value as an event (no topic, key, clock or image checks).

    This is exactly the contract the JSON Schema files describe for the default ``limits``.

    Args:
        obj: Parsed JSON (normally a dict).
        limits: Size limits.

    Returns:
        The typed event, or a :class:`Rejection`.
    """
    return _check_object(obj, limits, None)


def _check_object(obj: Any, limits: Limits, topic: str | None) -> Event | Rejection:
    if type(obj) is not dict:
        return _reject("not_object", f"$: an event must be a JSON object, not {_json_kind(obj)}")
    version = obj.get("schema_version")
    if type(version) is int or (type(version) is float and version.is_integer()):
        if version > SCHEMA_VERSION:
            return _reject(
                "unsupported_version",
                f"unsupported schema_version {int(version)} (max {SCHEMA_VERSION})",
            )
    elif "schema_version" not in obj:
        return _reject("missing_field", "schema_version: required field is missing")
    else:
        return _reject("invalid_field", "schema_version: must be an integer")
    etype = obj.get("type")
    if not isinstance(etype, str) or etype not in EVENT_CLASSES:
        if "type" not in obj:
            return _reject("missing_field", "type: required field is missing")
        return _reject("invalid_field", f"type: must be one of {_TYPES}")
    cls = EVENT_CLASSES[etype]
    if topic is not None:
        expected = limits.topic_for(etype)
        if topic != expected:  # reported before body errors: the producer is misrouting
            return _reject("wrong_topic", f"type: {etype} event on topic {topic!r} (expected {expected!r})")
    try:
        return cls.model_validate(obj, context=limits)
    except ValidationError as exc:
        return _reject(*validation_problem(exc))


def _check_image(event: UploadEvent, limits: Limits) -> Rejection | None:
    image = event.image
    if image is None or image.b64 is None:
        return None  # a uri is only checked syntactically, never fetched here
    try:
        data = image.data() or b""
        decode_image(data, max_bytes=limits.max_image_bytes, max_pixels=limits.max_image_pixels)
    except ImageError as exc:
        return _reject("invalid_image", f"image.b64: {exc}")
    except binascii.Error as exc:  # pragma: no cover - the record already checked the syntax
        return _reject("invalid_image", f"image.b64: not base64 ({exc})")
    return None


def _decode(
    raw: bytes | None, key: bytes | None, topic: str | None, limits: Limits, now_ms: int, require_key: bool
) -> Event | Rejection:
    if not raw:
        return _reject("empty", "message has no value (tombstone or empty)")
    if len(raw) > limits.max_message_bytes:
        return _reject("too_large", f"message is {len(raw)} bytes, limit {limits.max_message_bytes}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _reject("invalid_utf8", f"byte {exc.start}: {exc.reason}")
    try:
        obj = loads_strict(text)
    except InvalidJsonError as exc:
        return _reject(exc.reason, exc.detail)
    result = _check_object(obj, limits, topic)
    if isinstance(result, Rejection):
        return result
    if result.ts > now_ms + limits.max_future_ms:
        return _reject(
            "future_timestamp",
            f"ts: {result.ts} is more than {limits.max_future_ms} ms after now ({now_ms})",
        )
    if key is None and require_key:
        return _reject(
            "missing_key",
            "message has no Kafka key: events must be keyed by user_id (the default partitioner "
            "then sends all of a user's events to one partition)",
        )
    if key is not None and key != result.kafka_key:
        return _reject("key_mismatch", "Kafka key differs from user_id (events are keyed by user)")
    if type(result) is UploadEvent:
        bad = _check_image(result, limits)
        if bad is not None:
            return bad
    return result


def decode_event(
    raw: bytes | None,
    *,
    key: bytes | None,
    topic: str | None,
    limits: Limits,
    now_ms: int,
    require_key: bool = False,
) -> Event | Rejection:
    """Validate one Kafka message value; never raises.

    Args:
        raw: The message value (None for a tombstone).
        key: The message key; when not None it must equal the event's ``user_id`` (UTF-8).
        topic: Topic the message came from; must be the topic configured for the event's
            ``type``. None skips the check (offline validation, where the topic is inferred).
        limits: Size limits and topic names (:meth:`Limits.from_settings`).
        now_ms: The current time in epoch milliseconds (passed in to keep this pure).
        require_key: Refuse a message without a key (``missing_key``); the worker does, since
            a keyless event lands on an arbitrary partition, where another worker may own the
            user. Offline validation of bare documents does not.

    Returns:
        The typed event, or a :class:`Rejection` saying why it was refused.
    """
    try:
        return _decode(raw, key, topic, limits, now_ms, require_key)
    except Exception as exc:  # the edge must never raise; the worker dead-letters this
        return _reject("internal", f"{type(exc).__name__}: {exc}")


#: Every reason code :func:`decode_event` can return.
REASONS = (
    "empty",
    "too_large",
    "invalid_utf8",
    "invalid_json",
    "duplicate_key",
    "not_object",
    "unsupported_version",
    "missing_field",
    "invalid_field",
    "limit_exceeded",
    "wrong_topic",
    "future_timestamp",
    "missing_key",
    "key_mismatch",
    "invalid_image",
    "internal",
)
