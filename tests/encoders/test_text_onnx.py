"""The ONNX export of the MiniLM encoder: parity with PyTorch (fp32), bounded loss (int8), cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from encoders.errors import ModelLoadError
from encoders.text import TEXT_DIM, TextEncoder
from encoders.text_onnx import OnnxTextEncoder, exported_model

SENTENCES = [
    "A man is eating food.",
    "Loved the soundtrack and the slow, patient camera work.",
    "The plot falls apart in the last act, but the cast is great.",
    "Toy Story (1995). Genres: Adventure, Animation, Children, Comedy",
    "",
    "word " * 400,  # longer than the 256-token window: truncated the same way
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def reference(text_encoder: TextEncoder) -> np.ndarray:
    return text_encoder.encode(SENTENCES)


@pytest.mark.parametrize("batch_size", [1, 4, 64])
def test_fp32_matches_pytorch(cache: Path, reference: np.ndarray, batch_size: int) -> None:
    enc = OnnxTextEncoder(exported_model(cache, "fp32"), batch_size=batch_size)
    out = enc.encode(SENTENCES)
    assert out.shape == (len(SENTENCES), TEXT_DIM)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    cos = (out * reference).sum(1)
    assert cos.min() > 0.9999, cos


def test_int8_stays_close_to_fp32(cache: Path, reference: np.ndarray) -> None:
    out = OnnxTextEncoder(exported_model(cache, "int8")).encode(SENTENCES)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-4)
    cos = (out * reference).sum(1)
    assert cos.min() > 0.95, cos
    assert cos.mean() > 0.98, cos
    # Quantised, so not the same vectors: a test that passed on fp32 weights would prove nothing.
    assert cos.min() < 0.99999


def test_int8_one_text_per_pass_is_independent_of_its_neighbours(cache: Path) -> None:
    from encoders.text_onnx import build_text_encoder

    enc = build_text_encoder("onnx-int8", cache)
    alone = enc.encode(SENTENCES[1:2])
    with_others = enc.encode(SENTENCES)[1:2]
    np.testing.assert_array_equal(alone, with_others)
    # The reason it runs one text per pass: batched, dynamic quantisation mixes neighbours in.
    batched = OnnxTextEncoder(exported_model(cache, "int8"), batch_size=64).encode(SENTENCES)[1:2]
    assert not np.array_equal(alone, batched)


def test_export_is_cached_per_precision(cache: Path) -> None:
    a = exported_model(cache, "fp32")
    stamp = a.stat().st_mtime_ns
    assert exported_model(cache, "fp32") == a
    assert a.stat().st_mtime_ns == stamp  # reused, not exported again
    b = exported_model(cache, "int8")
    assert b != a
    assert b.stat().st_size < 0.8 * a.stat().st_size  # int8 matrices (the word embeddings stay fp32)
    assert not list(a.parent.glob("*.partial"))


def test_empty_input_bare_string_and_bad_file(cache: Path, tmp_path: Path) -> None:
    enc = OnnxTextEncoder(exported_model(cache, "fp32"))
    assert enc.encode([]).shape == (0, TEXT_DIM)
    with pytest.raises(TypeError):
        enc.encode("not a list")
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelLoadError):
        OnnxTextEncoder(bad)


def test_unknown_precision_refused(cache: Path) -> None:
    with pytest.raises(ValueError):
        exported_model(cache, "fp8")  # type: ignore[arg-type]
