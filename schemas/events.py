"""Typed, immutable records of the event and list contracts, ``schema_version`` 1.

The JSON Schema files in ``schemas/json`` are the source of truth for other services; these
pydantic models are what the code uses, and ``tests/schemas/test_agreement.py`` proves both give
the same verdict. Rules shared by every record (see ``schemas/COMPATIBILITY.md``):

* unknown members are tolerated and kept (:attr:`Record.extra`); re-serialising with
  :meth:`Record.to_json_bytes` writes them back unchanged;
* an optional member may be absent or ``null`` (same meaning); ``null`` members are not written;
* ``type`` and ``schema_version`` have no defaults: they are required on the wire, and a
  default would make the records accept documents the schema files refuse;
* integers follow JSON Schema: ``5.0`` is the integer 5, ``true`` is not a number;
* string lengths and list sizes are checked against :class:`schemas.limits.Limits`, passed as
  the pydantic validation ``context`` (``DEFAULT_LIMITS`` when absent).

Example:
    >>> ev = ClickEvent(type="click", event_id="e1", user_id="u1", item_id="i1",
    ...                 ts=1_700_000_000_000, schema_version=SCHEMA_VERSION)
    >>> ev.to_json_bytes()[:40]
    b'{"type":"click","event_id":"e1","user_id'
"""

from __future__ import annotations

import base64
import re
import sys
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, Literal, Self, TypeAlias

from pydantic import (
    AllowInfNan,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    Strict,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from schemas.errors import InvalidJsonError, RecordError
from schemas.jsonio import loads_strict
from schemas.limits import DEFAULT_LIMITS, Limits

#: Highest ``schema_version`` this code understands.
SCHEMA_VERSION = 1
#: Timestamps are epoch milliseconds in [1990-01-01T00:00:00Z, 2**53 - 1] (exact in a double).
MIN_TS_MS = 631_152_000_000
MAX_TS_MS = 2**53 - 1
#: Largest finite double; numbers beyond it cannot be represented and are refused.
MAX_NUMBER = sys.float_info.max
MAX_URI_CHARS = 2048
#: Longest published list (the ``k`` setting is at most 1000).
MAX_RECS_ITEMS = 1000
IMAGE_URI_SCHEMES = ("https", "http", "s3", "gs")
# Patterns are written in the subset shared by ECMA-262 (JSON Schema) and Python's re: no \d,
# no \Z, and "(?![\s\S])" instead of "$" (Python's $ also matches before a final newline).
B64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?(?![\s\S])"
URI_PATTERN = r"^(?:https?|s3|gs)://[A-Za-z0-9._~%!$&'()*+,;=:@\[\]-]+(?:[/?#][\x21-\x7e]*)?(?![\s\S])"
# Same language as B64_PATTERN (a test checks), but ~30x faster on megabyte payloads: one
# character-class run plus a length check instead of a repeated group.
_B64_FAST = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_URI_RE = re.compile(URI_PATTERN)

EventType: TypeAlias = Literal["click", "upload", "review"]


def is_base64(text: str, *, allow_empty: bool = False) -> bool:
    """True when ``text`` is padded standard base64, exactly what :data:`B64_PATTERN` accepts
    (the empty string only with ``allow_empty``)."""
    if not text:
        return allow_empty
    return len(text) % 4 == 0 and _B64_FAST.fullmatch(text) is not None


def _json_int(value: object) -> object:
    # JSON Schema counts 5.0 as an integer; accept it so records and schema files agree.
    if type(value) is float and value.is_integer():
        return int(value)
    return value


JsonInt = Annotated[int, Strict(), BeforeValidator(_json_int)]
Number = Annotated[float, Strict(), AllowInfNan(False)]
NonEmptyStr = Annotated[StrictStr, Field(min_length=1)]
EpochMs = Annotated[JsonInt, Field(ge=MIN_TS_MS, le=MAX_TS_MS)]
Version = Annotated[JsonInt, Field(ge=1, le=SCHEMA_VERSION)]


def _limits_of(info: ValidationInfo) -> Limits:
    ctx = info.context
    return ctx if isinstance(ctx, Limits) else DEFAULT_LIMITS


def _fail(code: str, path: str, what: str) -> PydanticCustomError:
    # "path" in the context lets validation_problem() build "items[3].score: ..." details.
    return PydanticCustomError(code, "{path}: {what}", {"path": path, "what": what})


def _check_len(path: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise _fail("limit_exceeded", path, f"longer than {limit} characters")


def _check_count(path: str, size: int, limit: int) -> None:
    if size > limit:
        raise _fail("limit_exceeded", path, f"more than {limit} entries")


class Record(BaseModel):
    """Base of every contract record: frozen, unknown members kept, strict JSON in and out."""

    model_config = ConfigDict(
        frozen=True,
        extra="allow",
        protected_namespaces=(),  # "model_version" is a contract field
        hide_input_in_errors=True,  # never echo (possibly huge) payloads into error texts
    )

    @property
    def extra(self) -> Mapping[str, Any]:
        """Unknown members received with the record, read-only, in arrival order."""
        return MappingProxyType(self.__pydantic_extra__ or {})

    @model_serializer(mode="wrap")
    def _omit_absent(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for name in type(self).model_fields:
                if name in data and data[name] is None:  # absent optional member
                    del data[name]
        return data

    def to_json_bytes(self) -> bytes:
        """Compact UTF-8 JSON of the record, unknown members included."""
        return self.__pydantic_serializer__.to_json(self)

    @classmethod
    def from_json_bytes(cls, data: bytes | str, *, limits: Limits | None = None) -> Self:
        """Parse and validate one JSON document (strict JSON, see :mod:`schemas.jsonio`).

        Args:
            data: UTF-8 bytes or text.
            limits: Size limits (default: :data:`schemas.limits.DEFAULT_LIMITS`).

        Raises:
            RecordError: Not UTF-8, not strict JSON, or not a valid record of this class.
        """
        try:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
            return cls.model_validate(loads_strict(text), context=limits or DEFAULT_LIMITS)
        except UnicodeDecodeError as exc:
            raise RecordError(f"invalid_utf8: {exc}") from None
        except InvalidJsonError:
            raise
        except ValidationError as exc:
            code, detail = validation_problem(exc)
            raise RecordError(f"{code}: {detail}") from None


class ImageRef(Record):
    """An upload's image: inline ``b64`` (padded standard base64) or a ``uri``, exactly one.

    A uri is only checked syntactically (scheme in :data:`IMAGE_URI_SCHEMES`); it is never
    fetched at the edge.
    """

    b64: StrictStr | None = None
    uri: StrictStr | None = None

    @model_validator(mode="before")
    @classmethod
    def _exactly_one(cls, data: Any) -> Any:
        if isinstance(data, dict):
            present = [k for k in ("b64", "uri") if k in data]
            if len(present) != 1:
                raise PydanticCustomError("image_ref", "must have exactly one of 'b64' or 'uri'")
            if data[present[0]] is None:
                raise _fail("string_type", present[0], "must be a string")
        return data

    @field_validator("b64")
    @classmethod
    def _b64_syntax(cls, value: str | None) -> str | None:
        if value is not None and (len(value) < 4 or not is_base64(value)):
            raise PydanticCustomError("base64", "must be padded standard base64 (RFC 4648)")
        return value

    @field_validator("uri")
    @classmethod
    def _uri_syntax(cls, value: str | None) -> str | None:
        if value is not None:
            if len(value) > MAX_URI_CHARS:
                raise PydanticCustomError("uri", f"longer than {MAX_URI_CHARS} characters")
            if _URI_RE.match(value) is None:
                schemes = ", ".join(IMAGE_URI_SCHEMES)
                raise PydanticCustomError("uri", f"must be an absolute URI with scheme {schemes}")
        return value

    @model_validator(mode="after")
    def _within_limits(self, info: ValidationInfo) -> Self:
        lim = _limits_of(info)
        _check_len("b64", self.b64, 4 * -(-lim.max_image_bytes // 3))
        return self

    def data(self) -> bytes | None:
        """The inline image bytes (None for a uri reference)."""
        return None if self.b64 is None else base64.b64decode(self.b64)


class _EventBase(Record):
    type: str  # narrowed to one Literal per event class
    event_id: NonEmptyStr
    user_id: NonEmptyStr
    item_id: NonEmptyStr
    ts: EpochMs
    schema_version: Version

    @model_validator(mode="after")
    def _within_limits(self, info: ValidationInfo) -> Self:
        lim = _limits_of(info)
        n = lim.max_id_chars
        _check_len("event_id", self.event_id, n)
        _check_len("user_id", self.user_id, n)
        _check_len("item_id", self.item_id, n)
        self._check_limits(lim)
        return self

    def _check_limits(self, lim: Limits) -> None:
        """Type-specific size checks (raise :class:`PydanticCustomError`)."""

    @property
    def kafka_key(self) -> bytes:
        """The Kafka message key of the event: its ``user_id`` in UTF-8."""
        return self.user_id.encode("utf-8")


class ClickEvent(_EventBase):
    """A user interacted with an item (view, click, rating...)."""

    type: Literal["click"]
    weight: Annotated[Number, Field(gt=0, le=MAX_NUMBER)] | None = None
    dwell_ms: Annotated[JsonInt, Field(ge=0, le=MAX_TS_MS)] | None = None


class ReviewEvent(_EventBase):
    """A user wrote text about an item, optionally with a 0..5 rating."""

    type: Literal["review"]
    text: StrictStr
    rating: Annotated[Number, Field(ge=0, le=5)] | None = None

    def _check_limits(self, lim: Limits) -> None:
        _check_len("text", self.text, lim.max_text_chars)


class UploadEvent(_EventBase):
    """An item enters the catalogue (``user_id`` is the uploader)."""

    type: Literal["upload"]
    title: NonEmptyStr
    description: StrictStr | None = None
    tags: tuple[NonEmptyStr, ...] | None = None
    image: ImageRef | None = None
    features: dict[NonEmptyStr, Annotated[tuple[Number, ...], Field(min_length=1)]] | None = None

    def _check_limits(self, lim: Limits) -> None:
        _check_len("title", self.title, lim.max_title_chars)
        _check_len("description", self.description, lim.max_text_chars)
        if self.tags is not None:
            _check_count("tags", len(self.tags), lim.max_list_items)
            for i, tag in enumerate(self.tags):
                _check_len(f"tags[{i}]", tag, lim.max_title_chars)
        if self.features is not None:
            _check_count("features", len(self.features), lim.max_features)
            for name, vector in self.features.items():
                _check_len(f"features.{name[:40]}", name, lim.max_id_chars)
                _check_count(f"features.{name[:40]}", len(vector), lim.max_list_items)


Event: TypeAlias = ClickEvent | UploadEvent | ReviewEvent

#: Record class per ``type`` value.
EVENT_CLASSES: Mapping[str, type[ClickEvent] | type[UploadEvent] | type[ReviewEvent]] = MappingProxyType(
    {"click": ClickEvent, "upload": UploadEvent, "review": ReviewEvent}
)


class RecItem(Record):
    """One entry of a published list."""

    item_id: NonEmptyStr
    score: Annotated[Number, Field(ge=-MAX_NUMBER, le=MAX_NUMBER)]


class RecsUpdated(Record):
    """A user's refreshed top-K list, published to ``recs.updated`` (descending score)."""

    user_id: NonEmptyStr
    items: Annotated[tuple[RecItem, ...], Field(max_length=MAX_RECS_ITEMS)]
    trigger_event_id: NonEmptyStr
    model_version: NonEmptyStr
    generated_at: EpochMs
    #: The user's applied-event count when the list was computed: a list with a higher ``seq``
    #: reflects more of the user's events (absent in lists of older workers).
    seq: Annotated[JsonInt, Field(ge=0, le=MAX_TS_MS)] | None = None
    schema_version: Version

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> Self:
        lim = _limits_of(info)
        _check_len("user_id", self.user_id, lim.max_id_chars)
        _check_len("trigger_event_id", self.trigger_event_id, lim.max_id_chars)
        _check_len("model_version", self.model_version, lim.max_id_chars)
        prev = MAX_NUMBER
        for i, item in enumerate(self.items):
            _check_len(f"items[{i}].item_id", item.item_id, lim.max_id_chars)
            if item.score > prev:
                raise _fail("not_descending", f"items[{i}].score", "must not exceed the previous score")
            prev = item.score
        return self


# --- error reporting -------------------------------------------------------------------------

_MESSAGES = {
    "missing": "required field is missing",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "string_too_short": "must not be empty",
    "too_short": "must not be empty",
    "tuple_type": "must be an array",
    "list_type": "must be an array",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "string_pattern_mismatch": "has an invalid format",
}


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validation_problem(exc: ValidationError) -> tuple[str, str]:
    """Reason code and ``"path: message"`` detail of the first error of a validation failure.

    Args:
        exc: The pydantic error raised while validating a record.

    Returns:
        ``(reason, detail)``, reason being ``missing_field``, ``limit_exceeded`` or
        ``invalid_field``; e.g. ``("invalid_field", "items[3].score: must be a number")``.
    """
    err = exc.errors(include_url=False, include_input=False)[0]
    etype = err["type"]
    loc = tuple(err["loc"])
    ctx = err.get("ctx") or {}
    if "path" in ctx and "what" in ctx:
        path = ".".join(p for p in (_path(loc), str(ctx["path"])) if p)
        text = str(ctx["what"])
    else:
        path = _path(loc)
        text = _MESSAGES.get(etype) or err["msg"].replace("Input should be", "must be")
        if etype == "too_long":
            text = f"must have at most {ctx.get('max_length')} entries"
    reason = {"missing": "missing_field", "limit_exceeded": "limit_exceeded"}.get(etype, "invalid_field")
    return reason, f"{path or '$'}: {text}"
