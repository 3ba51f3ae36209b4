"""Images at the edge: real small images pass; non-images, oversized images and decompression
bombs are refused with ``invalid_image``; a uri is only checked syntactically."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.edge import Rejection, decode_event
from schemas.events import UploadEvent
from schemas.limits import Limits
from tests.schemas.strategies import FAST, LIMITS, NOW_MS, bomb_png, encode, png_bytes

UPLOAD: dict[str, Any] = {
    "type": "upload",
    "event_id": "e-1",
    "user_id": "studio",
    "item_id": "i-1",
    "ts": 1_700_000_000_000,
    "schema_version": 1,
    "title": "A title",
}


def upload_with(image: Any, limits: Limits = LIMITS) -> UploadEvent | Rejection:
    raw = encode({**UPLOAD, "image": image})
    result = decode_event(raw, key=b"studio", topic="events.upload", limits=limits, now_ms=NOW_MS)
    assert not isinstance(result, Rejection) or result.reason != "internal", str(result)
    return result  # type: ignore[return-value]


def b64(data: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(data).decode()}


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_small_real_images_are_accepted(fmt: str) -> None:
    result = upload_with(b64(png_bytes(5, 4, fmt)))
    assert isinstance(result, UploadEvent), str(result)
    assert result.image is not None and result.image.data() == png_bytes(5, 4, fmt)


@FAST
@given(st.binary(min_size=1, max_size=300))
def test_non_images_are_refused(data: bytes) -> None:
    result = upload_with(b64(data))
    assert isinstance(result, Rejection) and result.reason == "invalid_image", str(result)
    assert result.detail.startswith("image.b64: ")


def test_unsupported_format_is_refused() -> None:
    result = upload_with(b64(png_bytes(2, 2, "GIF")))
    assert isinstance(result, Rejection) and result.reason == "invalid_image"


def test_truncated_png_is_refused() -> None:
    data = png_bytes(64, 64)
    result = upload_with(b64(data[: len(data) // 2]))
    assert isinstance(result, Rejection) and result.reason == "invalid_image"


@pytest.mark.parametrize(("w", "h"), [(100_000, 100_000), (20_000, 1_000), (65_535, 65_535)])
def test_decompression_bomb_is_refused(w: int, h: int) -> None:
    data = bomb_png(w, h)
    assert len(data) < 200  # tiny file, huge declared image
    result = upload_with(b64(data))
    assert isinstance(result, Rejection) and result.reason == "invalid_image", str(result)
    assert "pixel" in result.detail


def test_pixel_and_byte_limits_are_configurable() -> None:
    data = png_bytes(50, 50)
    assert isinstance(upload_with(b64(data)), UploadEvent)
    few_pixels = upload_with(b64(data), Limits(max_image_pixels=2_499))
    assert isinstance(few_pixels, Rejection) and few_pixels.reason == "invalid_image"
    few_bytes = upload_with(b64(data), Limits(max_image_bytes=len(data) - 1))
    assert isinstance(few_bytes, Rejection)
    assert few_bytes.reason in {"invalid_image", "limit_exceeded"}


@pytest.mark.parametrize("b64_text", ["", "A", "AAA", "A===", "AAAA\n", "AA AA", "AA==AA==", "a-_b", "É" * 4])
def test_malformed_base64_is_an_invalid_field(b64_text: str) -> None:
    result = upload_with({"b64": b64_text})
    assert isinstance(result, Rejection) and result.reason == "invalid_field", str(result)
    assert result.detail.startswith("image.b64: ")


@pytest.mark.parametrize(
    "uri",
    [
        "https://cdn.example.com/i/1.png",
        "http://10.0.0.1:8080/x.jpg?sig=a%20b#frag",
        "s3://bucket/key/with/slashes.webp",
        "gs://bucket/k",
        "https://[::1]/x",
    ],
)
def test_allowed_uris_are_accepted_without_fetching(uri: str) -> None:
    result = upload_with({"uri": uri})
    assert isinstance(result, UploadEvent), str(result)
    assert result.image is not None and result.image.uri == uri and result.image.data() is None


@pytest.mark.parametrize(
    "uri",
    [
        "file:///etc/passwd",
        "data:image/png;base64,iVBORw0KGgo=",
        "javascript:alert(1)",
        "ftp://host/x.png",
        "HTTPS://host/x.png",
        "https://",
        "https:///x",
        "//host/x.png",
        "https://host/a b",
        "https://host/x\n",
        "https://hóst/x",
        "https://host/" + "a" * 2048,
        "",
    ],
)
def test_disallowed_or_malformed_uris_are_refused(uri: str) -> None:
    result = upload_with({"uri": uri})
    assert isinstance(result, Rejection) and result.reason == "invalid_field", str(result)
    assert result.detail.startswith("image.uri: ")


@pytest.mark.parametrize(
    "image",
    [{}, {"b64": None}, {"uri": None}, {"b64": "AAAA", "uri": "https://a/b"}, "https://a", [], 1],
)
def test_image_must_be_an_object_with_exactly_one_source(image: Any) -> None:
    result = upload_with(image)
    assert isinstance(result, Rejection) and result.reason == "invalid_field", str(result)
    assert result.detail.startswith("image")


def test_image_null_means_no_image_and_unknown_image_members_are_kept() -> None:
    assert isinstance(upload_with(None), UploadEvent)
    result = upload_with({"uri": "https://a/b.png", "mime": "image/png"})
    assert isinstance(result, UploadEvent) and result.image is not None
    assert result.image.extra == {"mime": "image/png"}
    assert b'"mime":"image/png"' in result.to_json_bytes()
