"""An isolated deployment of real workers on a running stack, for evaluation and benchmarks.

:class:`Deployment` gives a run its own topics, consumer group and Cassandra keyspace (so it
never mixes with other users of the same servers), applies the schema, creates the topics and
starts ``recstream worker`` subprocesses, each waited on until ``/readyz`` says ready. Leaving
the context stops the workers; the topics and keyspace are dropped unless ``keep=True``.

Example:
    >>> with Deployment(load_settings(), workers=1) as dep:   # doctest: +SKIP
    ...     dep.settings.topic_click                          # 'e1a2b3c4.click'
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from types import TracebackType
from typing import Self

from recstream.settings import Settings, load_settings
from streams.errors import StreamError

RECSTREAM = str(Path(sys.executable).parent / "recstream")


class DeploymentError(StreamError):
    """A worker of the deployment exited or did not become ready (message holds its log tail)."""


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def isolated_env(tag: str, **extra: str) -> dict[str, str]:
    """``RECSTREAM_*`` overrides naming this deployment's own topics, group and keyspace."""
    env = {
        "RECSTREAM_TOPIC_CLICK": f"{tag}.click",
        "RECSTREAM_TOPIC_UPLOAD": f"{tag}.upload",
        "RECSTREAM_TOPIC_REVIEW": f"{tag}.review",
        "RECSTREAM_TOPIC_RECS": f"{tag}.recs",
        "RECSTREAM_TOPIC_DLQ": f"{tag}.dlq",
        "RECSTREAM_CONSUMER_GROUP": f"g{tag}",
        "RECSTREAM_CASSANDRA_KEYSPACE": f"ks_{tag}",
    }
    env.update(extra)
    return env


class Deployment:
    """Isolated topics, group and keyspace plus ``workers`` real worker processes.

    Args:
        base: Settings of the servers to use (the environment's ``RECSTREAM_*`` values).
        workers: Worker processes to start on enter.
        overrides: Extra ``RECSTREAM_*`` variables (e.g. ``{"RECSTREAM_K": "20"}``).
        keep: Keep topics and keyspace after exit (for inspection).
        log_dir: Where worker logs go (default: a temporary folder).
        ready_timeout_s: How long a worker may take to become ready.
    """

    def __init__(
        self,
        base: Settings,
        *,
        workers: int = 1,
        overrides: dict[str, str] | None = None,
        keep: bool = False,
        log_dir: Path | None = None,
        ready_timeout_s: float = 120.0,
    ) -> None:
        self.tag = "d" + uuid.uuid4().hex[:8]
        self.env = isolated_env(self.tag, **(overrides or {}))
        inherited = {k: v for k, v in os.environ.items() if k.startswith("RECSTREAM_")}
        self.settings = load_settings({**inherited, **self.env})
        self.base = base
        self.n_workers = workers
        self.keep = keep
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix=f"recstream-{self.tag}-"))
        self.ready_timeout_s = ready_timeout_s
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []

    def __enter__(self) -> Self:
        from streams.state.cassandra import apply_schema
        from streams.topics import ensure_topics

        apply_schema(self.settings)
        ensure_topics(self.settings)
        try:
            for _ in range(self.n_workers):
                self.start_worker()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start_worker(self) -> tuple[subprocess.Popen[bytes], int]:
        """Start one more worker and wait until it is ready. Returns the process and web port."""
        port = free_port()
        log = self.log_dir / f"worker-{len(self.procs)}.log"
        proc = subprocess.Popen(
            [RECSTREAM, "worker", "--web-port", str(port)],
            env={**os.environ, **self.env},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        self.ports.append(port)
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DeploymentError(f"worker exited with {proc.returncode}: {log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if json.loads(r.read()).get("ready"):
                        return proc, port
            except Exception:  # not listening yet, or 503 while dependencies come up
                pass
            time.sleep(0.5)
        raise DeploymentError(
            f"worker not ready after {self.ready_timeout_s:.0f} s: {log.read_text()[-3000:]}"
        )

    def worker_pids(self) -> list[int]:
        """Pids of the running workers."""
        return [p.pid for p in self.procs if p.poll() is None]

    def close(self) -> None:
        """Stop the workers (SIGTERM, then SIGKILL) and drop topics and keyspace unless kept."""
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()
        if not self.keep:
            self._drop()

    def _drop(self) -> None:
        from kafka.admin import KafkaAdminClient

        from streams.kafka_config import kafka_python_config
        from streams.state.cassandra import connect
        from streams.topics import catalog_topic

        s = self.settings
        names = [*s.event_topics.values(), s.topic_recs, s.topic_dlq, catalog_topic(s)]
        try:
            admin = KafkaAdminClient(**kafka_python_config(s))
            try:
                existing = set(admin.list_topics())
                admin.delete_topics([n for n in names if n in existing])
            finally:
                admin.close()
        except Exception as exc:  # cleanup is best effort: report, never mask the run's outcome
            print(f"[deployment] could not delete topics of {self.tag}: {exc!r}", file=sys.stderr)
        try:
            cluster, session = connect(s)
            try:
                session.execute(f"DROP KEYSPACE IF EXISTS {s.cassandra_keyspace}")
            finally:
                cluster.shutdown()
        except Exception as exc:
            print(f"[deployment] could not drop keyspace {s.cassandra_keyspace}: {exc!r}", file=sys.stderr)
