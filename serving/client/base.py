"""The interface every model client implements (Triton gRPC, in-process)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence

import numpy as np

from recstream.resources import AsyncResource
from serving.records import MODALITIES, FusionInfo, FusionInputs

__all__ = ["MODALITIES", "FusionInfo", "FusionInputs", "InferenceClient"]


class InferenceClient(AsyncResource):
    """Async access to ``text_encoder``, ``image_encoder`` and ``fusion``.

    Use as ``async with client: ...``; ``close()`` releases connections.
    """

    @abstractmethod
    async def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        """``[n, 384]`` L2-normalised float32 embeddings of UTF-8 strings."""

    @abstractmethod
    async def encode_images(self, images: Sequence[bytes]) -> np.ndarray:
        """``[n, image_dim]`` L2-normalised float32 embeddings of encoded images."""

    @abstractmethod
    async def fuse(self, inputs: FusionInputs) -> np.ndarray:
        """``[n, d]`` L2-normalised item embeddings in the space shared with users."""

    @abstractmethod
    async def model_info(self) -> FusionInfo:
        """Version and dimensions of the fusion model answering now."""

    @property
    def stalled(self) -> bool:
        """Whether a request is waiting for the server to come back (retrying a transient
        failure or held by an open circuit). Clients that cannot stall say False."""
        return False
