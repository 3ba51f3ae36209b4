"""Image encoders: the built-in descriptor, bad input, and user-supplied TorchScript models."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from encoders.errors import BackendUnavailableError, ModelLoadError
from encoders.image import DescriptorImageEncoder, ImageEncoder, build_image_encoder
from encoders.image_models import (
    ExportedProgramImageEncoder,
    TorchScriptImageEncoder,
    VisionInputConfig,
)
from schemas.imaging import ImageError

# torch >= 2.10 flags torch.jit.script as deprecated; the TorchScript backend is still required.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")


def encode(img: Image.Image, fmt: str = "PNG", **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def synthetic_images() -> dict[str, Image.Image]:
    """Gradients, shapes and textures: different colour, layout and edge statistics."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 256)
    out = {
        "hgrad": np.stack(
            [np.tile(ramp, (256, 1)), np.tile(ramp[::-1], (256, 1)), np.full((256, 256), 128)], -1
        ),
        "vgrad": np.stack(
            [np.tile(ramp[:, None], (1, 256)), np.full((256, 256), 60), np.tile(ramp[::-1, None], (1, 256))],
            -1,
        ),
        "noise": rng.integers(0, 255, (256, 256, 3)),
        "blocks": np.kron(rng.integers(0, 255, (16, 16, 3)), np.ones((16, 16, 1))),
        "stripes": np.repeat((((np.indices((256, 256)).sum(0) // 16) % 2) * 200 + 30)[..., None], 3, axis=2),
    }
    imgs = {k: Image.fromarray(v.astype(np.uint8)) for k, v in out.items()}
    circle = Image.new("RGB", (256, 256), (20, 30, 200))
    ImageDraw.Draw(circle).ellipse((60, 60, 190, 190), fill=(250, 220, 0))
    shapes = Image.new("RGB", (256, 256), (240, 240, 240))
    draw = ImageDraw.Draw(shapes)
    draw.rectangle((30, 100, 220, 160), fill=(200, 0, 0))
    draw.polygon([(128, 10), (20, 90), (236, 90)], fill=(0, 120, 0))
    return {**imgs, "circle": circle, "shapes": shapes}


def test_descriptor_shape_and_norm() -> None:
    enc = DescriptorImageEncoder()
    assert isinstance(enc, ImageEncoder)
    out = enc.encode([encode(i) for i in synthetic_images().values()])
    assert out.shape == (7, enc.dim) and enc.dim == 256 and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert enc.encode([]).shape == (0, 256)


def test_near_duplicates_closer_than_unrelated() -> None:
    enc = DescriptorImageEncoder()
    imgs = synthetic_images()
    orig = enc.encode([encode(i) for i in imgs.values()])
    # Near-duplicate: slightly resized (aspect changed too) and re-encoded as lossy JPEG/WebP.
    dups = enc.encode(
        [encode(i.resize((230, 236)), "JPEG", quality=70) for i in imgs.values()]
        + [encode(i.resize((300, 300)), "WEBP", quality=80) for i in imgs.values()]
    )
    n = len(imgs)
    for d in (dups[:n], dups[n:]):
        sims = d @ orig.T
        for i in range(n):
            others = np.delete(sims[i], i)
            assert sims[i, i] > others.max() + 0.05, list(imgs)[i]


def test_deterministic() -> None:
    enc = DescriptorImageEncoder()
    data = encode(synthetic_images()["circle"], "JPEG")
    assert enc.encode([data]).tobytes() == enc.encode([data]).tobytes()


@pytest.mark.parametrize(
    "data",
    [b"", b"definitely not an image", encode(Image.new("RGB", (8, 8)), "PNG")[:40], b"GIF89a...."],
)
def test_bad_bytes_raise_image_error(data: bytes) -> None:
    with pytest.raises(ImageError):
        DescriptorImageEncoder().encode([data])


def test_limits_enforced() -> None:
    big = encode(Image.new("RGB", (200, 200), (1, 2, 3)))
    with pytest.raises(ImageError):
        DescriptorImageEncoder(max_pixels=100 * 100).encode([big])
    with pytest.raises(ImageError):
        DescriptorImageEncoder(max_bytes=10).encode([big])


class _MeanColour(torch.nn.Module):
    """Returns the per-channel mean of its input: exposes the preprocessing contract."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, stride=2)
        self.fc = torch.nn.Linear(8, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))


def test_torchscript_backend_by_path(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = tmp_path / "vision.pt"
    torch.jit.script(_Tiny()).save(str(path))
    enc = build_image_encoder(path)
    assert isinstance(enc, TorchScriptImageEncoder) and enc.dim == 16
    imgs = [encode(i) for i in synthetic_images().values()]
    out = enc.encode(imgs)
    assert out.shape == (7, 16) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(enc.encode(imgs[:1]), out[:1], atol=1e-6)  # batch-independent


def test_torchscript_input_contract(tmp_path: Path) -> None:
    path = tmp_path / "mean.ts"
    torch.jit.script(_MeanColour()).save(str(path))
    cfg = VisionInputConfig(height=64, width=32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0))
    enc = TorchScriptImageEncoder(path, cfg)
    colour = (255, 0, 51)
    out = enc.encode([encode(Image.new("RGB", (300, 100), colour))])[0]
    expected = (np.array(colour) / 255.0 - 0.5) / np.array(cfg.std)
    np.testing.assert_allclose(out, expected / np.linalg.norm(expected), atol=1e-5)


def test_exported_program_backend(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = tmp_path / "vision.pt2"
    n = torch.export.Dim("n", min=1, max=64)
    prog = torch.export.export(_Tiny(), (torch.zeros(2, 3, 224, 224),), dynamic_shapes={"x": {0: n}})
    torch.export.save(prog, str(path))
    enc = build_image_encoder(path)
    assert isinstance(enc, ExportedProgramImageEncoder) and enc.dim == 16
    out = enc.encode([encode(i) for i in synthetic_images().values()])
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_model_breaking_the_contract_fails_at_load(tmp_path: Path) -> None:
    class Flat(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten()

    path = tmp_path / "flat.pt"
    torch.jit.script(Flat()).save(str(path))
    with pytest.raises(ModelLoadError):
        build_image_encoder(path)


def test_factory_errors(tmp_path: Path) -> None:
    assert isinstance(build_image_encoder(None), DescriptorImageEncoder)
    with pytest.raises(ModelLoadError):
        build_image_encoder(tmp_path / "missing.pt")
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(ModelLoadError):
        build_image_encoder(tmp_path / "model.bin")


def test_onnx_without_runtime_is_a_clear_error(tmp_path: Path) -> None:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        (tmp_path / "m.onnx").write_bytes(b"not really onnx")
        with pytest.raises(BackendUnavailableError):
            build_image_encoder(tmp_path / "m.onnx")
    else:
        pytest.skip("onnxruntime installed; the ONNX path needs a real exported model")
