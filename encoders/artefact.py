"""Versioned fusion artefacts on disk.

Layout (Triton's ``<model>/<integer version>/`` convention, so the folder can be served as is)::

    <out>/fusion/<n>/model.pt       state dict of encoders.fusion.FusionModel
    <out>/fusion/<n>/meta.json      model_version "fusion-v<n>", dims, cut, mapping, stats, ...
    <out>/fusion/<n>/items.npy      [N, D] float32 embeddings of the dataset's items
    <out>/fusion/<n>/item_ids.npy   [N] int64 movie ids of those rows
    <out>/fusion/<n>/loss.png       training loss curve

A version is written to a hidden temporary folder and renamed into place, so readers never see
half an artefact and two concurrent trainings never share a version number.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from encoders.errors import ArtefactError
from encoders.fusion import META_FILE, FusionModel, load_fusion, save_fusion

FUSION_DIR = "fusion"
ITEMS_FILE = "items.npy"
ITEM_IDS_FILE = "item_ids.npy"
LOSS_PLOT = "loss.png"


def existing_versions(out_dir: Path) -> list[int]:
    """Integer versions present under ``<out_dir>/fusion``, ascending."""
    root = out_dir / FUSION_DIR
    if not root.is_dir():
        return []
    return sorted(int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit())


def latest_artefact(out_dir: Path) -> Path | None:
    """Folder of the newest version, or ``None`` when there is none."""
    versions = existing_versions(out_dir)
    return out_dir / FUSION_DIR / str(versions[-1]) if versions else None


def plot_losses(losses: list[float], steps_per_epoch: int, path: Path) -> None:
    """Save the per-step loss and its moving average as a PNG (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on servers and CI
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(losses, lw=0.6, alpha=0.4, label="step")
    win = max(1, min(50, len(losses) // 10))
    if len(losses) >= win:
        smooth = np.convolve(losses, np.ones(win) / win, mode="valid")
        ax.plot(np.arange(win - 1, len(losses)), smooth, lw=1.5, label=f"mean of {win}")
    for e in range(steps_per_epoch, len(losses), max(steps_per_epoch, 1)):
        ax.axvline(e, color="grey", lw=0.5, ls=":")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy")
    ax.set_title("fusion training loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_artefact(
    out_dir: Path,
    model: FusionModel,
    meta: dict[str, Any],
    item_ids: np.ndarray,
    item_embeddings: np.ndarray,
    losses: list[float] | None = None,
    steps_per_epoch: int = 0,
) -> Path:
    """Write the next version under ``<out_dir>/fusion``.

    Args:
        out_dir: Model folder (``settings.model_dir`` by default in the CLI).
        model: Trained model.
        meta: Metadata; ``model_version`` and ``version`` are set here.
        item_ids: Movie ids of the embedding rows.
        item_embeddings: ``[N, D]`` item embeddings.
        losses: Per-step losses for the plot (omitted when ``None``).
        steps_per_epoch: Draws epoch boundaries on the plot.

    Returns:
        The new version folder.
    """
    root = out_dir / FUSION_DIR
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    tmp.chmod(0o755)  # mkdtemp makes it private; the published version must stay readable
    try:
        np.save(tmp / ITEMS_FILE, np.asarray(item_embeddings, dtype=np.float32))
        np.save(tmp / ITEM_IDS_FILE, np.asarray(item_ids, dtype=np.int64))
        if losses:
            plot_losses(losses, steps_per_epoch, tmp / LOSS_PLOT)
        for _ in range(100):
            version = (existing_versions(out_dir) or [0])[-1] + 1
            save_fusion(model, tmp, {**meta, "version": version, "model_version": f"fusion-v{version}"})
            try:
                # rename fails if another writer claimed this number meanwhile: then retry.
                os.rename(tmp, root / str(version))
                return root / str(version)
            except OSError:
                continue
        raise ArtefactError(f"could not claim a version under {root}")
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@dataclass(slots=True)
class Artefact:
    """A loaded version: model, metadata and the precomputed item embeddings."""

    path: Path
    model: FusionModel
    meta: dict[str, Any]
    item_ids: np.ndarray
    item_embeddings: np.ndarray


def load_artefact(folder: Path) -> Artefact:
    """Load a version folder written by :func:`write_artefact`.

    Raises:
        ArtefactError: A file is missing or unreadable.
    """
    model, meta = load_fusion(folder)
    try:
        ids = np.load(folder / ITEM_IDS_FILE)
        emb = np.load(folder / ITEMS_FILE)
    except (OSError, ValueError) as exc:
        raise ArtefactError(f"{folder}: cannot read item embeddings: {exc}") from exc
    if len(ids) != len(emb):
        raise ArtefactError(f"{folder}: {len(ids)} ids for {len(emb)} embeddings")
    return Artefact(folder, model, meta, ids, emb)


def read_meta(folder: Path) -> dict[str, Any]:
    """Only the metadata of a version (cheap)."""
    try:
        return dict(json.loads((folder / META_FILE).read_text()))
    except (OSError, ValueError) as exc:
        raise ArtefactError(f"cannot read {folder / META_FILE}: {exc}") from exc
