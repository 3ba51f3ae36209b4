"""The in-process runner on the shipped sample with a tiny model trained here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from encoders.artefact import write_artefact
from encoders.policy import UserStatePolicy
from recstream.cli import main
from recstream.lab.datasets import load_movielens
from recstream.lab.evaluation.inprocess import LeakError, check_trained_before_cut
from recstream.lab.training.item_table import cached_text_embeddings
from recstream.lab.training.train import TrainConfig, train_fusion
from recstream.settings import REPO_ROOT

SAMPLE = REPO_ROOT / "deploy" / "local" / "sample" / "movielens"
CUT = 0.8


def train(models: Path, until_frac: float) -> Path:
    """Train a one-epoch model on the sample (text embeddings cached under artifacts/cache)."""
    ml = load_movielens(SAMPLE)
    ids, text = cached_text_embeddings(ml, REPO_ROOT / "artifacts" / "cache")
    cfg = TrainConfig(
        until_frac=until_frac,
        epochs=1,
        batch_size=512,
        window=16,
        out_dim=64,
        hidden_dim=64,
        policy=UserStatePolicy(tau_s=86_400.0),
        threads=None,
    )
    res = train_fusion(ml, ids, text, cfg, progress=False)
    return write_artefact(models, res.model, res.meta, res.table.item_ids, res.item_embeddings)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, object], Path]:
    root = tmp_path_factory.mktemp("eval")
    artefact = train(root / "models", CUT)
    out = root / "out" / "report.json"
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "eval",
                "--dataset",
                f"movielens:{SAMPLE}",
                "--k",
                "10",
                "--cut",
                str(CUT),
                "--model",
                str(artefact),
                "--out",
                str(out),
                "--no-progress",
            ]
        )
    assert exit_.value.code == 0
    return json.loads(out.read_text()), out


def test_report_structure(report: tuple[dict[str, object], Path]) -> None:
    rep, out = report
    assert rep["k"] == 10 and rep["mode"] == "inprocess"
    systems = rep["systems"]
    assert isinstance(systems, dict)
    assert list(systems) == ["recstream", "recstream_frozen", "popularity", "itemknn", "ease"]
    ml = load_movielens(SAMPLE)
    cut = ml.cut_order(CUT)
    n = {fig["events"] for fig in systems.values()}
    assert len(n) == 1 and 0 < n.pop() <= sum(1 for i in ml.ratings if i.order >= cut)
    for fig in systems.values():
        for key in ("hr@10", "ndcg@10", "cold_hr@10", "warm_user_hr@10"):
            assert 0.0 <= fig[key] <= 1.0
        assert fig["ndcg@10"] <= fig["hr@10"]
        assert fig["cold_events"] + fig["warm_item_events"] == fig["events"]
    events = rep["events"]
    assert isinstance(events, dict) and events["all"]["click"] == len(ml.ratings)
    assert events["scored"]["review"] == 0
    model = rep["model"]
    assert isinstance(model, dict) and model["trained_until_order"] <= model["cut_order"] == cut
    assert rep["dataset"]["fingerprint"]  # type: ignore[index]
    assert "replay_s" in rep["timings"]  # type: ignore[operator]
    assert out.with_suffix(".png").stat().st_size > 1000
    assert "| recstream |" in out.with_suffix(".md").read_text()


def test_model_trained_past_the_cut_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    artefact = train(tmp_path / "models", 0.9)
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "--dataset", f"movielens:{SAMPLE}", "--cut", "0.8", "--model", str(artefact)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "after the evaluation cut" in err and "recstream train" in err and "--until-frac 0.8" in err


def test_check_trained_before_cut() -> None:
    check_trained_before_cut({"trained_until_order": 100, "cut_frac": 0.8}, 0.8, 100, "movielens:x")
    with pytest.raises(LeakError, match="after the evaluation cut"):
        check_trained_before_cut({"trained_until_order": 101, "cut_frac": 0.8}, 0.8, 100, "movielens:x")
    with pytest.raises(LeakError, match=r"cut_frac=0\.7"):
        check_trained_before_cut({"trained_until_order": 90, "cut_frac": 0.7}, 0.8, 100, "movielens:x")
    with pytest.raises(LeakError):
        check_trained_before_cut({}, 0.8, 100, "movielens:x")


def test_unknown_mode_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "--dataset", f"movielens:{SAMPLE}", "--mode", "offline"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_pipeline_mode_refuses_a_model_trained_past_the_cut(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The leak check runs before any server is contacted.
    model = tmp_path / "m"
    model.mkdir()
    meta = {"model_version": "fusion-v9", "trained_until_order": 10**9, "cut_frac": 0.8}
    (model / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "--dataset", f"movielens:{SAMPLE}", "--mode", "pipeline", "--model", str(model)])
    assert exit_.value.code == 2 and "after the evaluation cut" in capsys.readouterr().err
