"""``image_encoder``: encoded image bytes (JPEG/PNG/WebP) -> fixed-size L2-normalised vector.

IMAGE: BYTES [batch, 1] -> EMBEDDING: FP32 [batch, dim]. The default is the built-in descriptor
(colour + gradient-orientation histograms, see encoders/image.py); the ``image_model_path``
parameter switches to a user-supplied TorchScript or ONNX model. An undecodable image fails only
its own request.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import triton_python_backend_utils as pb_utils  # provided by Triton's Python backend
from _common import parameters

from encoders.image import build_image_encoder
from schemas.imaging import ImageError


class TritonPythonModel:
    """Triton Python-backend entry point."""

    def initialize(self, args):  # type: ignore[no-untyped-def]
        params = parameters(args)
        torch.set_num_threads(int(params.get("threads", "1")))
        path = params.get("image_model_path") or None
        self.encoder = build_image_encoder(
            Path(path) if path else None,
            max_bytes=int(params.get("max_bytes", "5242880")),
            max_pixels=int(params.get("max_pixels", "16000000")),
        )

    def execute(self, requests):  # type: ignore[no-untyped-def]
        responses = []
        for request in requests:
            data = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy().reshape(-1)
            try:
                emb = self.encoder.encode([bytes(b) for b in data])
                responses.append(
                    pb_utils.InferenceResponse([pb_utils.Tensor("EMBEDDING", emb.astype(np.float32))])
                )
            except ImageError as exc:
                responses.append(
                    pb_utils.InferenceResponse(error=pb_utils.TritonError(f"invalid image: {exc}"))
                )
        return responses
