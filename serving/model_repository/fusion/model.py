"""``fusion``: modalities an item has -> L2-normalised item embedding (shared with users).

Inputs (batch first): TEXT_EMB FP32 [384], IMAGE_EMB FP32 [image_dim], FEATURES FP32
[feature_dim] (raw; standardised here with the training statistics), ITEM_ID BYTES [1] (ids seen
in training use their learned behaviour embedding), MASK FP32 [4] (text, image, features, id
present). Output EMBEDDING FP32 [out_dim]. The artefact sits in ``artefact/`` of the version.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import triton_python_backend_utils as pb_utils  # provided by Triton's Python backend
from _common import device, parameters

from serving.pipelines import FusionPipeline


class TritonPythonModel:
    """Triton Python-backend entry point."""

    def initialize(self, args):  # type: ignore[no-untyped-def]
        torch.set_num_threads(int(parameters(args).get("threads", "1")))
        folder = Path(args["model_repository"]) / args["model_version"] / "artefact"
        self.pipeline = FusionPipeline(folder, device=device(args))

    def execute(self, requests):  # type: ignore[no-untyped-def]
        get = pb_utils.get_input_tensor_by_name
        names = ("TEXT_EMB", "IMAGE_EMB", "FEATURES", "MASK")
        parts = {n: [get(r, n).as_numpy() for r in requests] for n in names}
        ids_per = [get(r, "ITEM_ID").as_numpy().reshape(-1) for r in requests]
        counts = [len(i) for i in ids_per]
        ids = [
            v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v)
            for a in ids_per
            for v in a
        ]
        emb = self.pipeline.embed(
            np.concatenate(parts["TEXT_EMB"]),
            np.concatenate(parts["IMAGE_EMB"]),
            np.concatenate(parts["FEATURES"]),
            ids,
            np.concatenate(parts["MASK"]),
        )
        out, start = [], 0
        for n in counts:
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("EMBEDDING", emb[start : start + n])]))
            start += n
        return out
