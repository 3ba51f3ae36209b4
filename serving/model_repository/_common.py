"""Helpers shared by the Python-backend models (copied next to each model.py at build time)."""

from __future__ import annotations

import json
from typing import Any


def parameters(args: dict[str, Any]) -> dict[str, str]:
    """The ``parameters`` block of the model config as plain strings."""
    cfg = json.loads(args["model_config"])
    return {k: v.get("string_value", "") for k, v in cfg.get("parameters", {}).items()}


def device(args: dict[str, Any]) -> str:
    """Torch device of this model instance (KIND_GPU instances get their own GPU)."""
    if args.get("model_instance_kind") == "GPU":
        return f"cuda:{args.get('model_instance_device_id', 0)}"
    return "cpu"


def split_rows(requests: list[Any], name: str, get: Any) -> tuple[list[Any], list[int]]:
    """Concatenate input ``name`` across requests; returns arrays and per-request row counts."""
    arrays = [get(r, name).as_numpy() for r in requests]
    return arrays, [a.shape[0] for a in arrays]
