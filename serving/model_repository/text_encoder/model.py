"""``text_encoder``: all-MiniLM-L6-v2, tokenisation inside, so clients send strings.

TEXT: BYTES [batch, 1] UTF-8 strings -> EMBEDDING: FP32 [batch, 384], L2-normalised. All
requests of one dynamic batch are encoded in one pass. With the ``onnx_path`` parameter the
model runs the ONNX export with onnxruntime (:mod:`encoders.text_onnx`), otherwise PyTorch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils  # provided by Triton's Python backend
from _common import device, parameters, split_rows


class TritonPythonModel:
    """Triton Python-backend entry point."""

    def initialize(self, args):  # type: ignore[no-untyped-def]
        params = parameters(args)
        threads = int(params.get("threads", "1"))
        batch_size = int(params.get("batch_size", "64"))
        if params.get("onnx_path"):
            from encoders.text_onnx import OnnxTextEncoder

            self.encoder = OnnxTextEncoder(Path(params["onnx_path"]), threads=threads, batch_size=batch_size)
        else:
            import torch

            from encoders.text import TextEncoder, TextEncoderConfig

            torch.set_num_threads(threads)
            self.encoder = TextEncoder(TextEncoderConfig(batch_size=batch_size), device=device(args))

    def execute(self, requests):  # type: ignore[no-untyped-def]
        arrays, counts = split_rows(requests, "TEXT", pb_utils.get_input_tensor_by_name)
        texts = [
            (v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v))
            for a in arrays
            for v in a.reshape(-1)
        ]
        emb = self.encoder.encode(texts)
        responses, start = [], 0
        for n in counts:
            out = pb_utils.Tensor("EMBEDDING", np.ascontiguousarray(emb[start : start + n]))
            responses.append(pb_utils.InferenceResponse([out]))
            start += n
        return responses
