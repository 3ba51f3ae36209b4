"""Build a Triton model repository folder from the typed catalogue in :mod:`serving.models`."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from serving.models import MODELS, Kind, ServedModel


def write_model(dest_root: Path, model: ServedModel, kind: Kind, version: int = 1) -> Path:
    """Write ``<dest_root>/<name>/config.pbtxt`` and ``<name>/<version>/model.py``.

    Returns:
        The model's folder.
    """
    folder = dest_root / model.name
    vdir = folder / str(version)
    vdir.mkdir(parents=True, exist_ok=True)
    for src in model.source.iterdir():
        if src.name == "__pycache__":
            continue
        target = vdir / src.name
        if src.is_dir():
            shutil.copytree(src, target, dirs_exist_ok=True)
        else:
            shutil.copy2(src, target)
    # Shared helpers sit beside each model.py: the Python backend puts that folder on sys.path.
    shutil.copy2(model.source.parent / "_common.py", vdir / "_common.py")
    (folder / "config.pbtxt").write_text(model.config(kind).to_pbtxt())
    return folder


def build_repository(dest_root: Path, kind: Kind, names: Iterable[str] | None = None) -> list[str]:
    """(Re)build the repository at ``dest_root`` with the named models (default: all).

    Returns:
        The model names written.
    """
    shutil.rmtree(dest_root, ignore_errors=True)
    dest_root.mkdir(parents=True)
    written = []
    for name in names or MODELS:
        write_model(dest_root, MODELS[name], kind)
        written.append(name)
    return written
