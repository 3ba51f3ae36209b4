"""The model code Triton runs, shared with the in-process client so both give the same outputs.

:class:`FusionPipeline` wraps a trained fusion artefact (``encoders.artefact``): it maps item
ids to the learned id-table rows, standardises the raw feature vector with the training
statistics, and runs the model. When no trained artefact exists yet (a fresh clone), the
repository builder writes ``fusion-v0``: the same architecture with seeded, *untrained* weights,
so the stack and its contracts work before ``recstream train``; its version string says so.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from encoders.fusion import FeatureStats, FusionConfig, FusionModel, load_fusion, save_fusion
from serving.records import FusionInfo

UNTRAINED_VERSION = "fusion-v0-untrained"


def read_info(folder: Path) -> FusionInfo:
    """Info of an artefact folder from its ``meta.json`` alone (no torch model load)."""
    meta = json.loads((folder / "meta.json").read_text())
    cfg = meta["config"]
    return FusionInfo(
        version=meta.get("model_version", UNTRAINED_VERSION),
        text_dim=cfg["text_dim"],
        image_dim=cfg["image_dim"],
        feature_dim=cfg["feature_dim"],
        out_dim=cfg["out_dim"],
        rating_power=float(meta.get("user_state", {}).get("rating_power", 0.0)),
        tau_s=float(meta.get("user_state", {}).get("tau_s", 0.0)),
    )


def write_untrained(folder: Path, seed: int = 0, version: str = UNTRAINED_VERSION) -> Path:
    """Write a seeded, untrained artefact (see the module docstring)."""
    torch.manual_seed(seed)
    model = FusionModel(FusionConfig())
    save_fusion(
        model.eval(),
        folder,
        {"model_version": version, "item_index": {}, "feature_stats": None, "untrained": True},
    )
    return folder


def copy_artefact(src: Path, dest: Path) -> Path:
    """Copy the files serving needs (weights and metadata) of an artefact."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("model.pt", "meta.json"):
        shutil.copy2(src / name, dest / name)
    return dest


class FusionPipeline:
    """Raw fusion inputs -> item embeddings with a trained (or untrained v0) artefact.

    Args:
        folder: Artefact folder with ``model.pt`` and ``meta.json``.
        device: Torch device.
    """

    def __init__(self, folder: Path, device: str = "cpu") -> None:
        self.model, self.meta = load_fusion(folder)
        self.device = torch.device(device)
        self.model.to(self.device).eval()
        self.info = read_info(folder)
        self.rows: dict[str, int] = {str(k): int(v) for k, v in (self.meta.get("item_index") or {}).items()}
        stats = self.meta.get("feature_stats")
        self.stats = FeatureStats(**stats) if stats else None

    def embed(
        self,
        text: np.ndarray,
        image: np.ndarray,
        features: np.ndarray,
        item_ids: Sequence[str],
        mask: np.ndarray,
    ) -> np.ndarray:
        """``[n, out_dim]`` float32 unit vectors (zero rows where nothing is present)."""
        feats = np.asarray(features, dtype=np.float32)
        if self.stats is not None:
            feats = np.where(mask[:, 2:3] > 0, self.stats.apply(feats), 0.0).astype(np.float32)
        index = np.asarray([self.rows.get(i, 0) for i in item_ids], dtype=np.int64)
        with torch.inference_mode():
            out = self.model(
                torch.from_numpy(np.ascontiguousarray(text, dtype=np.float32)).to(self.device),
                torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).to(self.device),
                torch.from_numpy(feats).to(self.device),
                torch.from_numpy(index).to(self.device),
                torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32)).to(self.device),
            )
        return np.ascontiguousarray(out.cpu().numpy(), dtype=np.float32)


def meta_of(folder: Path) -> dict[str, Any]:
    """The artefact's metadata."""
    return dict(json.loads((folder / "meta.json").read_text()))
