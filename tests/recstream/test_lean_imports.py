"""The CLI, ``recstream validate`` and the worker start without the heavy extras.

Each check runs in a fresh interpreter, since this test session itself has long imported
torch. The worker's install (base dependencies only, ``requirements-worker.lock``) has no
torch at all, so an import of it here would be a crash there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "matplotlib", "scipy", "faiss", "sentence_transformers", "onnxruntime", "tqdm")
REPO = Path(__file__).resolve().parents[2]

# What each entry point imports before it does any work (the worker's own imports are those of
# recstream/cli/worker.py's run()).
ENTRY_POINTS = {
    "help": "from recstream.cli import build_parser; build_parser()",
    "validate": (
        "from recstream.cli import build_parser; build_parser()\n"
        "import recstream.cli.validate, schemas.validate, schemas.limits, schemas.edge"
    ),
    "worker": (
        "from recstream.cli import build_parser; build_parser()\n"
        "import faust\n"
        "import serving.client.resilience, serving.client.triton\n"
        "import streams.app, streams.retrieval, streams.checkpoint, streams.processor\n"
        "import streams.runtime, streams.state.cassandra, streams.topics, streams.web.routes\n"
        "from streams.retrieval import make_index"
    ),
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_entry_point_does_not_import_heavy_packages(entry: str) -> None:
    code = ENTRY_POINTS[entry] + (
        f"\nimport json, sys; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [], f"{entry} imported heavy packages"


def test_the_check_sees_a_heavy_import() -> None:
    """The probe itself works: importing training pulls torch in, and the check says so."""
    code = (
        "import recstream.lab.training.train\n"
        f"import json, sys; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True, timeout=120
    )
    assert "torch" in json.loads(out.stdout.strip().splitlines()[-1])
