"""Fusion of an item's modalities into one unit-norm embedding.

Modalities, in the order of the presence mask ``[B, 4]``:

====  ==========  =====================================================================
 0    text        MiniLM embedding of title (+ genres / description), ``[B, 384]``
 1    image       image descriptor or user-supplied vision model output, ``[B, D_img]``
 2    features    precomputed numeric features (MovieLens: 7 visual features), ``[B, 7]``
 3    id          learned behaviour embedding of items seen in training, index ``0`` = cold
====  ==========  =====================================================================

Each present modality is projected to a hidden vector; a gate scores every projection and a
softmax over the *present* modalities only weights them (so an upload with only a title gets
exactly its text projection, never a mix with zero vectors); a head maps the weighted sum to
the output dimension, which is L2-normalised. Training drops the id modality at random, so the
content-only path is trained too: that is what lets cold items compete with warm ones.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from encoders.errors import ArtefactError

MODALITIES: tuple[str, ...] = ("text", "image", "features", "id")
FORMAT_VERSION = 1
MODEL_FILE = "model.pt"
META_FILE = "meta.json"


@dataclass(frozen=True, slots=True)
class FeatureStats:
    """Per-feature mean and standard deviation used to standardise numeric features."""

    mean: list[float]
    std: list[float]

    @classmethod
    def fit(cls, rows: np.ndarray) -> FeatureStats:
        """Statistics of ``rows`` ``[n, d]`` (a zero std becomes 1)."""
        std = rows.std(0)
        return cls(rows.mean(0).tolist(), np.where(std > 0, std, 1.0).tolist())

    def apply(self, rows: np.ndarray) -> np.ndarray:
        """Standardise ``rows``; float32."""
        return ((rows - np.asarray(self.mean)) / np.asarray(self.std)).astype(np.float32)


@dataclass(frozen=True, slots=True)
class FusionConfig:
    """Dimensions of :class:`FusionModel`.

    Attributes:
        text_dim: Width of the text embedding.
        image_dim: Width of the image embedding.
        feature_dim: Number of precomputed numeric features.
        num_ids: Rows of the id table, including row 0 (unknown / cold item).
        hidden_dim: Width of the per-modality projections.
        out_dim: Width of the item embedding (64-128).
        dropout: Dropout inside the projections (training only).
    """

    text_dim: int = 384
    image_dim: int = 256
    feature_dim: int = 7
    num_ids: int = 1
    hidden_dim: int = 128
    out_dim: int = 64
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if not 64 <= self.out_dim <= 128:
            raise ValueError(f"out_dim must be in [64, 128], got {self.out_dim}")
        if min(self.text_dim, self.image_dim, self.feature_dim, self.hidden_dim) < 1:
            raise ValueError("all dimensions must be positive")
        if self.num_ids < 1:
            raise ValueError("num_ids counts the cold row 0, so it is at least 1")


def _tower(in_dim: int, cfg: FusionConfig) -> nn.Sequential:
    # LayerNorm first: MiniLM vectors, image descriptors and standardised features live on very
    # different scales; normalising each input keeps any one modality from dominating the gate.
    return nn.Sequential(
        nn.LayerNorm(in_dim),
        nn.Linear(in_dim, cfg.hidden_dim),
        nn.GELU(),
        nn.Dropout(cfg.dropout),
        nn.Linear(cfg.hidden_dim, cfg.hidden_dim),
    )


class FusionModel(nn.Module):
    """Gated fusion of the present modalities into an L2-normalised item embedding.

    Args:
        config: Dimensions.
    """

    def __init__(self, config: FusionConfig) -> None:
        super().__init__()
        self.config = config
        self.text = _tower(config.text_dim, config)
        self.image = _tower(config.image_dim, config)
        self.features = _tower(config.feature_dim, config)
        self.ids = nn.Embedding(config.num_ids, config.hidden_dim)
        nn.init.normal_(self.ids.weight, std=0.1)
        # A learned bias per modality lets the gate prefer, e.g., behaviour over content
        # whenever both are present, independently of the content of the vectors.
        self.gate = nn.Linear(config.hidden_dim, 1)
        self.modality_bias = nn.Parameter(torch.zeros(len(MODALITIES)))
        self.head = nn.Sequential(
            nn.LayerNorm(config.hidden_dim), nn.Linear(config.hidden_dim, config.out_dim)
        )

    def forward(
        self,
        text: torch.Tensor,
        image: torch.Tensor,
        features: torch.Tensor,
        item_index: torch.Tensor,
        mask: torch.Tensor,
    ) -> torch.Tensor:
        """Embed a batch of items.

        Args:
            text: ``[B, text_dim]`` (any values where absent, e.g. zeros).
            image: ``[B, image_dim]``.
            features: ``[B, feature_dim]``.
            item_index: ``[B]`` int64 rows of the id table; ``0`` = unknown (id treated absent).
            mask: ``[B, 4]`` presence of text, image, features, id (bool or 0/1).

        Returns:
            ``[B, out_dim]`` unit vectors; an all-absent row yields the zero vector.
        """
        present = mask.bool().clone()
        present[:, 3] &= item_index > 0
        towers = (
            (self.text, text),
            (self.image, image),
            (self.features, features),
            (self.ids, item_index),
        )
        hidden = text.new_zeros(text.shape[0], len(towers), self.config.hidden_dim)
        for m, (tower, x) in enumerate(towers):
            # Only rows that have the modality are projected: absent inputs cost nothing (all
            # MovieLens images, half the feature rows) and cannot leak values into the output.
            rows = present[:, m].nonzero().squeeze(1)
            if rows.numel():
                hidden = hidden.index_put((rows, torch.full_like(rows, m)), tower(x[rows]))
        logits = self.gate(hidden).squeeze(-1) + self.modality_bias
        # Absent modalities get no weight at all; a large negative (not -inf) keeps rows with
        # nothing present NaN-free, and they are zeroed below.
        logits = logits.masked_fill(~present, -1e4)
        weights = torch.softmax(logits, dim=1) * present
        fused = (weights.unsqueeze(-1) * hidden).sum(1)
        out = nn.functional.normalize(self.head(fused), p=2.0, dim=1)
        return out * present.any(1, keepdim=True)


def save_fusion(model: FusionModel, folder: Path, meta: dict[str, Any]) -> None:
    """Write ``model.pt`` (state dict) and ``meta.json`` (``meta`` plus config and format).

    Args:
        model: Model to save.
        folder: Destination folder (created).
        meta: JSON-serialisable metadata; ``config`` and ``format_version`` are added.
    """
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / MODEL_FILE)
    full = {**meta, "format_version": FORMAT_VERSION, "config": asdict(model.config)}
    (folder / META_FILE).write_text(json.dumps(full, indent=1, sort_keys=True) + "\n")


def load_fusion(folder: Path) -> tuple[FusionModel, dict[str, Any]]:
    """Load a model written by :func:`save_fusion`, in eval mode.

    Returns:
        The model and its metadata.

    Raises:
        ArtefactError: Files missing, unreadable, of another format version, or not matching.
    """
    try:
        meta = json.loads((folder / META_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise ArtefactError(f"cannot read {folder / META_FILE}: {exc}") from exc
    if meta.get("format_version") != FORMAT_VERSION:
        raise ArtefactError(
            f"{folder}: format_version {meta.get('format_version')!r}, expected {FORMAT_VERSION}"
        )
    try:
        model = FusionModel(FusionConfig(**meta["config"]))
        # weights_only: a model file is data, never code to execute.
        state = torch.load(folder / MODEL_FILE, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (OSError, KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ArtefactError(f"cannot load {folder / MODEL_FILE}: {exc}") from exc
    return model.eval(), meta
