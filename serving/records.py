"""Typed records shared by the model clients and the models: a fusion batch and the fusion model's
description.

A module of their own so that the Triton-side pipelines (:mod:`serving.pipelines`) and the
clients (:mod:`serving.client`, whose in-process client runs those pipelines) both import them
without importing each other (``.importlinter``: no import cycle).
"""

from __future__ import annotations

from dataclasses import dataclass

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
