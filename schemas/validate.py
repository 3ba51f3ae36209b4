"""Offline validation of JSONL event files (the logic behind ``recstream validate``).

Each line is checked exactly as the edge checks a Kafka message, except the topic, which is
inferred from ``type``, and the Kafka key, which a file does not have.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from schemas.edge import Rejection, decode_event
from schemas.limits import Limits

_CHUNK = 1 << 16


@dataclass(frozen=True, slots=True)
class LineResult:
    """Verdict on one input line (1-based ``line``; ``error`` is ``"reason: detail"``)."""

    line: int
    ok: bool
    error: str | None = None

    def to_json(self) -> str:
        """The line printed by ``recstream validate``."""
        return json.dumps({"line": self.line, "ok": self.ok, "error": self.error})


def iter_lines(stream: BinaryIO, max_bytes: int) -> Iterator[bytes | int]:
    """Split a binary stream into lines without reading an overlong line into memory.

    Args:
        stream: Binary file object.
        max_bytes: Longest line returned as bytes (terminator excluded).

    Yields:
        Each line without its ``\\n`` (or ``\\r\\n``); for a longer line, its length in bytes
        (an ``int``) instead, the line itself being skipped.
    """
    while True:
        line = stream.readline(max_bytes + 2)  # room for "\r\n"
        if not line:
            return
        if line.endswith(b"\n") or len(line) <= max_bytes:
            yield line.rstrip(b"\n").removesuffix(b"\r")
            continue
        size = len(line)
        while not line.endswith(b"\n"):  # skip the rest of the overlong line
            line = stream.readline(_CHUNK)
            if not line:
                break
            size += len(line)
        yield size - (1 if line.endswith(b"\n") else 0)


def validate_lines(lines: Iterable[bytes | int], *, limits: Limits, now_ms: int) -> Iterator[LineResult]:
    """Validate JSONL lines as events.

    Args:
        lines: Line contents, or the length of a line too long to hold (see :func:`iter_lines`).
        limits: Edge limits (topic check is skipped).
        now_ms: Clock for the future-timestamp bound, epoch milliseconds.

    Yields:
        One :class:`LineResult` per line, in order.
    """
    for n, raw in enumerate(lines, start=1):
        if isinstance(raw, int):
            error = f"too_large: line is {raw} bytes, limit {limits.max_message_bytes}"
            yield LineResult(n, False, error)
            continue
        result = decode_event(raw, key=None, topic=None, limits=limits, now_ms=now_ms)
        if isinstance(result, Rejection):
            yield LineResult(n, False, str(result))
        else:
            yield LineResult(n, True, None)
