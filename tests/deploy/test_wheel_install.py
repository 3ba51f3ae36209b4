"""The worker as users deploy it: the built wheel, a read-only environment, a non-root user.

Builds the wheel from a copy of this checkout (tracked and untracked-but-not-ignored files, as
a fresh clone would have them), installs it with the worker's locked base dependencies only
(``requirements-worker.lock``: no torch, no Triton server, no lab) into a new virtual
environment outside the repo, makes that environment read-only, and runs ``recstream worker``
as ``nobody`` from an empty, read-only directory against the running stack. The only writable
place is ``RECSTREAM_HOME``, as a volume would be in a container with a read-only root
filesystem. ``/readyz`` must answer 200 and a click must get its list.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recstream.settings import Settings
from recstream.testing import (
    EventProducer,
    ListCollector,
    WorkerProcess,
    isolated_env,
    prepare,
    recstream_environ,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "matplotlib", "scipy", "faiss", "sentence_transformers", "onnxruntime", "pytriton")


def _source_copy(dst: Path) -> None:
    """The files a fresh clone of this working tree has (committed or not, never ignored ones)."""
    names = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in filter(None, names):
        src = REPO / raw.decode()
        if src.is_file():
            (dst / raw.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / raw.decode())


def _run(*cmd: str, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, check=False)
    assert out.returncode == 0, f"{cmd[:4]} -> {out.returncode}:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    return out


def _read_only(root: Path) -> None:
    """Everything under ``root`` read-only for everyone (directories stay traversable)."""
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        path.chmod((mode | stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH) & ~0o222)
    for path in [root, *root.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o111)


@pytest.fixture(scope="module")
def installed() -> Iterator[Path]:
    """A read-only virtual environment holding the wheel and the worker's locked dependencies."""
    # Not pytest's tmp_path: its parents are private to root, and nobody must reach this one.
    base = Path(tempfile.mkdtemp(prefix="recstream-wheel-", dir="/tmp"))
    base.chmod(0o755)
    try:
        src, dist, venv = base / "src", base / "dist", base / "venv"
        _source_copy(src)
        pip = (sys.executable, "-m", "pip")
        _run(*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src))
        wheel = next(dist.glob("recstream-*.whl"))
        _run(sys.executable, "-m", "venv", str(venv))
        py = str(venv / "bin" / "python")
        _run(
            py, "-m", "pip", "install", "-q", "--require-hashes", "-r", str(src / "requirements-worker.lock")
        )
        _run(py, "-m", "pip", "install", "-q", "--no-deps", str(wheel))
        shutil.rmtree(src)
        _read_only(venv)
        yield venv
    finally:
        for path in [base, *base.rglob("*")]:  # give write back so the tree can be removed
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


def _as_nobody(argv: list[str]) -> list[str]:
    user = pwd.getpwnam("nobody")
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", *argv]


def _environment(settings_env: dict[str, str], home: Path, venv: Path) -> dict[str, str]:
    """What the worker sees: the deployment's variables, no path of this checkout, a writable home."""
    env = {k: v for k, v in settings_env.items() if not k.endswith("_DIR") and not k.endswith("_PATH")}
    return {
        **env,
        "RECSTREAM_HOME": str(home),
        "RECSTREAM_LOG_LEVEL": "WARNING",
        "HOME": pwd.getpwnam("nobody").pw_dir,
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "LANG": "C.UTF-8",
    }


def test_installed_wheel_holds_no_lab_and_no_heavy_dependency(installed: Path) -> None:
    py = str(installed / "bin" / "python")
    out = _run(
        py,
        "-c",
        "import importlib.util as u, json, sys\n"
        "from recstream.cli import build_parser; build_parser()\n"
        "import streams.app, streams.runtime, streams.processor\n"
        f"print(json.dumps({{'heavy': [m for m in {HEAVY!r} if u.find_spec(m)],"
        " 'loaded': [m for m in sys.modules if m.split('.')[0] in ('torch', 'faiss')]}))",
        cwd="/",
    )
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found == {"heavy": [], "loaded": []}, found


def test_read_only_install_serves_a_click_as_nobody(installed: Path, stack: Settings) -> None:
    env = isolated_env(recstream_environ(), partitions=1)
    settings = prepare(env)
    scratch = Path(tempfile.mkdtemp(prefix="recstream-run-", dir="/tmp"))
    scratch.chmod(0o755)
    home, cwd = scratch / "home", scratch / "empty"
    home.mkdir()
    cwd.mkdir(mode=0o555)
    nobody = pwd.getpwnam("nobody")
    os.chown(home, nobody.pw_uid, nobody.pw_gid)
    worker = None
    try:
        worker = WorkerProcess.start(
            _environment(env, home, installed),
            scratch / "worker.log",
            ready_timeout_s=120,
            command=_as_nobody([str(installed / "bin" / "recstream"), "worker"]),
            cwd=cwd,
            inherit_env=False,
        )
        assert worker.get("/readyz") and json.loads(worker.get("/readyz"))["ready"]
        assert _owner(worker.proc.pid) == nobody.pw_uid

        ts = int(time.time() * 1000)
        click_id = f"c-{uuid.uuid4().hex[:8]}"
        uploads: list[dict[str, Any]] = [
            {"type": "upload", "event_id": f"up{n}-{click_id}", "user_id": "studio", "item_id": f"m{n}"}
            | {"ts": ts + n, "schema_version": 1, "title": f"Film {n}", "tags": ["Drama"]}
            for n in (1, 2)
        ]
        click: dict[str, Any] = {"type": "click", "event_id": click_id, "user_id": "u1", "item_id": "m1"}
        click |= {"ts": ts + 10, "schema_version": 1}
        with ListCollector(settings) as lists, EventProducer(settings) as producer:
            for up in uploads:
                producer.send_doc("upload", "studio", up)
            producer.flush(30)
            assert lists.wait_for([u["event_id"] for u in uploads], 60, alive=lambda: worker.alive) == set()
            producer.send_doc("click", "u1", click)
            producer.flush(30)
            assert lists.wait_for([click_id], 60, alive=lambda: worker.alive) == set(), worker.log_tail()
            # The click's list: the other item, not the one just clicked.
            assert (lists[click_id].user_id, lists[click_id].items) == ("u1", ("m2",))

        assert worker.alive, worker.log_tail()
        assert list(cwd.iterdir()) == [], "the worker wrote into its working directory"
        written = [p for p in home.rglob("*") if p.is_file()]
        assert all(p.stat().st_uid == nobody.pw_uid for p in written)
    finally:
        if worker is not None:
            worker.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def _owner(pid: int) -> int:
    """The real user id of a process (the worker under setpriv)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")
