"""Image embeddings: a built-in hand-crafted descriptor, or a user-supplied vision model.

No pretrained vision weights are available offline, so the default encoder is an honest,
training-free descriptor (:class:`DescriptorImageEncoder`, 256-d):

* colour: soft HSV histograms (12 hue bins weighted by saturation, 6 saturation, 6 value) on a
  2x2 grid -> 96 values;
* shape: histograms of gradient orientation (9 unsigned bins, weighted by gradient magnitude,
  HOG-like) on a 4x4 grid -> 144 values;
* layout: the 4x4 mean-intensity thumbnail, zero-mean -> 16 values.

Each block is square-rooted (Hellinger) and L2-normalised, and the concatenation is
L2-normalised. It captures colour, texture and coarse layout, so near-duplicates (re-encoded,
slightly resized) land close together and different pictures far apart. It knows nothing about
semantics ("a cat"), which a real vision model should supply: set ``image_model_path`` (see
:mod:`encoders.image_models`) and :func:`build_image_encoder` loads it instead.

Every encoder takes encoded bytes (JPEG/PNG/WebP) and decodes them with
:func:`schemas.imaging.decode_image`, which raises :class:`schemas.imaging.ImageError` on bad
input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from encoders.errors import ModelLoadError
from encoders.pixels import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, to_tensor
from schemas.imaging import decode_image


@runtime_checkable
class ImageEncoder(Protocol):
    """What the stream needs from an image encoder."""

    @property
    def dim(self) -> int:
        """Width of the returned vectors."""
        ...

    def encode(self, images: Sequence[bytes]) -> np.ndarray:
        """Encoded images -> ``float32 [N, dim]`` unit vectors (raises ``ImageError``)."""
        ...


@dataclass(frozen=True, slots=True)
class DescriptorConfig:
    """Layout of the hand-crafted descriptor (defaults give 256 dimensions).

    Attributes:
        size: Images are resized to ``size`` x ``size`` before description.
        colour_grid: Cells per side of the colour-histogram grid.
        hue_bins: Hue bins (circular).
        sat_bins: Saturation bins.
        val_bins: Value (brightness) bins.
        hog_grid: Cells per side of the gradient-orientation grid.
        orientations: Unsigned orientation bins.
        layout_grid: Cells per side of the intensity thumbnail.
    """

    size: int = 128
    colour_grid: int = 2
    hue_bins: int = 12
    sat_bins: int = 6
    val_bins: int = 6
    hog_grid: int = 4
    orientations: int = 9
    layout_grid: int = 4

    @property
    def dim(self) -> int:
        """Descriptor width."""
        colour = self.colour_grid**2 * (self.hue_bins + self.sat_bins + self.val_bins)
        return colour + self.hog_grid**2 * self.orientations + self.layout_grid**2


def _soft_hist(values: torch.Tensor, bins: int, weight: torch.Tensor, circular: bool) -> torch.Tensor:
    """Linear-interpolated histogram maps ``[B, bins, H, W]`` of ``values`` in ``[0, 1]``.

    Soft assignment splits each pixel between its two nearest bins, so a value near a bin edge
    (JPEG noise) moves the histogram a little instead of flipping it.
    """
    pos = values * bins - 0.5
    lo = torch.floor(pos)
    frac = pos - lo
    lo_i = lo.long()
    hi_i = lo_i + 1
    if circular:
        lo_i, hi_i = lo_i % bins, hi_i % bins
    else:
        lo_i, hi_i = lo_i.clamp(0, bins - 1), hi_i.clamp(0, bins - 1)
    b, h, w = values.shape
    out = values.new_zeros(b, bins, h * w)
    out.scatter_add_(1, lo_i.view(b, 1, -1), ((1 - frac) * weight).view(b, 1, -1))
    out.scatter_add_(1, hi_i.view(b, 1, -1), (frac * weight).view(b, 1, -1))
    return out.view(b, bins, h, w)


def _cells(maps: torch.Tensor, grid: int) -> torch.Tensor:
    """Sum of each map over a ``grid`` x ``grid`` partition -> ``[B, grid*grid, C]``."""
    pooled = torch.nn.functional.adaptive_avg_pool2d(maps, grid)
    return pooled.flatten(2).transpose(1, 2)


def _hellinger(block: torch.Tensor) -> torch.Tensor:
    """Per-cell L1 normalise, square root, then L2 over the block: ``[B, cells, C] -> [B, K]``."""
    block = block / block.sum(-1, keepdim=True).clamp(min=1e-12)
    flat = block.sqrt().flatten(1)
    return torch.nn.functional.normalize(flat, dim=1)


def describe(x: torch.Tensor, cfg: DescriptorConfig) -> torch.Tensor:
    """Descriptor of a batch ``[B, 3, H, W]`` in ``[0, 1]`` -> ``[B, cfg.dim]`` unit vectors."""
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    maxc, _ = x.max(1)
    minc, _ = x.min(1)
    delta = maxc - minc
    sat = torch.where(maxc > 0, delta / maxc.clamp(min=1e-12), torch.zeros_like(maxc))
    safe = delta.clamp(min=1e-12)
    hue = torch.where(
        maxc == r,
        ((g - b) / safe) % 6,
        torch.where(maxc == g, (b - r) / safe + 2, (r - g) / safe + 4),
    )
    hue = torch.where(delta > 0, hue / 6.0, torch.zeros_like(hue)) % 1.0
    ones = torch.ones_like(maxc)
    colour = torch.cat(
        [
            # Hue of grey pixels is noise: weight it by saturation.
            _cells(_soft_hist(hue, cfg.hue_bins, sat, circular=True), cfg.colour_grid),
            _cells(_soft_hist(sat, cfg.sat_bins, ones, circular=False), cfg.colour_grid),
            _cells(_soft_hist(maxc, cfg.val_bins, ones, circular=False), cfg.colour_grid),
        ],
        dim=2,
    )

    gray = (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(1)
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([sobel, sobel.T]).unsqueeze(1)
    grad = torch.nn.functional.conv2d(torch.nn.functional.pad(gray, (1, 1, 1, 1), mode="replicate"), kernels)
    mag = grad.square().sum(1).sqrt()
    angle = torch.atan2(grad[:, 1], grad[:, 0]) % math.pi / math.pi  # unsigned, [0, 1)
    hog_cells = _cells(_soft_hist(angle, cfg.orientations, mag, circular=True), cfg.hog_grid)
    # HOG keeps the relative energy of cells (an empty sky stays weak next to a busy street):
    # square root per value, then one L2 norm over the whole block.
    hog = torch.nn.functional.normalize(hog_cells.clamp(min=0).sqrt().flatten(1), dim=1)

    layout = torch.nn.functional.adaptive_avg_pool2d(gray, cfg.layout_grid).flatten(1)
    layout = torch.nn.functional.normalize(layout - layout.mean(1, keepdim=True), dim=1)

    cat = torch.cat([_hellinger(colour), hog, 0.5 * layout], dim=1)
    return torch.nn.functional.normalize(cat, dim=1)


class DescriptorImageEncoder:
    """The built-in training-free image descriptor (see the module docstring).

    Args:
        config: Descriptor layout.
        max_bytes: Largest accepted encoded image.
        max_pixels: Largest accepted ``width * height``.
    """

    def __init__(
        self,
        config: DescriptorConfig | None = None,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.config = config or DescriptorConfig()
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels

    @property
    def dim(self) -> int:
        """Descriptor width (256 by default)."""
        return self.config.dim

    def encode(self, images: Sequence[bytes]) -> np.ndarray:
        """Describe encoded images.

        Returns:
            ``float32 [len(images), dim]`` unit vectors.

        Raises:
            ImageError: An image is empty, too large, corrupt or of another format.
        """
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        s = self.config.size
        batch = torch.stack(
            [
                to_tensor(decode_image(d, max_bytes=self.max_bytes, max_pixels=self.max_pixels), (s, s))
                for d in images
            ]
        )
        with torch.inference_mode():
            return describe(batch, self.config).numpy().astype(np.float32)


def build_image_encoder(
    path: Path | None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ImageEncoder:
    """Pick the image encoder from configuration.

    Args:
        path: ``None`` -> the built-in descriptor; ``*.pt``/``*.ts``/``*.torchscript`` ->
            :class:`encoders.image_models.TorchScriptImageEncoder`; ``*.pt2`` ->
            :class:`encoders.image_models.ExportedProgramImageEncoder`; ``*.onnx`` ->
            :class:`encoders.image_models.OnnxImageEncoder` (needs ``onnxruntime``).
        max_bytes: Largest accepted encoded image.
        max_pixels: Largest accepted ``width * height``.

    Raises:
        ModelLoadError: Unknown suffix, missing file, or a model that fails its contract probe.
        BackendUnavailableError: An ONNX model without ``onnxruntime`` installed.
    """
    if path is None:
        return DescriptorImageEncoder(max_bytes=max_bytes, max_pixels=max_pixels)
    from encoders import image_models  # torch.jit / onnxruntime only when a model is configured

    suffix = path.suffix.lower()
    if suffix in image_models.TORCHSCRIPT_SUFFIXES:
        return image_models.TorchScriptImageEncoder(path, max_bytes=max_bytes, max_pixels=max_pixels)
    if suffix in image_models.EXPORT_SUFFIXES:
        return image_models.ExportedProgramImageEncoder(path, max_bytes=max_bytes, max_pixels=max_pixels)
    if suffix == ".onnx":
        return image_models.OnnxImageEncoder(path, max_bytes=max_bytes, max_pixels=max_pixels)
    raise ModelLoadError(
        f"{path}: unknown image model type {suffix!r}; use .pt/.ts/.torchscript, .pt2 or .onnx"
    )
