"""The published list, serialised once: the bytes sent to ``recs.updated`` and stored as latest.

The hot path builds no pydantic objects (validation stays at the edge, on input): a list is a
plain dict dumped by orjson, exactly the document :class:`schemas.events.RecsUpdated` describes
(same members, same order, scores rounded to 6 decimals); ``tests/streams/test_lists.py`` checks
that the schema model parses every payload back to the same list.
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
) -> bytes:
    """The ``recs.updated`` JSON document of one list (compact UTF-8)."""
    return orjson.dumps(
        {
            "user_id": user_id,
            "items": [{"item_id": i, "score": round(s, 6)} for i, s in items],
            "trigger_event_id": trigger_event_id,
            "model_version": model_version,
            "generated_at": generated_at,
            "schema_version": SCHEMA_VERSION,
        }
    )
