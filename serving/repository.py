"""Build a Triton model repository folder from the typed catalogue in :mod:`serving.models`.

The ``fusion`` model's version folder also holds its artefact (``<version>/artefact/``): the
newest trained version under ``model_dir/fusion/`` or, before any training, the seeded untrained
``fusion-v0`` (see :mod:`serving.pipelines`). :func:`add_fusion_version` stages a newly trained
artefact as the next version for a hot swap.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from serving.models import MODELS, Kind, Params, ServedModel
from serving.pipelines import FusionInfo, copy_artefact, read_info, write_untrained


def latest_trained(model_dir: Path) -> Path | None:
    """The newest trained fusion artefact under ``model_dir/fusion/<n>/``, if any."""
    root = model_dir / "fusion"
    versions = sorted(
        (int(p.name), p) for p in root.glob("*") if p.name.isdigit() and (p / "meta.json").exists()
    )
    return versions[-1][1] if versions else None


def _copy_source(model: ServedModel, vdir: Path) -> None:
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


def write_model(
    dest_root: Path, model: ServedModel, kind: Kind, params: Params | None = None, version: int = 1
) -> Path:
    """Write ``<dest_root>/<name>/config.pbtxt`` and ``<name>/<version>/model.py``."""
    folder = dest_root / model.name
    _copy_source(model, folder / str(version))
    (folder / "config.pbtxt").write_text(model.config(kind, params or {}).to_pbtxt())
    return folder


def stage_fusion(vdir: Path, artefact: Path | None) -> FusionInfo:
    """Put the fusion artefact (or an untrained v0) into ``vdir/artefact``."""
    dest = vdir / "artefact"
    if dest.exists():
        shutil.rmtree(dest)
    if artefact is None:
        write_untrained(dest)
    else:
        copy_artefact(artefact, dest)
    return read_info(dest)


def text_encoder_params(choice: str, kind: Kind, cache_dir: Path) -> Params:
    """Parameters of ``text_encoder`` for a ``RECSTREAM_TEXT_ENCODER`` choice.

    On CPU an ``onnx-*`` choice exports the bundled MiniLM once into ``cache_dir``
    (:func:`encoders.text_onnx.exported_model`) and points the model at the file; GPU instances
    and the ``torch`` choice run PyTorch.
    """
    if kind != "KIND_CPU" or choice == "torch":
        return {}
    from encoders.text_onnx import exported_model  # torch and onnx: only when building

    precision = choice.removeprefix("onnx-")
    if precision not in ("fp32", "int8"):
        raise ValueError(f"unknown text encoder {choice!r}")
    path = exported_model(cache_dir, precision)  # type: ignore[arg-type]
    # int8 runs one text per pass: dynamic quantisation scales activations per pass, so in a
    # batch a text's vector would depend on its neighbours (replays and evaluation must not).
    return {"onnx_path": str(path), "batch_size": "1" if precision == "int8" else "128"}


def build_repository(
    dest_root: Path,
    kind: Kind,
    *,
    model_dir: Path | None = None,
    image_params: Params | None = None,
    text_params: Params | None = None,
    names: Iterable[str] | None = None,
) -> list[str]:
    """(Re)build the repository at ``dest_root`` with the named models (default: all).

    Args:
        dest_root: Repository folder (replaced).
        kind: Instance kind of the encoders and fusion.
        model_dir: Where trained fusion artefacts live (None: untrained v0).
        image_params: Parameters of ``image_encoder`` (e.g. ``image_model_path``).
        text_params: Parameters of ``text_encoder`` (see :func:`text_encoder_params`).
        names: Subset of models.
    """
    shutil.rmtree(dest_root, ignore_errors=True)
    dest_root.mkdir(parents=True)
    written = []
    for name in names or MODELS:
        model = MODELS[name]
        params: Params = {}
        if name == "fusion":
            _copy_source(model, dest_root / name / "1")
            info = stage_fusion(dest_root / name / "1", latest_trained(model_dir) if model_dir else None)
            params = dict(info.parameters())
        elif name == "image_encoder":
            params = dict(image_params or {})
        elif name == "text_encoder":
            params = dict(text_params or {})
        write_model(dest_root, model, kind, params)
        written.append(name)
    return written


def add_fusion_version(repo_root: Path, artefact: Path, kind: Kind) -> int:
    """Stage ``artefact`` as the next fusion version; returns the version number.

    The caller then asks Triton to load ``fusion`` (repository API): the new version is loaded
    next to the serving one and takes over when ready, so no request is lost.
    """
    folder = repo_root / "fusion"
    current = [int(p.name) for p in folder.iterdir() if p.name.isdigit()]
    version = max(current, default=0) + 1
    _copy_source(MODELS["fusion"], folder / str(version))
    info = stage_fusion(folder / str(version), artefact)
    (folder / "config.pbtxt").write_text(MODELS["fusion"].config(kind, dict(info.parameters())).to_pbtxt())
    return version
