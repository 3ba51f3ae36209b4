"""Typed Triton model configuration, rendered to ``config.pbtxt``.

Models are described by :class:`ModelConfig` objects, never by hand-written protobuf text, so
batching, instance placement and version policy are checked in one place and tested without a
server (see ``tests/serving/test_config.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from serving.errors import ModelConfigError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class DataType(StrEnum):
    """Triton tensor data types used by recstream (BYTES is ``TYPE_STRING`` in configs)."""

    FP32 = "TYPE_FP32"
    INT64 = "TYPE_INT64"
    BOOL = "TYPE_BOOL"
    BYTES = "TYPE_STRING"


@dataclass(frozen=True)
class TensorSpec:
    """One input or output tensor; ``dims`` exclude the batch dimension (-1 = variable)."""

    name: str
    dtype: DataType
    dims: tuple[int, ...]
    optional: bool = False

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ModelConfigError(f"bad tensor name {self.name!r}")
        if not self.dims or any(d == 0 or d < -1 for d in self.dims):
            raise ModelConfigError(f"{self.name}: dims must be positive or -1, got {self.dims}")


@dataclass(frozen=True)
class DynamicBatching:
    """Server-side batching of concurrent requests."""

    preferred_batch_sizes: tuple[int, ...] = (8, 16, 32)
    max_queue_delay_us: int = 2000


@dataclass(frozen=True)
class InstanceGroup:
    """Where and how many copies of the model run."""

    kind: Literal["KIND_CPU", "KIND_GPU"] = "KIND_CPU"
    count: int = 1


@dataclass(frozen=True)
class ModelConfig:
    """A served model. ``to_pbtxt()`` renders Triton's ``config.pbtxt``."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    max_batch_size: int = 64
    backend: str = "python"
    dynamic_batching: DynamicBatching | None = field(default_factory=DynamicBatching)
    instance_group: InstanceGroup = field(default_factory=InstanceGroup)
    #: Keep the newest N versions loaded, so a new version serves before the old one unloads.
    latest_versions: int = 1
    parameters: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ModelConfigError(f"bad model name {self.name!r}")
        if self.max_batch_size < 0:
            raise ModelConfigError("max_batch_size must be >= 0")
        if self.dynamic_batching is not None:
            if self.max_batch_size == 0:
                raise ModelConfigError(f"{self.name}: dynamic batching needs max_batch_size > 0")
            bad = [s for s in self.dynamic_batching.preferred_batch_sizes if not 0 < s <= self.max_batch_size]
            if bad:
                raise ModelConfigError(f"{self.name}: preferred sizes {bad} exceed max_batch_size")
        names = [t.name for t in (*self.inputs, *self.outputs)]
        if len(names) != len(set(names)):
            raise ModelConfigError(f"{self.name}: duplicate tensor names")
        if self.latest_versions < 1 or self.instance_group.count < 1:
            raise ModelConfigError(f"{self.name}: latest_versions and instance count must be >= 1")

    def to_pbtxt(self) -> str:
        """Render as protobuf text (the ``config.pbtxt`` Triton reads)."""
        lines = [
            f'name: "{self.name}"',
            f'backend: "{self.backend}"',
            f"max_batch_size: {self.max_batch_size}",
        ]
        lines += _tensors("input", self.inputs) + _tensors("output", self.outputs)
        ig = self.instance_group
        lines.append(f"instance_group [ {{ kind: {ig.kind} count: {ig.count} }} ]")
        if self.dynamic_batching is not None:
            db = self.dynamic_batching
            sizes = ", ".join(str(s) for s in db.preferred_batch_sizes)
            lines.append(
                f"dynamic_batching {{ preferred_batch_size: [ {sizes} ] "
                f"max_queue_delay_microseconds: {db.max_queue_delay_us} }}"
            )
        lines.append(f"version_policy: {{ latest: {{ num_versions: {self.latest_versions} }} }}")
        for key, value in self.parameters:
            lines.append(f'parameters: {{ key: "{key}" value: {{ string_value: "{_esc(value)}" }} }}')
        return "\n".join(lines) + "\n"


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _tensors(kind: str, specs: tuple[TensorSpec, ...]) -> list[str]:
    out = [f"{kind} ["]
    for i, t in enumerate(specs):
        dims = ", ".join(str(d) for d in t.dims)
        opt = " optional: true" if t.optional else ""
        sep = "," if i < len(specs) - 1 else ""
        out.append(f'  {{ name: "{t.name}" data_type: {t.dtype.value} dims: [ {dims} ]{opt} }}{sep}')
    out.append("]")
    return out
