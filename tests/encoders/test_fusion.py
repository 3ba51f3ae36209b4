"""Fusion model: any subset of modalities, graceful absence, versioned save/load."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch

from encoders.errors import ArtefactError
from encoders.fusion import MODALITIES, FusionConfig, FusionModel, load_fusion, save_fusion

B = 6


def inputs(cfg: FusionConfig, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(B, cfg.text_dim, generator=g),
        torch.randn(B, cfg.image_dim, generator=g),
        torch.randn(B, cfg.feature_dim, generator=g),
        torch.randint(1, cfg.num_ids, (B,), generator=g),
    )


@pytest.fixture(scope="module")
def model() -> FusionModel:
    torch.manual_seed(0)
    return FusionModel(FusionConfig(num_ids=20, out_dim=64)).eval()


@pytest.mark.parametrize(
    "subset",
    [s for r in range(1, 5) for s in itertools.combinations(range(len(MODALITIES)), r)],
    ids=lambda s: "+".join(MODALITIES[i] for i in s),
)
def test_every_subset_gives_finite_unit_vectors(model: FusionModel, subset: tuple[int, ...]) -> None:
    mask = torch.zeros(B, 4, dtype=torch.bool)
    mask[:, list(subset)] = True
    with torch.no_grad():
        out = model(*inputs(model.config), mask)
    assert out.shape == (B, 64)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.norm(dim=1), torch.ones(B))


def test_absent_inputs_do_not_matter(model: FusionModel) -> None:
    text, image, feats, idx = inputs(model.config)
    mask = torch.tensor([[True, False, False, False]] * B)
    with torch.no_grad():
        a = model(text, image, feats, idx, mask)
        b = model(text, image * 1e6, torch.full_like(feats, float("nan")), idx * 0 + 3, mask)
    torch.testing.assert_close(a, b)


def test_unknown_id_means_id_absent(model: FusionModel) -> None:
    text, image, feats, idx = inputs(model.config)
    with torch.no_grad():
        with_zero_id = model(text, image, feats, torch.zeros_like(idx), torch.ones(B, 4))
        without = model(text, image, feats, idx, torch.tensor([[1.0, 1.0, 1.0, 0.0]] * B))
    torch.testing.assert_close(with_zero_id, without)


def test_nothing_present_gives_zero_not_nan(model: FusionModel) -> None:
    with torch.no_grad():
        out = model(*inputs(model.config), torch.zeros(B, 4))
    assert torch.equal(out, torch.zeros_like(out))


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        FusionConfig(out_dim=32)
    with pytest.raises(ValueError):
        FusionConfig(num_ids=0)
    assert FusionModel(FusionConfig(out_dim=128)).head[1].out_features == 128


def test_save_load_round_trip(model: FusionModel, tmp_path: Path) -> None:
    save_fusion(model, tmp_path, {"model_version": "fusion-v7"})
    loaded, meta = load_fusion(tmp_path)
    assert meta["model_version"] == "fusion-v7" and meta["config"]["num_ids"] == 20
    x = inputs(model.config, seed=3)
    mask = torch.ones(B, 4)
    with torch.no_grad():
        assert torch.equal(model(*x, mask), loaded(*x, mask))


def test_load_rejects_other_format(model: FusionModel, tmp_path: Path) -> None:
    save_fusion(model, tmp_path, {})
    meta = json.loads((tmp_path / "meta.json").read_text())
    meta["format_version"] = 999
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ArtefactError):
        load_fusion(tmp_path)
    with pytest.raises(ArtefactError):
        load_fusion(tmp_path / "missing")
