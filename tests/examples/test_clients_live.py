"""The Node (kafkajs) and Go (franz-go) examples against the real stack.

Each produces a click keyed by its user, waits for the list naming that click, and validates
both against the bundle ``recstream schema export`` wrote; the test checks their output with
the Python contract too. Dependencies come from the npm registry and the Go module proxy,
pinned by examples/node/package-lock.json and examples/go/go.sum.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from recstream.testing import Deployment, EventProducer, ListCollector
from schemas.bundle import export_bundle
from schemas.events import ClickEvent, RecsUpdated

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(
    cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout_s: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
    )


@pytest.fixture(scope="module")
def node_example() -> list[str]:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.fail("needs Node.js and npm (.ci/run checks them)")
    root = EXAMPLES / "node"
    lock = root / "package-lock.json"
    stamp = root / "node_modules" / ".recstream-lock"
    if not stamp.exists() or stamp.read_text() != lock.read_text():
        done = _run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], root)
        assert done.returncode == 0, done.stderr[-3000:]
        stamp.write_text(lock.read_text())
    return ["node", str(root / "click_and_list.mjs")]


@pytest.fixture(scope="module")
def go_example(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    go = shutil.which("go")
    if go is None:
        pytest.fail("needs the Go toolchain >= 1.22 (.ci/run checks it)")
    binary = tmp_path_factory.mktemp("go-example") / "example"
    done = _run([go, "build", "-mod=readonly", "-o", str(binary), "."], EXAMPLES / "go")
    assert done.returncode == 0, done.stderr[-3000:]
    return [str(binary)]


@pytest.mark.parametrize("lang", ["node", "go"])
def test_example_client_gets_a_valid_list_for_its_click(
    lang: str, request: pytest.FixtureRequest, deployment_factory: Callable[[], Deployment], tmp_path: Path
) -> None:
    command = request.getfixturevalue(f"{lang}_example")
    dep = deployment_factory()
    dep.start_worker()
    s = dep.settings
    bundle = tmp_path / "bundle"
    export_bundle(bundle, "test")
    upload = {
        "type": "upload",
        "event_id": "up-1",
        "user_id": "studio",
        "item_id": "movie-1",
        "ts": 1_700_000_000_000,
        "schema_version": 1,
        "title": "The example film",
    }
    with EventProducer(s) as producer, ListCollector(s) as lists:
        producer.send_doc("upload", "studio", upload)
        producer.flush(30)
        assert not lists.wait_for({"up-1"}, timeout_s=120)
    user = f"{lang}-user"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RECSTREAM_")},
        "KAFKA_BOOTSTRAP": s.kafka_bootstrap_servers,
        "BUNDLE_DIR": str(bundle),
        "TOPIC_CLICK": s.topic_click,
        "TOPIC_RECS": s.topic_recs,
        "USER_ID": user,
        "ITEM_ID": "movie-1",
        "TIMEOUT_MS": "120000",
        "KAFKAJS_NO_PARTITIONER_WARNING": "1",
    }
    done = _run(command, EXAMPLES / lang, env, timeout_s=180)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["ok"] is True
    click = ClickEvent.from_json_bytes(json.dumps(out["click"]).encode())
    lst = RecsUpdated.from_json_bytes(json.dumps(out["list"]).encode())
    assert click.user_id == lst.user_id == user and lst.trigger_event_id == click.event_id
    assert lst.seq == 1 and "movie-1" not in {it.item_id for it in lst.items}  # seen items excluded
