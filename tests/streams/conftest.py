"""Fixtures that run real `recstream worker` processes against the session's stack."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from recstream.settings import Settings, load_settings

RECSTREAM = str(Path(sys.executable).parent / "recstream")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Env:
    """An isolated deployment: own topics, consumer group and keyspace on the shared stack."""

    env: dict[str, str]
    settings: Settings
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def start_worker(self, log_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
        port = free_port()
        log = log_dir / f"worker-{len(self.procs)}.log"
        proc = subprocess.Popen(
            [RECSTREAM, "worker", "--web-port", str(port)],
            env={**os.environ, **self.env},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        self.logs.append(log)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"worker exited: {log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if json.loads(r.read())["ready"]:
                        return proc, port
            except Exception:
                pass
            time.sleep(0.5)
        raise AssertionError(f"worker not ready: {log.read_text()[-3000:]}")

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture()
def deployment_factory(stack: Settings, tmp_path: Path) -> Iterator[Callable[[], Env]]:
    """Makes isolated deployments (topics, group, keyspace) and stops their workers after the test."""
    from streams.state.cassandra import apply_schema
    from streams.topics import ensure_topics

    made: list[Env] = []

    def make() -> Env:
        tag = uuid.uuid4().hex[:8]
        env = {
            "RECSTREAM_TOPIC_CLICK": f"t{tag}.click",
            "RECSTREAM_TOPIC_UPLOAD": f"t{tag}.upload",
            "RECSTREAM_TOPIC_REVIEW": f"t{tag}.review",
            "RECSTREAM_TOPIC_RECS": f"t{tag}.recs",
            "RECSTREAM_TOPIC_DLQ": f"t{tag}.dlq",
            "RECSTREAM_CONSUMER_GROUP": f"g{tag}",
            "RECSTREAM_CASSANDRA_KEYSPACE": f"ks_{tag}",
            "RECSTREAM_TOPIC_PARTITIONS": "2",
            "RECSTREAM_K": "10",
            # Explicit, so tests recompute states with a known decay whatever model is served.
            "RECSTREAM_DECAY_TAU_S": "604800",
            "RECSTREAM_LOG_LEVEL": "WARNING",
        }
        settings = load_settings(
            {**{k: v for k, v in os.environ.items() if k.startswith("RECSTREAM_")}, **env}
        )
        apply_schema(settings)
        ensure_topics(settings)
        d = Env(env, settings)
        made.append(d)
        return d

    yield make
    for d in made:
        for p in d.procs:
            d.stop(p, signal.SIGKILL)
