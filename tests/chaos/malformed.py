"""Malformed messages for the volume run, one generator per dead-letter reason.

The cases are those of the contract tests: the six of ``tests/streams/test_worker_e2e.py``
(``BAD``, reused as they are) and more from ``tests/schemas/test_edge.py`` (empty, duplicate
key, not an object, invalid field, limit exceeded, future timestamp, too large, invalid image).
Each message is made distinct by its index ``n``, so a dead letter can be matched to the
message it came from by its bytes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from tests.streams.test_worker_e2e import BAD

#: The volume deployment's message limit (a too_large case is just over it).
MAX_MESSAGE_BYTES = 16_384
#: (topic kind, key, raw value, expected reason).
Case = tuple[str, bytes | None, bytes, str]


def _click(n: int, **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": "click",
        "event_id": f"bad-{n}",
        "user_id": "u",
        "item_id": "m1",
        "ts": 1_700_000_000_000,
        "schema_version": 1,
    }
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not None}


def _j(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def _from_e2e(i: int) -> Callable[[int], Case]:
    kind, key, raw, reason = BAD[i]

    def make(n: int) -> Case:
        # Tag the bytes with n where that keeps the reason: appending spaces to JSON text is
        # harmless, and the non-JSON cases stay what they are after a suffix.
        return kind, key, raw + b" " * (n % 7) + f" {n}".encode() * (reason == "invalid_json"), reason

    return make


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


CASES: list[Callable[[int], Case]] = [
    *(_from_e2e(i) for i in range(len(BAD))),
    lambda n: ("click", b"u", b"", "empty"),
    lambda n: ("click", b"u", f'{{"type":"click","type":"click","n":{n}}}'.encode(), "duplicate_key"),
    lambda n: ("click", b"u", f"[{n}]".encode(), "not_object"),
    lambda n: ("click", b"u", _j(_click(n, weight=0)), "invalid_field"),
    lambda n: ("click", b"u", _j(_click(n, ts=-n - 1)), "invalid_field"),
    lambda n: ("review", b"u", _j(_click(n, type="review", text="x" * 10_001)), "limit_exceeded"),
    lambda n: ("click", b"u", _j(_click(n, ts=_now_ms() + 30 * 86_400_000)), "future_timestamp"),
    lambda n: ("click", b"u", _j(_click(n, pad="p" * MAX_MESSAGE_BYTES)), "too_large"),
    lambda n: (
        "upload",
        b"u",
        _j(
            _click(
                n, type="upload", title="t", image={"b64": base64.b64encode(b"not an image %d" % n).decode()}
            )
        ),
        "invalid_image",
    ),
]


def malformed(n: int) -> Case:
    """The ``n``-th malformed message (cycling through every case)."""
    return CASES[n % len(CASES)](n)
