"""Pixels to tensors, and the default image limits, shared by every image encoder.

A module of its own so that :mod:`encoders.image` and :mod:`encoders.image_models` (loaded only
when a user model is configured) both import it without importing each other.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from schemas.limits import Limits

#: The edge's default limits (:class:`schemas.limits.Limits`, equal to the settings' defaults).
DEFAULT_MAX_BYTES: int = Limits().max_image_bytes
DEFAULT_MAX_PIXELS: int = Limits().max_image_pixels


def to_tensor(img: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """RGB PIL image -> ``float32 [3, H, W]`` in ``[0, 1]``, resized to ``size`` (W, H)."""
    # reducing_gap: decimate big images first (fast, bounded memory), then resample properly.
    small = img.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    arr = np.asarray(small, dtype=np.float32) / 255.0
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)
