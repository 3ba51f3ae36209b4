"""Safe decoding of untrusted image bytes, shared by edge validation and the image encoder.

Only JPEG, PNG and WebP are accepted. The pixel count is read from the header and checked
before any pixel data is decoded, so a decompression bomb is refused without allocating it.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})


class ImageError(ValueError):
    """Image bytes were refused; ``str(exc)`` is a reason fit for a dead-letter record."""


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """Decode JPEG/PNG/WebP bytes into an RGB image, refusing anything unsafe.

    Args:
        data: Encoded image bytes from an untrusted source.
        max_bytes: Largest accepted encoded size.
        max_pixels: Largest accepted width * height.

    Returns:
        The fully decoded image, converted to RGB.

    Raises:
        ImageError: Empty, too large, not an image, an unsupported format, too many pixels, or
            corrupt data.
    """
    if not data:
        raise ImageError("image is empty")
    if len(data) > max_bytes:
        raise ImageError(f"image is {len(data)} bytes, limit {max_bytes}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=sorted(ALLOWED_FORMATS))
            width, height = img.size
            if width <= 0 or height <= 0:
                raise ImageError("image has no pixels")
            if width * height > max_pixels:
                raise ImageError(f"image is {width}x{height} pixels, limit {max_pixels}")
            img.load()
            return img.convert("RGB")
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError("not a JPEG, PNG or WebP image") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError("image exceeds the decompression-bomb pixel limit") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageError(f"corrupt image: {exc}") from exc
