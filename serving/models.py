"""The catalogue of models recstream serves, as typed configs.

Each entry pairs a :class:`~serving.config.ModelConfig` with the folder of its Python-backend
source under ``serving/model_repository/``. Instance placement follows the device: KIND_GPU when
a GPU is visible (or forced by ``RECSTREAM_TRITON_DEVICE=gpu``), KIND_CPU otherwise.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from serving.config import DataType, DynamicBatching, InstanceGroup, ModelConfig, TensorSpec

SOURCE_ROOT = Path(__file__).resolve().parent / "model_repository"

Kind = Literal["KIND_CPU", "KIND_GPU"]


def gpu_visible() -> bool:
    """True when an NVIDIA GPU device node and nvidia-smi are present."""
    return Path("/dev/nvidia0").exists() and shutil.which("nvidia-smi") is not None


def instance_kind(device: str) -> Kind:
    """Map the ``triton_device`` setting (auto/cpu/gpu) to an instance-group kind."""
    if device == "gpu" or (device == "auto" and gpu_visible()):
        return "KIND_GPU"
    return "KIND_CPU"


#: Extra per-model values decided when the repository is built (e.g. the fusion artefact's dims).
Params = dict[str, str]


@dataclass(frozen=True)
class ServedModel:
    """A model config factory (instance kind, build-time params) and its ``model.py`` folder."""

    name: str
    config: Callable[[Kind, Params], ModelConfig]

    @property
    def source(self) -> Path:
        return SOURCE_ROOT / self.name


def _echo(kind: Kind, params: Params) -> ModelConfig:
    return ModelConfig(
        name="echo",
        inputs=(TensorSpec("INPUT", DataType.FP32, (-1,)),),
        outputs=(
            TensorSpec("OUTPUT", DataType.FP32, (-1,)),
            TensorSpec("SUM", DataType.FP32, (1,)),
        ),
        max_batch_size=64,
        dynamic_batching=DynamicBatching(preferred_batch_sizes=(8, 32), max_queue_delay_us=500),
        instance_group=InstanceGroup(kind="KIND_CPU"),  # trivial: never worth a GPU
    )


def _text_encoder(kind: Kind, params: Params) -> ModelConfig:
    onnx = "onnx_path" in params
    return ModelConfig(
        name="text_encoder",
        inputs=(TensorSpec("TEXT", DataType.BYTES, (1,)),),
        outputs=(TensorSpec("EMBEDDING", DataType.FP32, (384,)),),
        max_batch_size=128,
        dynamic_batching=DynamicBatching(preferred_batch_sizes=(16, 32, 64, 128), max_queue_delay_us=2000),
        # On CPU, one single-threaded instance per core; a GPU instance batches on its own.
        instance_group=InstanceGroup(kind=kind, count=2 if kind == "KIND_CPU" else 1),
        latest_versions=1,
        # One intra-op thread per instance: on a small shared host OpenMP threads spin-wait
        # against the JVMs and batch-1 latency gets ~10x worse; scale with instances instead.
        # ``onnx_path``: run the exported model with onnxruntime (encoders/text_onnx.py).
        parameters=(
            ("threads", "1"),
            ("batch_size", params.get("batch_size", "128" if onnx else "64")),
            *((("onnx_path", params["onnx_path"]),) if onnx else ()),
        ),
    )


def _image_encoder(kind: Kind, params: Params) -> ModelConfig:
    return ModelConfig(
        name="image_encoder",
        inputs=(TensorSpec("IMAGE", DataType.BYTES, (1,)),),
        outputs=(TensorSpec("EMBEDDING", DataType.FP32, (-1,)),),
        max_batch_size=32,
        dynamic_batching=DynamicBatching(preferred_batch_sizes=(8, 16), max_queue_delay_us=2000),
        instance_group=InstanceGroup(kind=kind, count=1),
        parameters=(("threads", "1"), *sorted(params.items())),
    )


def _fusion(kind: Kind, params: Params) -> ModelConfig:
    image_dim, feature_dim = int(params.get("image_dim", "256")), int(params.get("feature_dim", "7"))
    out_dim = int(params.get("out_dim", "64"))
    return ModelConfig(
        name="fusion",
        inputs=(
            TensorSpec("TEXT_EMB", DataType.FP32, (int(params.get("text_dim", "384")),)),
            TensorSpec("IMAGE_EMB", DataType.FP32, (image_dim,)),
            TensorSpec("FEATURES", DataType.FP32, (feature_dim,)),
            TensorSpec("ITEM_ID", DataType.BYTES, (1,)),
            TensorSpec("MASK", DataType.FP32, (4,)),
        ),
        outputs=(TensorSpec("EMBEDDING", DataType.FP32, (out_dim,)),),
        max_batch_size=256,
        dynamic_batching=DynamicBatching(preferred_batch_sizes=(32, 64, 128), max_queue_delay_us=1000),
        instance_group=InstanceGroup(kind=kind, count=1),
        # Two versions may be live during a swap; the newest serves as soon as it is ready.
        latest_versions=1,
        parameters=(("threads", "1"), *sorted(params.items())),
    )


#: Every served model, by name.
MODELS: dict[str, ServedModel] = {
    m.name: m
    for m in (
        ServedModel("echo", _echo),
        ServedModel("text_encoder", _text_encoder),
        ServedModel("image_encoder", _image_encoder),
        ServedModel("fusion", _fusion),
    )
}
