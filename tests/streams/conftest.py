"""Fixtures that run real `recstream worker` processes against the session's stack."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from recstream.lab.workerproc import WorkerProcess, free_port, isolated_env, prepare, recstream_environ
from recstream.settings import Settings

__all__ = ["Env", "deployment_factory", "free_port"]


@dataclass
class Env:
    """An isolated deployment: own topics, consumer group and keyspace on the shared stack."""

    env: dict[str, str]
    settings: Settings
    workers: list[WorkerProcess] = field(default_factory=list)

    @property
    def procs(self) -> list[subprocess.Popen[bytes]]:
        return [w.proc for w in self.workers]

    @property
    def logs(self) -> list[Path]:
        return [w.log_path for w in self.workers]

    def start_worker(self, log_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
        """Start a worker with the current ``env`` (tests may change it between starts)."""
        w = WorkerProcess.start(self.env, log_dir / f"worker-{len(self.workers)}.log", ready_timeout_s=90)
        self.workers.append(w)
        return w.proc, w.port

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
        next(w for w in self.workers if w.proc is proc).stop(sig)


@pytest.fixture()
def deployment_factory(stack: Settings, tmp_path: Path) -> Iterator[Callable[[], Env]]:
    """Makes isolated deployments (topics, group, keyspace) and stops their workers after the test."""
    made: list[Env] = []

    def make() -> Env:
        env = isolated_env(
            recstream_environ(),
            partitions=2,
        )
        env.update(
            {
                "RECSTREAM_K": "10",
                # Explicit, so tests recompute states with a known decay whatever model is served.
                "RECSTREAM_DECAY_TAU_S": "604800",
                "RECSTREAM_LOG_LEVEL": "WARNING",
            }
        )
        d = Env(env, prepare(env))
        made.append(d)
        return d

    yield make
    for d in made:
        for w in d.workers:
            w.kill()
