"""Generated config.pbtxt files, checked without a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.config import DataType, DynamicBatching, InstanceGroup, ModelConfig, TensorSpec
from serving.errors import ModelConfigError
from serving.models import MODELS, instance_kind
from serving.repository import build_repository


def _model(**kw: object) -> ModelConfig:
    base: dict[str, object] = {
        "name": "m",
        "inputs": (TensorSpec("TEXT", DataType.BYTES, (1,)),),
        "outputs": (TensorSpec("EMBEDDING", DataType.FP32, (384,)),),
        "max_batch_size": 32,
    }
    base.update(kw)
    return ModelConfig(**base)  # type: ignore[arg-type]


def test_pbtxt_renders_tensors_batching_instances_and_versions() -> None:
    cfg = _model(
        dynamic_batching=DynamicBatching((4, 16), 1500),
        instance_group=InstanceGroup("KIND_GPU", 2),
        latest_versions=2,
        parameters=(("weights", 'a "quoted" path'),),
    )
    text = cfg.to_pbtxt()
    assert 'name: "m"' in text and 'backend: "python"' in text and "max_batch_size: 32" in text
    assert '{ name: "TEXT" data_type: TYPE_STRING dims: [ 1 ] }' in text
    assert '{ name: "EMBEDDING" data_type: TYPE_FP32 dims: [ 384 ] }' in text
    assert "preferred_batch_size: [ 4, 16 ]" in text and "max_queue_delay_microseconds: 1500" in text
    assert "instance_group [ { kind: KIND_GPU count: 2 } ]" in text
    assert "latest: { num_versions: 2 }" in text
    assert r'string_value: "a \"quoted\" path"' in text
    assert text.count("{") == text.count("}") and text.count("[") == text.count("]")


def test_no_dynamic_batching_block_when_disabled() -> None:
    assert "dynamic_batching" not in _model(dynamic_batching=None).to_pbtxt()


@pytest.mark.parametrize(
    "kw",
    [
        {"name": "bad name"},
        {"max_batch_size": 8, "dynamic_batching": DynamicBatching((16,), 100)},
        {"max_batch_size": 0},
        {"outputs": (TensorSpec("TEXT", DataType.FP32, (1,)),)},  # duplicate tensor name
        {"latest_versions": 0},
    ],
)
def test_invalid_configs_are_refused(kw: dict[str, object]) -> None:
    with pytest.raises(ModelConfigError):
        _model(**kw)


def test_tensor_dims_validated() -> None:
    with pytest.raises(ModelConfigError):
        TensorSpec("X", DataType.FP32, (0,))


def test_instance_kind_follows_setting() -> None:
    assert instance_kind("cpu") == "KIND_CPU"
    assert instance_kind("gpu") == "KIND_GPU"


def test_built_repository_has_config_and_source_for_every_model(tmp_path: Path) -> None:
    names = build_repository(tmp_path / "repo", "KIND_CPU")
    assert set(names) == set(MODELS)
    assert names, "no model built"
    for name in names:
        folder = tmp_path / "repo" / name
        assert (folder / "config.pbtxt").read_text().startswith(f'name: "{name}"')
        assert (folder / "1" / "model.py").exists()


def test_text_encoder_runs_onnx_on_cpu_and_pytorch_otherwise(tmp_path: Path) -> None:
    from serving.repository import text_encoder_params

    assert text_encoder_params("torch", "KIND_CPU", tmp_path) == {}
    assert text_encoder_params("onnx-int8", "KIND_GPU", tmp_path) == {}
    with pytest.raises(ValueError):
        text_encoder_params("onnx-fp8", "KIND_CPU", tmp_path)
    params = text_encoder_params("onnx-int8", "KIND_CPU", tmp_path)
    onnx = Path(params["onnx_path"])
    assert onnx.is_file() and onnx.is_relative_to(tmp_path)  # exported into the given cache
    build_repository(tmp_path / "repo", "KIND_CPU", text_params=params, names=["text_encoder"])
    text = (tmp_path / "repo" / "text_encoder" / "config.pbtxt").read_text()
    assert f'string_value: "{onnx}"' in text
    assert "preferred_batch_size: [ 16, 32, 64, 128 ]" in text
    build_repository(tmp_path / "repo", "KIND_CPU", names=["text_encoder"])
    assert "onnx_path" not in (tmp_path / "repo" / "text_encoder" / "config.pbtxt").read_text()
