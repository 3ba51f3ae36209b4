"""User-supplied vision models: TorchScript, ``torch.export`` programs, or ONNX.

Backend by file suffix: ``.pt``/``.ts``/``.torchscript`` -> ``torch.jit.load``; ``.pt2`` ->
``torch.export.load`` (TorchScript is deprecated in recent torch releases; ``.pt2`` is its
successor); ``.onnx`` -> ``onnxruntime``, only when that optional package is installed.

Input contract (what the model receives):
    ``float32 [N, 3, H, W]``, RGB, channels first. Pixels are scaled to ``[0, 1]``, then
    normalised per channel as ``(x - mean) / std``. Images are resized so the shorter side is
    ``H`` (aspect kept) and centre-cropped to ``H x W``. Defaults: ``H = W = 224`` and the
    ImageNet mean/std, which is what most torchvision / timm / CLIP-style exports expect;
    change them with :class:`VisionInputConfig`.

Output contract:
    ``[N, D]`` floats (any ``D``; a ``[N, D, 1, 1]`` pooled map is flattened). Rows are
    L2-normalised here. The model is probed once with a blank image at load time, so a broken
    export fails at start-up, not on the first event.

Export examples::

    torch.jit.script(model).save("vision.pt")           # or torch.jit.trace
    torch.export.save(torch.export.export(model, (torch.zeros(2, 3, 224, 224),),
                      dynamic_shapes={"x": {0: torch.export.Dim("n", min=1)}}), "vision.pt2")
    torch.onnx.export(model, torch.zeros(1, 3, 224, 224), "vision.onnx",
                      dynamic_axes={"input": {0: "n"}})
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from encoders.errors import BackendUnavailableError, ModelLoadError, ModelOutputError
from encoders.pixels import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, to_tensor
from schemas.imaging import decode_image

TORCHSCRIPT_SUFFIXES = frozenset({".pt", ".ts", ".torchscript"})
EXPORT_SUFFIXES = frozenset({".pt2"})


@dataclass(frozen=True, slots=True)
class VisionInputConfig:
    """Preprocessing of a user-supplied vision model (see the module docstring).

    Attributes:
        height: Input height ``H``.
        width: Input width ``W``.
        mean: Per-channel mean subtracted after scaling to ``[0, 1]``.
        std: Per-channel standard deviation divided by.
        batch_size: Images per forward pass.
    """

    height: int = 224
    width: int = 224
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    batch_size: int = 32


def preprocess(img: Image.Image, cfg: VisionInputConfig) -> torch.Tensor:
    """Resize (shorter side), centre-crop and normalise one image -> ``[3, H, W]``."""
    w, h = img.size
    scale = max(cfg.width / w, cfg.height / h)
    rw, rh = max(cfg.width, round(w * scale)), max(cfg.height, round(h * scale))
    x = to_tensor(img, (rw, rh))
    top, left = (rh - cfg.height) // 2, (rw - cfg.width) // 2
    x = x[:, top : top + cfg.height, left : left + cfg.width]
    mean = torch.tensor(cfg.mean).view(3, 1, 1)
    std = torch.tensor(cfg.std).view(3, 1, 1)
    return (x - mean) / std


class _ExternalImageEncoder:
    """Shared decode -> preprocess -> run -> check -> normalise pipeline."""

    def __init__(
        self,
        path: Path,
        run: Callable[[np.ndarray], np.ndarray],
        config: VisionInputConfig | None,
        max_bytes: int,
        max_pixels: int,
    ) -> None:
        self.path = path
        self.config = config or VisionInputConfig()
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self._run = run
        probe = np.zeros((1, 3, self.config.height, self.config.width), dtype=np.float32)
        try:
            self._dim = self._checked(self._run(probe), 1).shape[1]
        except ModelOutputError as exc:
            raise ModelLoadError(f"{path}: fails the input/output contract: {exc}") from exc
        except Exception as exc:  # any runtime error of a foreign model is a load failure
            raise ModelLoadError(f"{path}: cannot run on a [1, 3, H, W] input: {exc}") from exc

    @property
    def dim(self) -> int:
        """Width of the model's output."""
        return int(self._dim)

    def _checked(self, out: np.ndarray, n: int) -> np.ndarray:
        out = np.asarray(out, dtype=np.float32)
        if out.ndim == 4 and out.shape[2:] == (1, 1):
            out = out[:, :, 0, 0]
        if out.ndim != 2 or out.shape[0] != n:
            raise ModelOutputError(f"{self.path}: expected output [{n}, D], got {list(out.shape)}")
        if not np.isfinite(out).all():
            raise ModelOutputError(f"{self.path}: output has NaN or infinite values")
        return out

    def encode(self, images: Sequence[bytes]) -> np.ndarray:
        """Embed encoded images.

        Returns:
            ``float32 [len(images), dim]`` unit vectors.

        Raises:
            ImageError: Bad image bytes.
            ModelOutputError: The model broke the output contract.
        """
        out = np.zeros((len(images), self.dim), dtype=np.float32)
        bs = max(1, self.config.batch_size)
        for s in range(0, len(images), bs):
            chunk = images[s : s + bs]
            x = torch.stack(
                [
                    preprocess(
                        decode_image(d, max_bytes=self.max_bytes, max_pixels=self.max_pixels),
                        self.config,
                    )
                    for d in chunk
                ]
            )
            y = self._checked(self._run(x.numpy()), len(chunk))
            norms = np.linalg.norm(y, axis=1, keepdims=True)
            out[s : s + len(chunk)] = y / np.maximum(norms, 1e-12)
        return out


class TorchScriptImageEncoder(_ExternalImageEncoder):
    """A TorchScript vision model (``torch.jit.load``), CPU.

    Args:
        path: ``.pt``/``.ts``/``.torchscript`` file.
        config: Preprocessing (defaults: 224x224, ImageNet mean/std).
        max_bytes: Largest accepted encoded image.
        max_pixels: Largest accepted ``width * height``.

    Raises:
        ModelLoadError: Missing or invalid file, or the probe fails.
    """

    def __init__(
        self,
        path: Path,
        config: VisionInputConfig | None = None,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        try:
            with warnings.catch_warnings():
                # torch >= 2.10 flags TorchScript as deprecated; loading a user's existing
                # export is still the supported path for it, so keep the logs quiet.
                warnings.simplefilter("ignore", FutureWarning)
                module = torch.jit.load(str(path), map_location="cpu").eval()
        except (OSError, RuntimeError, ValueError) as exc:
            raise ModelLoadError(f"cannot load TorchScript model {path}: {exc}") from exc

        def run(x: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return np.asarray(module(torch.from_numpy(x)).float().cpu().numpy())

        super().__init__(path, run, config, max_bytes, max_pixels)


class ExportedProgramImageEncoder(_ExternalImageEncoder):
    """A ``torch.export`` program (``.pt2``, batch dimension dynamic), CPU.

    Args:
        path: ``.pt2`` file written by ``torch.export.save``.
        config: Preprocessing (defaults: 224x224, ImageNet mean/std).
        max_bytes: Largest accepted encoded image.
        max_pixels: Largest accepted ``width * height``.

    Raises:
        ModelLoadError: Missing or invalid file, or the probe fails.
    """

    def __init__(
        self,
        path: Path,
        config: VisionInputConfig | None = None,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        try:
            module = torch.export.load(str(path)).module()
        except (OSError, RuntimeError, ValueError) as exc:
            raise ModelLoadError(f"cannot load exported program {path}: {exc}") from exc

        def run(x: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return np.asarray(module(torch.from_numpy(x)).float().cpu().numpy())

        super().__init__(path, run, config, max_bytes, max_pixels)


class OnnxImageEncoder(_ExternalImageEncoder):
    """An ONNX vision model run by ``onnxruntime`` (optional dependency), CPU.

    Args:
        path: ``.onnx`` file with one input ``[N, 3, H, W]`` and the embedding as first output.
        config: Preprocessing.
        max_bytes: Largest accepted encoded image.
        max_pixels: Largest accepted ``width * height``.

    Raises:
        BackendUnavailableError: ``onnxruntime`` is not installed.
        ModelLoadError: Missing or invalid file, or the probe fails.
    """

    def __init__(
        self,
        path: Path,
        config: VisionInputConfig | None = None,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailableError(
                "an .onnx image model needs onnxruntime (pip install onnxruntime)"
            ) from exc
        try:
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelLoadError(f"cannot load ONNX model {path}: {exc}") from exc
        name = session.get_inputs()[0].name

        def run(x: np.ndarray) -> np.ndarray:
            return np.asarray(session.run(None, {name: x})[0])

        super().__init__(path, run, config, max_bytes, max_pixels)
