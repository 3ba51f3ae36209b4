"""The published list, serialised once: the bytes sent to ``recs.updated`` and stored as latest.

The hot path builds no pydantic objects (validation stays at the edge, on input): a list is
dumped by orjson, exactly the document :class:`schemas.events.RecsUpdated` describes (same
members, same order, scores rounded to 6 decimals); ``tests/streams/test_lists.py`` checks that
the schema model parses every payload back to the same list, byte for byte. About 5 us a list of
20 (a pydantic ``RecsUpdated`` built and dumped took about 200 us).
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from schemas.events import SCHEMA_VERSION


def list_payload(
    user_id: str,
    items: Sequence[tuple[str, float]],
    trigger_event_id: str,
    model_version: str,
    generated_at: int,
    seq: int,
) -> bytes:
    """The ``recs.updated`` JSON document of one list (compact UTF-8).

    Args:
        items: ``(item id, score)`` best first, scores rounded to 6 decimals by the caller
            (the index rounds a whole batch at once).
        seq: The user's applied-event count when the list was computed (consumers keep the
            highest per user; see schemas/COMPATIBILITY.md).
    """
    return orjson.dumps(
        {
            "user_id": user_id,
            "items": [{"item_id": i, "score": s} for i, s in items],
            "trigger_event_id": trigger_event_id,
            "model_version": model_version,
            "generated_at": generated_at,
            "seq": seq,
            "schema_version": SCHEMA_VERSION,
        }
    )
