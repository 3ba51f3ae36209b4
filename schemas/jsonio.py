"""Strict JSON parsing shared by the edge and the record readers.

Python's ``json`` module is lenient where the contract is not: it accepts ``NaN``/``Infinity``,
turns ``1e400`` into ``inf``, silently keeps the last of duplicate keys, and lets ``\\ud800``
escapes produce strings that cannot be re-encoded as UTF-8. :func:`loads_strict` refuses all of
these. Duplicate keys are refused (not "last wins") because parsers disagree on which copy wins,
which would let a producer show one ``user_id`` to a validator and another to a consumer.
"""

from __future__ import annotations

import json
import math
from typing import Any

from schemas.errors import InvalidJsonError

#: Deepest accepted nesting of arrays/objects. The contract itself needs 3; deeper documents
#: only risk recursion limits downstream (pydantic cannot serialise ~250+ levels).
MAX_DEPTH = 32


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidJsonError("invalid_json", f"number {text[:40]} is out of range (infinite)")
    return value


def _no_constant(text: str) -> Any:
    raise InvalidJsonError("invalid_json", f"{text} is not valid JSON (non-finite numbers refused)")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise InvalidJsonError("duplicate_key", f"{k[:80]}: key appears more than once")
            seen.add(k)
    return obj


# Built once: json.loads(..., hooks) would construct a new decoder on every call.
_DECODER = json.JSONDecoder(
    parse_float=_finite_float, parse_constant=_no_constant, object_pairs_hook=_unique_object
)


def _check_depth(value: Any) -> None:
    if type(value) not in (dict, list):
        return
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidJsonError("invalid_json", f"nested deeper than {MAX_DEPTH} levels")
        children = node.values() if type(node) is dict else node
        stack.extend((c, depth + 1) for c in children if type(c) in (dict, list))


def _check_strings(value: Any) -> None:
    stack = [value]
    while stack:
        node = stack.pop()
        if type(node) is str:
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidJsonError(
                    "invalid_json", "string holds a lone UTF-16 surrogate escape"
                ) from None
        elif type(node) is dict:
            stack.extend(node)
            stack.extend(node.values())
        elif type(node) is list:
            stack.extend(node)


def loads_strict(text: str) -> Any:
    """Parse one JSON document, refusing anything the event contract does not allow.

    Args:
        text: The document (already decoded from UTF-8).

    Returns:
        The parsed value (dict, list, str, int, float, bool or None).

    Raises:
        InvalidJsonError: Syntax error, NaN/Infinity or overflowing number, duplicate key,
            nesting deeper than :data:`MAX_DEPTH`, or a lone surrogate escape.
    """
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise InvalidJsonError("invalid_json", f"line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise InvalidJsonError("invalid_json", f"nested deeper than {MAX_DEPTH} levels") from None
    except InvalidJsonError:
        raise
    except ValueError as exc:  # e.g. an integer literal beyond int_max_str_digits
        raise InvalidJsonError("invalid_json", str(exc)[:200]) from None
    # Both checks are skipped on the hot path by cheap substring tests: depth can only exceed
    # MAX_DEPTH if there are that many openers, surrogates only come from \u escapes.
    if text.count("[") + text.count("{") > MAX_DEPTH:
        _check_depth(value)
    if "\\u" in text:
        _check_strings(value)
    return value
