"""The interface every model client implements (Triton gRPC, in-process)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

import numpy as np

#: Order of the modality mask columns.
MODALITIES = ("text", "image", "features", "id")


@dataclass(frozen=True)
class FusionInputs:
    """A batch of items for the ``fusion`` model; absent modalities are zero rows + mask 0.

    Attributes:
        text: ``[n, 384]`` float32 text embeddings.
        image: ``[n, image_dim]`` float32 image embeddings.
        features: ``[n, feature_dim]`` float32 raw precomputed features (standardised by the model).
        item_ids: ``n`` item ids; ids seen in training use their learned behaviour embedding.
        mask: ``[n, 4]`` float32 presence of text, image, features, id.
    """

    text: np.ndarray
    image: np.ndarray
    features: np.ndarray
    item_ids: tuple[str, ...]
    mask: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.item_ids)
        for name in ("text", "image", "features", "mask"):
            arr = getattr(self, name)
            if arr.ndim != 2 or arr.shape[0] != n:
                raise ValueError(f"FusionInputs.{name}: expected [{n}, d], got {arr.shape}")
        if self.mask.shape[1] != len(MODALITIES):
            raise ValueError("FusionInputs.mask must have 4 columns (text, image, features, id)")


class InferenceClient(ABC):
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
    async def model_version(self) -> str:
        """Version string of the fusion model answering now."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections and threads."""

    async def __aenter__(self) -> InferenceClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
