"""``text_encoder``: all-MiniLM-L6-v2, tokenisation inside, so clients send strings.

TEXT: BYTES [batch, 1] UTF-8 strings -> EMBEDDING: FP32 [batch, 384], L2-normalised. All
requests of one dynamic batch are encoded in one forward pass.
"""

from __future__ import annotations

import numpy as np
import torch
import triton_python_backend_utils as pb_utils  # provided by Triton's Python backend
from _common import device, parameters, split_rows

from encoders.text import TextEncoder, TextEncoderConfig


class TritonPythonModel:
    """Triton Python-backend entry point."""

    def initialize(self, args):  # type: ignore[no-untyped-def]
        params = parameters(args)
        torch.set_num_threads(int(params.get("threads", "1")))
        self.encoder = TextEncoder(
            TextEncoderConfig(batch_size=int(params.get("batch_size", "64"))), device=device(args)
        )

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
