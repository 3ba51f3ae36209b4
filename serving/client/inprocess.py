"""The same models in this process: the fast evaluation mode and unit tests.

Runs exactly the code the Triton models run (``encoders.text``, ``encoders.image``,
:class:`serving.pipelines.FusionPipeline`), so its outputs match the served ones; it is never a
stand-in for Triton in an integration test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from serving.client.base import FusionInfo, FusionInputs, InferenceClient


class InProcessClient(InferenceClient):
    """:class:`InferenceClient` over in-process models.

    Args:
        fusion_artefact: Artefact folder of the fusion model (``model.pt`` + ``meta.json``).
        image_model_path: Optional TorchScript/ONNX image model (default: the descriptor).
        offload: Run model calls in a thread, so an event loop stays responsive.
        text_encoder: ``RECSTREAM_TEXT_ENCODER`` choice (as the served model; default PyTorch).
        cache_dir: Where the ONNX export of the text encoder is cached (``onnx-*`` choices).
    """

    def __init__(
        self,
        fusion_artefact: Path,
        image_model_path: Path | None = None,
        *,
        offload: bool = False,
        text_encoder: str = "torch",
        cache_dir: Path | None = None,
    ) -> None:
        from encoders.image import build_image_encoder
        from encoders.text_onnx import build_text_encoder
        from serving.pipelines import FusionPipeline

        if text_encoder != "torch" and cache_dir is None:
            raise ValueError(f"text encoder {text_encoder!r} needs a cache_dir for its ONNX export")
        self.text = build_text_encoder(text_encoder, cache_dir or Path("."))
        self.image = build_image_encoder(image_model_path)
        self.fusion = FusionPipeline(fusion_artefact)
        self.offload = offload

    async def _call(self, fn: Callable[..., np.ndarray], *args: Any) -> np.ndarray:
        return await asyncio.to_thread(fn, *args) if self.offload else fn(*args)

    async def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        return await self._call(self.text.encode, list(texts))

    async def encode_images(self, images: Sequence[bytes]) -> np.ndarray:
        return await self._call(self.image.encode, list(images))

    async def fuse(self, inputs: FusionInputs) -> np.ndarray:
        return await self._call(
            self.fusion.embed, inputs.text, inputs.image, inputs.features, inputs.item_ids, inputs.mask
        )

    async def model_info(self) -> FusionInfo:
        return self.fusion.info

    async def close(self) -> None:
        return None
