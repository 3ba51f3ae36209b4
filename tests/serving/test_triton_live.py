"""Served models on the real Triton: semantics, parity with in-process code, hot swap."""

from __future__ import annotations

import asyncio
import io
import shutil
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from recstream.settings import Settings
from serving.client.base import FusionInputs
from serving.client.triton import TritonClient
from serving.errors import InferenceError

pytestmark = pytest.mark.integration


def _repo(settings: Settings) -> Path:
    return settings.stack_dir / "triton" / "model_repository"


def _scene(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (160, 120), tuple(int(c) for c in rng.integers(0, 255, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x, y = (int(v) for v in rng.integers(0, 140, 2))
        draw.rectangle([x, y, x + 30, y + 20], fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    return img


def _bytes(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture()
async def client(stack: Settings):
    async with TritonClient(stack.triton_grpc_url) as c:
        yield c


async def test_paraphrases_are_closer_than_unrelated_sentences(client: TritonClient) -> None:
    emb = await client.encode_text(
        [
            "A man is playing a guitar.",
            "Someone is strumming an acoustic guitar.",
            "Stock markets fell sharply.",
        ]
    )
    assert emb.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.3


async def test_served_text_and_fusion_equal_in_process_outputs(client: TritonClient, stack: Settings) -> None:
    from encoders.text_onnx import build_text_encoder
    from serving.pipelines import FusionPipeline

    texts = ["Toy Story (1995). Genres: Animation, Comedy", "héllo wörld ✓", ""]
    served = await client.encode_text(texts)
    # The encoder the stack serves (RECSTREAM_TEXT_ENCODER), run here: the same vectors.
    local = build_text_encoder(stack.text_encoder, stack.cache_dir).encode(texts)
    np.testing.assert_allclose(served, local, atol=1e-4)

    fusion_dir = max(
        (p for p in (_repo(stack) / "fusion").iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
    )
    pipe = FusionPipeline(fusion_dir / "artefact")
    info = await client.model_info()
    assert info.version == pipe.info.version
    rng = np.random.default_rng(0)
    n = 6
    inputs = FusionInputs(
        local[[0, 1, 2, 0, 1, 2]],
        rng.normal(size=(n, info.image_dim)).astype(np.float32),
        rng.normal(size=(n, info.feature_dim)).astype(np.float32),
        ("1", "2", "3", "nope", "50", "7"),
        np.array(
            [[1, 0, 0, 1], [1, 1, 0, 0], [0, 0, 1, 1], [1, 1, 1, 1], [0, 1, 0, 0], [1, 0, 1, 0]], np.float32
        ),
    )
    np.testing.assert_allclose(
        await client.fuse(inputs),
        pipe.embed(inputs.text, inputs.image, inputs.features, inputs.item_ids, inputs.mask),
        atol=1e-4,
    )


async def test_near_duplicate_image_is_closer_than_an_unrelated_one(client: TritonClient) -> None:
    from encoders.image import build_image_encoder

    base = _scene(1)
    near = base.resize((150, 112))
    images = [_bytes(base, "PNG"), _bytes(near, "JPEG", quality=70), _bytes(_scene(2), "WEBP")]
    emb = await client.encode_images(images)
    assert emb[0] @ emb[1] > emb[0] @ emb[2]
    np.testing.assert_allclose(emb, build_image_encoder(None).encode(images), atol=1e-4)
    with pytest.raises(InferenceError, match="invalid image"):
        await client.encode_images([b"GIF89a not really"])


async def test_fusion_accepts_every_subset_of_modalities(client: TritonClient) -> None:
    info = await client.model_info()
    rng = np.random.default_rng(1)
    subsets = [s for r in range(1, 5) for s in combinations(range(4), r)]
    mask = np.zeros((len(subsets), 4), np.float32)
    for i, s in enumerate(subsets):
        mask[i, list(s)] = 1
    n = len(subsets)
    out = await client.fuse(
        FusionInputs(
            rng.normal(size=(n, 384)).astype(np.float32),
            rng.normal(size=(n, info.image_dim)).astype(np.float32),
            rng.normal(size=(n, info.feature_dim)).astype(np.float32),
            tuple("1" for _ in range(n)),
            mask,
        )
    )
    assert out.shape == (n, info.out_dim) and np.isfinite(out).all()
    norms = np.linalg.norm(out, axis=1)
    # A subset whose only modality is an id the model never learned has nothing to embed.
    has_content = mask[:, :3].any(axis=1) | (info.version != "fusion-v0-untrained")
    np.testing.assert_allclose(norms[has_content], 1.0, atol=1e-5)


async def test_hot_swap_to_a_new_fusion_version_loses_no_request(stack: Settings, tmp_path: Path) -> None:
    """Requests keep flowing through a version roll and reach both versions; the stack's model
    is restored afterwards (other tests share this Triton)."""
    from serving.models import instance_kind
    from serving.pipelines import write_untrained
    from serving.repository import add_fusion_version

    label = f"fusion-swap-{tmp_path.name[-6:]}"
    new = write_untrained(tmp_path / "swap", seed=7, version=label)
    folder = _repo(stack) / "fusion"
    saved_config = (folder / "config.pbtxt").read_text()
    async with TritonClient(stack.triton_grpc_url, timeout_s=30) as c:
        info = await c.model_info()
        text = np.full((4, 384), 1 / np.sqrt(384), np.float32)
        inputs = FusionInputs(
            text,
            np.zeros((4, info.image_dim), np.float32),
            np.zeros((4, info.feature_dim), np.float32),
            ("1", "2", "3", "4"),
            np.tile(np.array([1, 0, 0, 1], np.float32), (4, 1)),
        )
        old_out = await c.fuse(inputs)
        outputs: list[np.ndarray] = []
        failures: list[Exception] = []
        stop = asyncio.Event()

        async def traffic() -> None:
            while not stop.is_set():
                try:
                    outputs.append(await c.fuse(inputs))
                except Exception as exc:  # any failure is a lost request
                    failures.append(exc)

        version = None
        try:
            tasks = [asyncio.create_task(traffic()) for _ in range(4)]
            await asyncio.sleep(1.0)
            before = len(outputs)
            version = add_fusion_version(_repo(stack), new, instance_kind(stack.triton_device))
            await c.load_model("fusion")
            await asyncio.sleep(1.0)
            stop.set()
            await asyncio.gather(*tasks)
            assert (await c.model_info()).version == label
            new_out = await c.fuse(inputs)
        finally:
            if version is not None:  # restore the stack's model for the tests that follow
                shutil.rmtree(folder / str(version))
                (folder / "config.pbtxt").write_text(saved_config)
                await c.load_model("fusion")
        assert failures == [] and len(outputs) > before > 0
        assert not np.allclose(old_out, new_out, atol=1e-4)  # the versions answer differently
        on_old = sum(np.allclose(o, old_out, atol=1e-4) for o in outputs)
        on_new = sum(np.allclose(o, new_out, atol=1e-4) for o in outputs)
        assert on_old > 0 and on_new > 0 and on_old + on_new == len(outputs), (on_old, on_new, len(outputs))
        assert (await c.model_info()).version == info.version  # restored
