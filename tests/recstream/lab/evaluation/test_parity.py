"""Both evaluation modes agree: in-process vs Kafka + real worker + Triton + Cassandra.

The served model is whatever the stack's Triton serves (the untrained seeded fallback on a
fresh clone); the in-process mode loads the same artefact. The slice is the start of the
shipped 40-user sample, with the cut inside it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from recstream.lab.datasets import load_movielens
from recstream.lab.evaluation.inprocess import run_inprocess
from recstream.lab.evaluation.pipeline import parity, run_pipeline, served_artefact, served_info
from recstream.lab.evaluation.protocol import ordered_events
from recstream.settings import REPO_ROOT, Settings

SAMPLE = REPO_ROOT / "deploy" / "local" / "sample" / "movielens"


def test_inprocess_and_pipeline_modes_agree(stack: Settings, tmp_path: Path) -> None:
    settings = stack.model_copy(update={"k": 10})
    info = asyncio.run(served_info(settings))
    artefact = served_artefact(settings, info.version, tmp_path)
    ml = load_movielens(SAMPLE)
    events = list(ordered_events(ml))[:900]
    cut = events[500][0]
    common = {"events": events, "cut_order": cut, "check_leak": False, "progress": False}
    a = asyncio.run(run_inprocess(ml, artefact, settings, **common))  # type: ignore[arg-type]
    b = asyncio.run(run_pipeline(ml, artefact, settings, **common))  # type: ignore[arg-type]

    assert b.model["events_without_list"] == 0 and b.model["list_model_versions"] == [info.version]
    p = parity(a, b)
    print(f"parity on {p['events']} scored events: {p}")
    assert p["only_one"] == 0 and p["events"] >= 150
    assert p["identical_lists"] >= 0.99, p
    assert p["hr_diff"] <= 0.002, p
    # The pipeline's own scoring saw real lists, not empty ones.
    assert b.tallies["recstream"].n == a.tallies["recstream"].n
    assert all(len(lst) == 10 for lst in b.scored_lists.values())
