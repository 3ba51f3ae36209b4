"""The JSON Schema files and the typed records must give the same verdict on the same document.

The corpus is hypothesis-generated valid documents plus one-change mutations of them (replace,
delete or add a member anywhere, with values chosen on contract boundaries). Each document goes
through JSON bytes and the strict parser first, so both sides see exactly what a consumer sees.
The only rule JSON Schema cannot state, the descending order of ``recs.updated`` items, is
checked separately (the schema notes it in a ``$comment``). The files' patterns are the portable
form of the code's (``$`` and a newline guard instead of a lookahead; tests/schemas/test_portable.py
runs them in Ajv and Go).
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.deadletter import REASON_PATTERN, SHA256_PATTERN, DeadLetter
from schemas.edge import Rejection, check_event_object
from schemas.events import (
    B64_PATTERN,
    EVENT_CLASSES,
    MAX_RECS_ITEMS,
    MAX_TS_MS,
    MIN_TS_MS,
    URI_PATTERN,
    RecsUpdated,
    is_base64,
)
from schemas.jsonio import loads_strict
from schemas.registry import SCHEMA_FILES, get_validator, load_example, load_schema
from tests.schemas.strategies import (
    FAST,
    LIMITS,
    THOROUGH,
    clicks,
    encode,
    full_uploads,
    mutated,
    recs_lists,
    reviews,
    uploads,
)

_b64s = st.binary(max_size=8).map(lambda b: base64.b64encode(b).decode())


def _roundtrip(doc: Any) -> Any:
    return loads_strict(encode(doc).decode("utf-8"))


def _record_ok(kind: str, doc: Any) -> bool:
    if kind in EVENT_CLASSES:
        result = check_event_object(doc, limits=LIMITS)
        return not isinstance(result, Rejection) and result.type == kind
    cls: type[RecsUpdated] | type[DeadLetter] = RecsUpdated if kind == "recs_updated" else DeadLetter
    try:
        cls.model_validate(doc, context=LIMITS)
    except ValidationError:
        return False
    return True


def _descending(doc: Any) -> bool:
    scores = [item["score"] for item in doc["items"]]
    return all(a >= b for a, b in itertools.pairwise(scores))


def _assert_agree(kind: str, doc: Any) -> None:
    doc = _roundtrip(doc)
    schema_ok = get_validator(kind).is_valid(doc)
    if kind == "recs_updated" and schema_ok:
        schema_ok = _descending(doc)  # the one rule outside JSON Schema
    record_ok = _record_ok(kind, doc)
    assert schema_ok == record_ok, (
        f"{kind}: schema says {schema_ok}, records say {record_ok} for {json.dumps(doc)[:500]}; "
        f"schema errors: {[e.message[:120] for e in get_validator(kind).iter_errors(doc)][:3]}; "
        f"record: {check_event_object(doc, limits=LIMITS) if kind in EVENT_CLASSES else ''}"
    )


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_schema_files_are_valid_draft_2020_12(name: str) -> None:
    schema = load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    get_validator(name)  # raises SchemaFileError when the file is not a valid schema


def _portable(pattern: str) -> str:
    """The file form of a code pattern: ``$`` for the end-of-text lookahead."""
    assert pattern.endswith(r"(?![\s\S])")
    return pattern.removesuffix(r"(?![\s\S])") + "$"


def _file_pattern(prop: dict[str, Any]) -> str:
    assert prop["not"] == {"type": "string", "pattern": "\\n"}, prop  # the newline guard
    return str(prop["pattern"])


def test_schema_files_use_the_code_constants() -> None:
    upload = load_schema("upload")
    image = upload["$defs"]["image"]["properties"]
    assert _file_pattern(image["b64"]) == _portable(B64_PATTERN)
    assert _file_pattern(image["uri"]) == _portable(URI_PATTERN)
    assert upload["properties"]["title"]["maxLength"] == LIMITS.max_title_chars
    assert load_schema("review")["properties"]["text"]["maxLength"] == LIMITS.max_text_chars
    for name in ("click", "upload", "review"):
        s = load_schema(name)
        assert s["$defs"]["epoch_ms"]["minimum"] == MIN_TS_MS
        assert s["$defs"]["epoch_ms"]["maximum"] == MAX_TS_MS
        assert s["$defs"]["id"]["maxLength"] == LIMITS.max_id_chars
    assert load_schema("recs_updated")["properties"]["items"]["maxItems"] == MAX_RECS_ITEMS
    dl = load_schema("dead_letter")["properties"]
    assert _file_pattern(dl["reason"]) == _portable(REASON_PATTERN)
    assert _file_pattern(dl["value_sha256"]) == _portable(SHA256_PATTERN)
    assert _file_pattern(dl["key_b64"]) == _file_pattern(dl["value_b64"]) == _portable(B64_PATTERN)


@THOROUGH
@given(st.text(alphabet="AZaz09+/=\n -_é", max_size=14) | _b64s)
def test_fast_base64_check_matches_the_schema_pattern(text: str) -> None:
    assert is_base64(text, allow_empty=True) == (re.search(B64_PATTERN, text) is not None)


@pytest.mark.parametrize("name", ["click", "upload", "review", "recs_updated"])
def test_examples_are_valid_on_both_sides(name: str) -> None:
    doc = json.loads(load_example(name))
    assert get_validator(name).is_valid(doc)
    assert _record_ok(name, doc)


@FAST
@given(st.one_of(clicks, reviews, uploads))
def test_valid_events_are_valid_on_both_sides(doc: dict[str, Any]) -> None:
    assert get_validator(doc["type"]).is_valid(_roundtrip(doc))
    _assert_agree(doc["type"], doc)


@pytest.mark.parametrize(
    ("field", "value"),
    [("weight", True), ("ts", 1.7e12), ("schema_version", 1.0), ("schema_version", 2),
     ("dwell_ms", 2.5), ("user_id", "x" * 257), ("item_id", "")],
)  # fmt: skip
def test_classic_cases_get_the_same_verdict(field: str, value: Any) -> None:
    doc = json.loads(load_example("click"))
    doc[field] = value
    _assert_agree("click", doc)


@THOROUGH
@given(st.sampled_from(["click", "review", "upload"]), st.data())
def test_mutated_events_get_the_same_verdict(kind: str, data: Any) -> None:
    base = {"click": clicks, "review": reviews, "upload": uploads}[kind]
    _assert_agree(kind, data.draw(mutated(base)))


@THOROUGH
@given(st.sampled_from(["title", "description", "tags", "image", "features"]), st.data())
def test_mutated_upload_members_get_the_same_verdict(focus: str, data: Any) -> None:
    _assert_agree("upload", data.draw(mutated(full_uploads, focus)))


@FAST
@given(st.data())
def test_recs_updated_verdicts_agree(data: Any) -> None:
    doc = data.draw(recs_lists() | mutated(recs_lists()))
    _assert_agree("recs_updated", doc)


def test_unsorted_recs_are_schema_valid_but_refused_by_the_record() -> None:
    doc = json.loads(load_example("recs_updated"))
    doc["items"].reverse()
    assert get_validator("recs_updated").is_valid(doc)
    with pytest.raises(ValidationError, match="must not exceed the previous score"):
        RecsUpdated.model_validate(doc)


def _dead_letters() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "source_topic": st.text(max_size=10),
            "reason": st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
            "detail": st.text(max_size=20),
            "rejected_at": st.integers(MIN_TS_MS, MAX_TS_MS),
            "schema_version": st.just(1),
        },
        optional={
            "partition": st.integers(0, 2**31 - 1) | st.none(),
            "offset": st.integers(0, 2**63 - 1) | st.none(),
            "key_b64": _b64s,
            "value_b64": _b64s,
            "value_size": st.integers(0, 100),
            "value_sha256": st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
            "value_truncated": st.booleans(),
        },
    )


@FAST
@given(st.data())
def test_dead_letter_verdicts_agree(data: Any) -> None:
    doc = data.draw(_dead_letters() | mutated(_dead_letters()))
    _assert_agree("dead_letter", doc)
