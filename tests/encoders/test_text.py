"""The MiniLM text encoder: shape, norm, semantics, parity with sentence-transformers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from encoders.errors import ModelLoadError
from encoders.text import TEXT_DIM, TextEncoder, TextEncoderConfig, default_model_dir

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The new movie is awesome.",
    "Toy Story (1995). Genres: Adventure, Animation, Children, Comedy",
    "",
]


def test_shape_dtype_and_unit_norm(text_encoder: TextEncoder) -> None:
    out = text_encoder.encode(SENTENCES)
    assert out.shape == (len(SENTENCES), TEXT_DIM)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_empty_input_and_bare_string(text_encoder: TextEncoder) -> None:
    assert text_encoder.encode([]).shape == (0, TEXT_DIM)
    with pytest.raises(TypeError):
        text_encoder.encode("not a list")


def test_paraphrases_closer_than_unrelated(text_encoder: TextEncoder) -> None:
    a, b, c, d = text_encoder.encode(
        [
            "The cat sits on the mat.",
            "A cat is sitting on a rug.",
            "Stock markets fell sharply on Monday.",
            "Share prices dropped steeply at the start of the week.",
        ]
    )
    assert a @ b > a @ c + 0.3
    assert c @ d > c @ a + 0.3


def test_matches_sentence_transformers(text_encoder: TextEncoder) -> None:
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(default_model_dir()), device="cpu")
    long_text = "a very long review " * 200  # > 256 tokens: both must truncate the same way
    texts = [*SENTENCES, long_text]
    ref = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(text_encoder.encode(texts), ref, atol=1e-4)


def test_deterministic_and_batch_independent(text_encoder: TextEncoder) -> None:
    together = text_encoder.encode(SENTENCES)
    np.testing.assert_array_equal(together, text_encoder.encode(SENTENCES))
    alone = np.stack([text_encoder.encode([s])[0] for s in SENTENCES])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_missing_model_dir_raises(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError):
        TextEncoder(TextEncoderConfig(model_dir=tmp_path / "nope"))
