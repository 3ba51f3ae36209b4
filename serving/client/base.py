"""The interface every model client implements (Triton gRPC, in-process)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recstream.resources import AsyncResource

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


@dataclass(frozen=True)
class FusionInfo:
    """What clients need to know about the served fusion model."""

    version: str
    text_dim: int
    image_dim: int
    feature_dim: int
    out_dim: int
    rating_power: float
    tau_s: float = 0.0  # user-state decay the model was trained with; 0: not recorded

    def parameters(self) -> tuple[tuple[str, str], ...]:
        """As Triton config parameters (strings)."""
        return tuple((k, str(v)) for k, v in self.__dict__.items())

    @classmethod
    def from_parameters(cls, params: dict[str, str]) -> FusionInfo:
        """Inverse of :meth:`parameters`."""
        return cls(
            version=params["version"],
            text_dim=int(params["text_dim"]),
            image_dim=int(params["image_dim"]),
            feature_dim=int(params["feature_dim"]),
            out_dim=int(params["out_dim"]),
            rating_power=float(params.get("rating_power", "0")),
            tau_s=float(params.get("tau_s", "0")),
        )


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
