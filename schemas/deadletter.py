"""Dead-letter records: what the edge refused, with the original bytes, published to events.dlq.

The original key and value are kept byte-for-byte (base64), so a fixed consumer or a human can
re-drive them; ``value_sha256`` identifies the original even when a huge value had to be
truncated to fit a Kafka message (``value_truncated``).
Contract: ``schemas/json/dead_letter.v1.json``.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field, StrictBool, StrictStr
from pydantic_core import PydanticCustomError

from schemas.edge import MAX_DETAIL_CHARS, Rejection
from schemas.events import SCHEMA_VERSION, EpochMs, JsonInt, Record, Version, is_base64

#: Largest original value copied into a dead letter. Base64 grows it by 4/3, so 512 KiB stays
#: under Kafka's default 1 MB message limit; longer values are truncated (and flagged).
DEFAULT_MAX_VALUE_BYTES = 512 * 1024
REASON_PATTERN = r"^[a-z][a-z0-9_]*(?![\s\S])"
SHA256_PATTERN = r"^[0-9a-f]{64}(?![\s\S])"

_Offset = Annotated[JsonInt, Field(ge=0, le=2**63 - 1)]


def _check_b64(value: str) -> str:
    if not is_base64(value, allow_empty=True):
        raise PydanticCustomError("base64", "must be padded standard base64 (RFC 4648)")
    return value


# A validator rather than Field(pattern=B64_PATTERN): same language, far faster on 700 kB.
_B64 = Annotated[StrictStr, AfterValidator(_check_b64)]


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


class DeadLetter(Record):
    """One refused message.

    Attributes:
        source_topic: Topic the message was read from ("" when unknown, e.g. a file).
        partition: Its partition (None when unknown).
        offset: Its offset (None when unknown).
        key_b64: Original key, base64 (None when the message had no key).
        value_b64: Original value, base64, possibly truncated (None for a tombstone).
        value_size: Length of the original value in bytes (None for a tombstone).
        value_sha256: Hex SHA-256 of the whole original value (None for a tombstone).
        value_truncated: True when ``value_b64`` holds only a prefix of the value.
        reason: Machine reason code (see :data:`schemas.edge.REASONS`).
        detail: Field path and message.
        rejected_at: When the edge refused it, epoch milliseconds.
        schema_version: Version of this record's contract.
    """

    # Same pattern strings as the JSON Schema file, evaluated by the same engine (Python re).
    model_config = ConfigDict(regex_engine="python-re")

    source_topic: StrictStr
    partition: Annotated[JsonInt, Field(ge=0, le=2**31 - 1)] | None = None
    offset: _Offset | None = None
    key_b64: _B64 | None = None
    value_b64: _B64 | None = None
    value_size: _Offset | None = None
    value_sha256: Annotated[StrictStr, Field(pattern=SHA256_PATTERN)] | None = None
    value_truncated: StrictBool = False
    reason: Annotated[StrictStr, Field(pattern=REASON_PATTERN, max_length=64)]
    detail: StrictStr
    rejected_at: EpochMs
    schema_version: Version

    def raw_key(self) -> bytes | None:
        """The original message key."""
        return None if self.key_b64 is None else base64.b64decode(self.key_b64)

    def raw_value(self) -> bytes | None:
        """The original message value (a prefix of it when ``value_truncated``)."""
        return None if self.value_b64 is None else base64.b64decode(self.value_b64)

    @property
    def rejection(self) -> Rejection:
        """The reason and detail as a :class:`Rejection`."""
        return Rejection(self.reason, self.detail)


def make_dead_letter(
    raw: bytes | None,
    key: bytes | None,
    topic: str,
    partition: int | None,
    offset: int | None,
    rejection: Rejection,
    now_ms: int,
    *,
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
) -> DeadLetter:
    """Build the dead letter of a refused message.

    Args:
        raw: The original message value (None for a tombstone).
        key: The original message key.
        topic: Source topic ("" when not read from Kafka).
        partition: Source partition (None or negative when unknown).
        offset: Source offset (None or negative when unknown).
        rejection: Why the edge refused it.
        now_ms: Current time, epoch milliseconds.
        max_value_bytes: Longest value prefix copied (see :data:`DEFAULT_MAX_VALUE_BYTES`).

    Returns:
        The record; publish ``record.to_json_bytes()`` keyed like the original message.

    Raises:
        pydantic.ValidationError: ``now_ms`` is not a plausible epoch-milliseconds clock.
    """
    value = raw if raw is None or len(raw) <= max_value_bytes else raw[:max_value_bytes]
    return DeadLetter(
        source_topic=topic,
        partition=partition if partition is not None and partition >= 0 else None,
        offset=offset if offset is not None and offset >= 0 else None,
        key_b64=_b64(key),
        value_b64=_b64(value),
        value_size=None if raw is None else len(raw),
        value_sha256=None if raw is None else hashlib.sha256(raw).hexdigest(),
        value_truncated=raw is not None and len(raw) > max_value_bytes,
        reason=rejection.reason,
        detail=rejection.detail[:MAX_DETAIL_CHARS],
        rejected_at=now_ms,
        schema_version=SCHEMA_VERSION,
    )
