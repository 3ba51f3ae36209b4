"""A tiny end-to-end training run: loss falls, artefact files exist, metadata records the cut."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from encoders.artefact import latest_artefact, load_artefact, write_artefact
from encoders.policy import UserStatePolicy
from encoders.text import TextEncoder
from recstream.cli import main
from recstream.lab.datasets import load_movielens
from recstream.lab.training.item_table import cached_text_embeddings
from recstream.lab.training.train import TrainConfig, TrainResult, embed_items, train_fusion

CFG = TrainConfig(
    until_frac=0.8,
    epochs=6,
    batch_size=32,
    lr=1e-2,
    window=16,
    id_dropout=0.3,
    policy=UserStatePolicy(tau_s=86_400.0),
    threads=None,
)


@pytest.fixture(scope="module")
def trained(
    tiny_movielens: Path, text_encoder: TextEncoder, tmp_path_factory: pytest.TempPathFactory
) -> TrainResult:
    ml = load_movielens(tiny_movielens)
    ids, text = cached_text_embeddings(ml, tmp_path_factory.mktemp("cache"), text_encoder.encode)
    return train_fusion(ml, ids, text, CFG, progress=False)


def test_loss_decreases(trained: TrainResult) -> None:
    steps = len(trained.losses) // CFG.epochs
    first, last = np.mean(trained.losses[:steps]), np.mean(trained.losses[-steps:])
    assert last < first - 0.1, (first, last)


def test_uses_only_interactions_before_the_cut(trained: TrainResult, tiny_movielens: Path) -> None:
    ml = load_movielens(tiny_movielens)
    cut = ml.cut_order(CFG.until_frac)
    meta = trained.meta
    assert meta["trained_until_order"] == cut and meta["cut_frac"] == CFG.until_frac
    assert meta["trained_until_ts"] == ml.cut_ts(CFG.until_frac)
    assert meta["n_train_interactions"] == sum(1 for i in ml.interactions if i.order < cut)
    warm = {i.movie_id for i in ml.interactions if i.order < cut}
    assert {int(m) for m in meta["item_index"]} == warm
    assert meta["last_trained_ts"] <= meta["trained_until_ts"]


def test_item_embeddings_cover_catalogue(trained: TrainResult, tiny_movielens: Path) -> None:
    ml = load_movielens(tiny_movielens)
    assert sorted(trained.table.item_ids.tolist()) == sorted(ml.movies)
    np.testing.assert_allclose(np.linalg.norm(trained.item_embeddings, axis=1), 1.0, atol=1e-5)


def test_artefact_versions_and_round_trip(trained: TrainResult, tmp_path: Path) -> None:
    first = write_artefact(
        tmp_path,
        trained.model,
        trained.meta,
        trained.table.item_ids,
        trained.item_embeddings,
        trained.losses,
        8,
    )
    second = write_artefact(
        tmp_path, trained.model, trained.meta, trained.table.item_ids, trained.item_embeddings
    )
    assert (first.name, second.name) == ("1", "2") and latest_artefact(tmp_path) == second
    for name in ("model.pt", "meta.json", "items.npy", "item_ids.npy", "loss.png"):
        assert (first / name).is_file(), name
    art = load_artefact(first)
    assert art.meta["model_version"] == "fusion-v1"
    assert json.loads((second / "meta.json").read_text())["model_version"] == "fusion-v2"
    with torch.no_grad():
        np.testing.assert_allclose(embed_items(art.model, trained.table), art.item_embeddings, atol=1e-6)


def test_deterministic(
    tiny_movielens: Path, text_encoder: TextEncoder, tmp_path: Path, trained: TrainResult
) -> None:
    ml = load_movielens(tiny_movielens)
    ids, text = cached_text_embeddings(ml, tmp_path, text_encoder.encode)
    again = train_fusion(ml, ids, text, CFG, progress=False)
    assert again.losses == trained.losses


def test_cli_train(
    tiny_movielens: Path, text_encoder: TextEncoder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ml = load_movielens(tiny_movielens)
    cached_text_embeddings(ml, tmp_path / "cache", text_encoder.encode)  # warm: no model load
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "train",
                "--dataset",
                f"movielens:{tiny_movielens}",
                "--epochs",
                "2",
                "--batch-size",
                "32",
                "--out",
                str(tmp_path / "models"),
                "--cache-dir",
                str(tmp_path / "cache"),
                "--no-progress",
                "--eval",
                "--tau-s",
                "86400",
            ]
        )
    assert exit_.value.code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model_version"] == "fusion-v1" and 0.0 <= summary["hr"] <= 1.0
    meta = json.loads((tmp_path / "models" / "fusion" / "1" / "meta.json").read_text())
    assert meta["user_state"]["tau_s"] == 86400.0 and meta["cut_frac"] == 0.8
    assert meta["dataset_fingerprint"]
