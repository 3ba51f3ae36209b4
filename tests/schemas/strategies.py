"""Hypothesis strategies and helpers shared by the schema tests: valid events and mutations."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from PIL import Image

from schemas.events import MAX_TS_MS, MIN_TS_MS
from schemas.limits import Limits

NOW_MS = 1_750_000_000_000
LIMITS = Limits()
#: Modest example counts: the whole suite must stay well under a minute on 2 cores.
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
THOROUGH = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ids = st.text(min_size=1, max_size=12)
timestamps = st.integers(MIN_TS_MS, NOW_MS + 3_600_000)
finite = st.floats(allow_nan=False, allow_infinity=False)
json_scalars = st.none() | st.booleans() | st.integers() | finite | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
KNOWN = {
    "type", "event_id", "user_id", "item_id", "ts", "schema_version", "weight", "dwell_ms",
    "text", "rating", "title", "description", "tags", "image", "features",
}  # fmt: skip
extras = st.dictionaries(
    st.text(min_size=1, max_size=8).filter(lambda k: k not in KNOWN), json_values, max_size=3
)


def png_bytes(width: int = 3, height: int = 2, fmt: str = "PNG") -> bytes:
    """A small real image."""
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(buf, format=fmt)
    return buf.getvalue()


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header declares a huge greyscale image (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


TINY_PNG_B64 = base64.b64encode(png_bytes()).decode()


def _common(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "type": st.just(kind),
            "event_id": ids,
            "user_id": ids,
            "item_id": ids,
            "ts": timestamps,
            "schema_version": st.just(1),
        }
    )


def _merge(*parts: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in parts:
        out.update(p)
    return out


clicks = st.builds(
    _merge,
    _common("click"),
    st.fixed_dictionaries(
        {},
        optional={
            "weight": st.floats(min_value=0.0, exclude_min=True, max_value=1e6) | st.none(),
            "dwell_ms": st.integers(0, 10**9) | st.none(),
        },
    ),
    extras,
)
reviews = st.builds(
    _merge,
    _common("review"),
    st.fixed_dictionaries(
        {"text": st.text(max_size=40)},
        optional={"rating": st.floats(0, 5) | st.integers(0, 5) | st.none()},
    ),
    extras,
)
uris = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}{path}",
    st.sampled_from(["https", "http", "s3", "gs"]),
    st.from_regex(r"[a-z0-9.-]{1,12}", fullmatch=True),
    st.from_regex(r"(/[A-Za-z0-9._~%-]{0,10}){0,3}", fullmatch=True),
)
images = st.one_of(
    st.none(),
    st.just({"b64": TINY_PNG_B64}),
    st.builds(lambda u: {"uri": u}, uris),
)
uploads = st.builds(
    _merge,
    _common("upload"),
    st.fixed_dictionaries(
        {"title": st.text(min_size=1, max_size=30)},
        optional={
            "description": st.text(max_size=40) | st.none(),
            "tags": st.lists(st.text(min_size=1, max_size=10), max_size=4) | st.none(),
            "image": images,
            "features": st.dictionaries(
                st.text(min_size=1, max_size=8),
                st.lists(finite, min_size=1, max_size=7),
                max_size=3,
            )
            | st.none(),
        },
    ),
    extras,
)
events = st.one_of(clicks, reviews, uploads)
#: Uploads that have every optional member, for mutations focused on nested members.
full_uploads = st.builds(
    _merge,
    _common("upload"),
    st.fixed_dictionaries(
        {
            "title": st.text(min_size=1, max_size=30),
            "description": st.text(max_size=40),
            "tags": st.lists(st.text(min_size=1, max_size=10), min_size=1, max_size=4),
            "image": images.filter(lambda i: i is not None),
            "features": st.dictionaries(
                st.text(min_size=1, max_size=8),
                st.lists(finite, min_size=1, max_size=7),
                min_size=1,
                max_size=3,
            ),
        }
    ),
)


def recs_lists() -> st.SearchStrategy[dict[str, Any]]:
    """Valid ``recs.updated`` documents (scores sorted descending)."""
    items = st.lists(st.tuples(ids, finite), max_size=8).map(
        lambda xs: [{"item_id": i, "score": s} for i, s in sorted(xs, key=lambda x: -x[1])]
    )
    return st.builds(
        _merge,
        st.fixed_dictionaries(
            {
                "user_id": ids,
                "items": items,
                "trigger_event_id": ids,
                "model_version": ids,
                "generated_at": timestamps,
                "schema_version": st.just(1),
            }
        ),
        extras,
    )


def encode(obj: Any) -> bytes:
    """Compact JSON bytes as a producer would send them."""
    return json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8")


#: Values chosen to sit on or just past a contract boundary.
EDGY: list[Any] = [
    None, True, False, 0, -1, 1, 1.0, 1.5, 5, 5.0, 5.5, -0.0, 2, "", "x", "1", [], {}, [1],
    {"b64": ""}, MIN_TS_MS - 1, MIN_TS_MS, MAX_TS_MS, MAX_TS_MS + 1, 2**53, 1e20, 10**400,
    1.7976931348623157e308,
    "x" * 257, "x" * 1001, "x" * 10_001, ["x"] * 257, "AAAA", "AAA=", "AA==", "A===", "AAAA\n",
    "https://a/b", "https://a/b\n", "HTTPS://a", "file:///etc/passwd", "data:image/png;base64,AA",
    "https://", "https://a b", "s3://bucket/key", "javascript:alert(1)", {"uri": "https://a/b"},
    {"b64": TINY_PNG_B64, "uri": "https://a"}, {"b64": None}, {"uri": "ftp://a/b"},
    {"v": [1.0]}, {"v": []}, {"": [1]}, {"v": [True]}, {"v": ["1"]},
    [{"item_id": "a", "score": 2}, {"item_id": "b", "score": 1}], [{"item_id": "a"}],
    [{"item_id": "", "score": 1}], [{"item_id": "a", "score": True}], "click", "upload", "review",
]  # fmt: skip


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _get(obj: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        obj = obj[p]
    return obj


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[dict[str, Any]], focus: str | None = None) -> Any:
    """A valid document with one random change: replace, delete or add a member.

    ``focus`` restricts the change to one top-level member and what it contains.
    """
    doc = json.loads(encode(draw(base)))  # deep copy
    paths = _paths(doc)[1:]  # replacing the whole document is covered by the edge tests
    if focus is not None and focus in doc:
        paths = [p for p in paths if p[0] == focus]
    path = draw(st.sampled_from(paths))
    new_value = draw(st.sampled_from(EDGY) | json_values)
    action = draw(st.sampled_from(["replace", "delete", "add"]))
    parent = _get(doc, path[:-1])
    if action == "delete":
        del parent[path[-1]]
    elif action == "add" and isinstance(parent, dict):
        key = draw(st.sampled_from(sorted(KNOWN | {"b64", "uri", "score", "zz"})) | st.text(max_size=4))
        parent[key] = new_value
    else:
        parent[path[-1]] = new_value
    return doc
