"""The worker image (deploy/docker/worker.Dockerfile) built and run as users deploy it.

``deploy/docker/build-worker-image.sh`` builds the image from this checkout's wheel and the
locked worker dependencies (or reuses it: the image is tagged with a key of the wheel's bytes,
the lock and the Dockerfile, so an unchanged checkout costs seconds). The container then runs
against the running local stack, in a deployment of its own (topics, consumer group, keyspace),
the strict way: ``--read-only`` root filesystem *without* podman's default tmpfs on /tmp and
/run, user 65534:65534, and one tmpfs at ``RECSTREAM_HOME`` (/var/lib/recstream) as the only
writable place. ``/readyz`` must answer 200, a click after an upload must get its list, and the
container must stop on SIGTERM.

Needs podman (``/work/shared/containers/podman-setup.sh`` on the machines without Docker) and
the base image the Dockerfile names; without podman the test is skipped and the read-only wheel
test (``tests/deploy/test_wheel_install.py``) stands in for it. Takes a minute or two with the
image built, about three more to build it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from recstream.settings import Settings
from recstream.testing import Deployment, free_port, recstream_environ

pytestmark = [
    pytest.mark.integration,
    pytest.mark.long,
    pytest.mark.timeout(1800),  # the first test also builds the image
    pytest.mark.skipif(
        shutil.which("podman") is None,
        reason="podman is not installed (see /work/shared/containers/podman-setup.sh); "
        "tests/deploy/test_wheel_install.py covers the read-only install without a container",
    ),
]

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "deploy" / "docker" / "build-worker-image.sh"
CONTAINERS_CONF = Path("/var/tmp/recstream-containers.conf")
HOME_IN_IMAGE = "/var/lib/recstream"
#: Settings naming host files or folders: meaningless inside the container (RECSTREAM_HOME there).
HOST_PATH_SUFFIXES = ("_DIR", "_PATH", "_FILE", "_CAFILE", "_CERTFILE", "_KEYFILE")


def _podman_env() -> dict[str, str]:
    env = dict(os.environ)
    if "CONTAINERS_CONF" not in env and CONTAINERS_CONF.exists():
        env["CONTAINERS_CONF"] = str(CONTAINERS_CONF)
    return env


def _podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, env=_podman_env()
    )
    if check:
        assert out.returncode == 0, (
            f"podman {' '.join(args[:3])} failed ({out.returncode}):\n{out.stderr[-3000:]}"
        )
    return out


@pytest.fixture(scope="module")
def image() -> str:
    """The worker image of this checkout (built, or reused when its content tag exists)."""
    started = time.monotonic()
    out = subprocess.run(
        ["bash", str(BUILD)], capture_output=True, text=True, timeout=1200, env=_podman_env(), cwd=REPO
    )
    assert out.returncode == 0, (
        f"image build failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-4000:]}"
    )
    name = out.stdout.strip().splitlines()[-1].removeprefix("image: ")
    print(f"[image] {name} ready in {time.monotonic() - started:.0f} s")
    return name


def _container_env(env: dict[str, str], port: int) -> list[str]:
    """``-e K=V`` for the deployment's settings (no host path) and the test's web port."""
    kept = {k: v for k, v in env.items() if not k.upper().endswith(HOST_PATH_SUFFIXES)}
    kept.pop("RECSTREAM_HOME", None)  # the image's own (/var/lib/recstream)
    kept.update({"RECSTREAM_WEB_PORT": str(port), "RECSTREAM_WEB_HOST": "127.0.0.1"})
    return [arg for k, v in sorted(kept.items()) for arg in ("-e", f"{k}={v}")]


@pytest.fixture()
def deployment(stack: Settings, tmp_path: Path) -> Iterator[Deployment]:
    """Own topics, consumer group and keyspace on the running stack; dropped afterwards."""
    with Deployment.create(recstream_environ(), tmp_path, partitions=1) as dep:
        yield dep


def test_image_holds_the_wheel_not_the_source(image: str) -> None:
    probe = (
        "import importlib.util as u, json, os, sys, recstream\n"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'pytriton', 'matplotlib', 'scipy',"
        " 'faiss', 'onnxruntime', 'pytest') if u.find_spec(m)]\n"
        "marks = {'pyproject.toml', 'requirements.lock', 'requirements-worker.lock',"
        " 'worker.Dockerfile', 'test_worker_image.py', 'test_wheel_install.py'}\n"
        "trees = [os.path.join(d, f) for top in os.listdir('/') if top not in ('proc', 'sys', 'dev')"
        " for d, _, fs in os.walk('/' + top) for f in fs if f in marks or f.endswith('.whl')]\n"
        "print(json.dumps({'uid': os.getuid(), 'gid': os.getgid(), 'module': recstream.__file__,"
        " 'heavy': heavy, 'source_files': trees, 'home': os.environ.get('RECSTREAM_HOME')}))"
    )
    out = _podman(
        "run", "--rm", "--read-only", "--read-only-tmpfs=false", "--entrypoint", "python", image, "-c", probe
    )
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["module"].startswith("/opt/recstream/lib/python3.11/site-packages/recstream/"), found
    assert (found["uid"], found["gid"]) == (65534, 65534), found
    assert found["heavy"] == [], found
    assert found["source_files"] == [], found
    assert found["home"] == HOME_IN_IMAGE, found
    cfg = _podman("image", "inspect", "--format", "{{json .Config}}", image)
    config = json.loads(cfg.stdout)
    assert config["Entrypoint"] == ["recstream"] and config["Cmd"] == ["worker"], config
    assert config["User"] == "65534:65534", config


def test_read_only_container_serves_a_click(image: str, deployment: Deployment, tmp_path: Path) -> None:
    port = free_port()
    name = f"recstream-test-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "container.log"
    argv = [
        "podman",
        "run",
        "--rm",
        "--name",
        name,
        "--read-only",
        "--read-only-tmpfs=false",  # no writable /tmp, /run, /var/tmp: only RECSTREAM_HOME
        "--network",
        "host",
        "--user",
        "65534:65534",
        "--tmpfs",
        # U: owned by the container's user (podman 4.3 ignores mode=1777 on a tmpfs).
        f"{HOME_IN_IMAGE}:rw,U,size=256m",
        *_container_env(deployment.env, port),
        image,
        "worker",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=_podman_env())
    try:
        started = time.monotonic()
        assert _wait_ready(proc, port, log) == 200
        print(f"[container] ready in {time.monotonic() - started:.1f} s")
        click_id = f"c-{uuid.uuid4().hex[:8]}"
        _send_and_expect_list(deployment.settings, click_id)
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]

        inside = _podman(
            "exec",
            name,
            "python",
            "-c",
            "import json, os\n"
            "written = [os.path.join(d, f) for d, ds, fs in os.walk('/var/lib/recstream') for f in ds + fs]\n"
            "try:\n open('/opt/recstream/probe', 'w')\n ro = False\n"
            "except OSError:\n ro = True\n"
            "print(json.dumps({'uid': os.getuid(), 'written': written, 'root_read_only': ro,"
            " 'cwd': os.getcwd()}))",
        )
        seen = json.loads(inside.stdout.strip().splitlines()[-1])
        assert seen["uid"] == 65534 and seen["root_read_only"], seen
        assert f"{HOME_IN_IMAGE}/stack/faust" in seen["written"], seen  # Faust's datadir, under the home

        _podman("stop", "--time", "30", name, timeout=60)
        rc = proc.wait(60)
        print(f"[container] stopped, exit {rc}")
        text = log.read_text(errors="replace")
        assert rc == 0, f"container exited {rc} on SIGTERM:\n{text[-3000:]}"
    finally:
        if proc.poll() is None:
            _podman("rm", "--force", "--time", "5", name, check=False)
            proc.wait(30)


def _wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path, timeout_s: float = 180) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, (
            f"container exited {proc.returncode}:\n{log.read_text(errors='replace')[-4000:]}"
        )
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3) as resp:
                return int(resp.status)
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise AssertionError(f"not ready after {timeout_s}s:\n{log.read_text(errors='replace')[-4000:]}")


def _send_and_expect_list(settings: Settings, click_id: str) -> None:
    """An upload (the item), then a click on it; the click's list must reach the recs topic."""
    from kafka import KafkaConsumer, KafkaProducer

    ts = int(time.time() * 1000)
    upload = {
        "type": "upload",
        "event_id": f"up-{click_id}",
        "user_id": "studio",
        "item_id": "m1",
        "ts": ts,
        "schema_version": 1,
        "title": "A film",
        "tags": ["Drama"],
    }
    click = {
        "type": "click",
        "event_id": click_id,
        "user_id": "u1",
        "item_id": "m1",
        "ts": ts + 1,
        "schema_version": 1,
    }
    consumer = KafkaConsumer(
        settings.topic_recs,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=1000,
    )
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        producer.send(settings.topic_upload, key=b"studio", value=json.dumps(upload).encode())
        producer.flush()
        time.sleep(1)
        producer.send(settings.topic_click, key=b"u1", value=json.dumps(click).encode())
        producer.flush()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for msg in consumer:
                if json.loads(msg.value).get("trigger_event_id") == click_id:
                    return
        raise AssertionError(f"no list for {click_id} within 60 s")
    finally:
        producer.close()
        consumer.close()
