"""The worker-process harness: real ``recstream worker`` processes, seen from outside.

:class:`Deployment` gives a run its own topics, consumer group and keyspace on the stack its
``RECSTREAM_*`` variables name (:func:`isolated_env`, :func:`prepare`); :class:`WorkerProcess`
starts one worker as a subprocess (its own process group, its log in a file), waits until
``/readyz`` says it is ready, reads its pages, lag and RSS, and stops it with a signal. Used by
the tests (``tests/streams``, ``tests/chaos``, ``tests/security``), ``recstream soak``,
``recstream bench`` and the pipeline evaluation.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from recstream.settings import ENV_PREFIX, Settings, load_settings

#: The ``recstream`` command of this interpreter's environment.
RECSTREAM = str(Path(sys.executable).parent / "recstream")
_LAG = re.compile(r'^recstream_consumer_lag\{partition="(\d+)",topic="([^"]+)"\} (\S+)$', re.M)


def recstream_environ() -> dict[str, str]:
    """The ``RECSTREAM_*`` variables of this process (the base of an isolated deployment)."""
    return {k: v for k, v in os.environ.items() if k.upper().startswith(ENV_PREFIX)}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def isolated_env(base: dict[str, str], tag: str | None = None, partitions: int = 4) -> dict[str, str]:
    """``RECSTREAM_*`` variables for a deployment of its own on the stack named in ``base``.

    Topics, consumer group and keyspace carry a random tag, so runs never see each other's data.
    """
    tag = tag or uuid.uuid4().hex[:8]
    return {
        **base,
        "RECSTREAM_TOPIC_CLICK": f"t{tag}.click",
        "RECSTREAM_TOPIC_UPLOAD": f"t{tag}.upload",
        "RECSTREAM_TOPIC_REVIEW": f"t{tag}.review",
        "RECSTREAM_TOPIC_RECS": f"t{tag}.recs",
        "RECSTREAM_TOPIC_DLQ": f"t{tag}.dlq",
        "RECSTREAM_CONSUMER_GROUP": f"g{tag}",
        "RECSTREAM_CASSANDRA_KEYSPACE": f"ks_{tag}",
        "RECSTREAM_TOPIC_PARTITIONS": str(partitions),
    }


def prepare(env: dict[str, str]) -> Settings:
    """Settings of ``env``, with its keyspace schema applied and its topics created."""
    from streams.state.schema import apply_schema
    from streams.topics import ensure_topics

    settings = load_settings(env)
    apply_schema(settings)
    ensure_topics(settings)
    return settings


def parse_rss_kib(status: str) -> tuple[int, int]:
    """``(VmRSS, VmHWM)`` in KiB from the text of ``/proc/PID/status`` (0 when absent)."""
    values = {}
    for line in status.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


def parse_lag(metrics_text: str) -> dict[tuple[str, int], float]:
    """``recstream_consumer_lag`` per ``(topic, partition)`` from a ``/metrics`` page."""
    return {(m.group(2), int(m.group(1))): float(m.group(3)) for m in _LAG.finditer(metrics_text)}


@dataclass
class WorkerProcess:
    """One ``recstream worker`` subprocess (its own process group) with its web port."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @classmethod
    def start(
        cls,
        env: dict[str, str],
        log_path: Path,
        ready_timeout_s: float = 180.0,
        *,
        command: Sequence[str] = (RECSTREAM, "worker"),
        cwd: Path | None = None,
        inherit_env: bool = True,
        port: int | None = None,
        wait: bool = True,
    ) -> WorkerProcess:
        """Start a worker (``recstream worker --web-port <free port>``) and wait until it is ready.

        Its environment is this process's without ``RECSTREAM_*``, plus ``env``; its output goes
        to ``log_path`` (appended).

        Args:
            env: Its ``RECSTREAM_*`` variables (and any other it needs).
            log_path: Where its output goes.
            ready_timeout_s: How long it may take to be ready.
            command: The command line before ``--web-port`` (another installation's
                ``recstream``, or one run as another user through ``setpriv``).
            cwd: Its working directory (default: this process's).
            inherit_env: False: ``env`` is its whole environment.
            port: Its web port (default: a free one).
            wait: False: return as soon as it is started (call :meth:`wait_ready` later).

        Raises:
            RuntimeError: It exited or did not become ready (with the end of its log); it is
                killed then.
        """
        port = port or free_port()
        base = {k: v for k, v in os.environ.items() if not k.startswith("RECSTREAM_")} if inherit_env else {}
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [*command, "--web-port", str(port)],
                env={**base, **env},
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        worker = cls(proc, port, log_path)
        if not wait:
            return worker
        try:
            worker.wait_ready(ready_timeout_s)
        except RuntimeError:
            worker.kill()
            raise
        return worker

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        """Block until ``/readyz`` says the worker is ready (any process serving it: a container too).

        Raises:
            RuntimeError: It exited or did not become ready in ``timeout_s`` (with the end of its log).
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                if json.loads(self.get("/readyz"))["ready"]:
                    return
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.3)
        raise RuntimeError(f"worker not ready after {timeout_s:.0f}s: {self.log_tail()}")

    @property
    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.proc.poll() is None

    def get(self, path: str, timeout_s: float = 3.0, headers: dict[str, str] | None = None) -> bytes:
        """GET a page of the worker's web server.

        Raises:
            urllib.error.HTTPError: The answer was not 2xx (``.code``, ``.read()`` for the body).
        """
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers=headers or {})
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return bytes(resp.read())

    def lag(self) -> dict[tuple[str, int], float]:
        """Consumer lag per input partition, as the worker exports it (refreshed every 5 s)."""
        return parse_lag(self.get("/metrics").decode())

    def rss_kib(self) -> tuple[int, int]:
        """``(current RSS, peak RSS)`` in KiB from ``/proc``; ``(0, 0)`` once it has exited."""
        try:
            return parse_rss_kib(Path(f"/proc/{self.proc.pid}/status").read_text())
        except OSError:
            return 0, 0

    def kill(self) -> None:
        """SIGKILL the worker's process group and reap it."""
        self.stop(signal.SIGKILL)

    def pause(self) -> None:
        """SIGSTOP the worker's process group (a long GC pause, a frozen VM)."""
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT the worker's process group after :meth:`pause`."""
        os.killpg(self.proc.pid, signal.SIGCONT)

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> None:
        """Signal the worker's process group and wait (SIGKILL after ``timeout_s``)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the worker's log."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@dataclass
class Deployment:
    """An isolated deployment (see :func:`isolated_env`) and the workers started for it.

    Use as ``with Deployment.create(...) as dep:``; leaving the block calls :meth:`drop`.
    """

    env: dict[str, str]
    settings: Settings
    log_dir: Path
    workers: list[WorkerProcess] = field(default_factory=list)
    #: How long :meth:`start_worker` waits for a worker's ``/readyz``.
    ready_timeout_s: float = 180.0

    @classmethod
    def create(cls, base_env: dict[str, str], log_dir: Path, partitions: int = 4, **extra: str) -> Deployment:
        """Make the topics and keyspace of a new isolated deployment (``extra``: more variables)."""
        env = {**isolated_env(base_env, partitions=partitions), **extra}
        return cls(env, prepare(env), log_dir)

    def start_worker(self, *, wait: bool = True, **extra: str) -> WorkerProcess:
        """Start one more worker in this deployment's consumer group (``extra``: its own variables).

        It runs with :attr:`env` as it is now (a caller may change it between starts), logs to
        ``<log_dir>/worker-<n>.log`` and is ready when this returns (unless ``wait`` is False).
        """
        log = self.log_dir / f"worker-{len(self.workers)}.log"
        w = WorkerProcess.start({**self.env, **extra}, log, self.ready_timeout_s, wait=wait)
        self.workers.append(w)
        return w

    def stop_all(self, sig: int = signal.SIGKILL) -> None:
        """Signal every worker still running (SIGKILL unless ``sig``) and reap it."""
        for w in self.workers:
            w.stop(sig)

    def drop(self) -> None:
        """Kill the workers, then delete the deployment's topics and keyspace (best effort)."""
        from kafka.admin import KafkaAdminClient

        from streams.kafka_config import kafka_python_config
        from streams.state.session import connect
        from streams.topics import catalog_topic, retry_topic

        self.stop_all()
        s = self.settings
        # Faust's assignor also leaves a "<group>-__assignor-__leader" topic behind.
        names = [
            *s.event_topics.values(),
            s.topic_recs,
            s.topic_dlq,
            catalog_topic(s),
            retry_topic(s),
            f"{s.consumer_group}-__assignor-__leader",
        ]
        try:
            admin = KafkaAdminClient(**kafka_python_config(s))
            try:
                admin.delete_topics([n for n in names if n in set(admin.list_topics())])
            finally:
                admin.close()
            cluster, session = connect(s)
            try:
                session.execute(f"DROP KEYSPACE IF EXISTS {s.cassandra_keyspace}", timeout=60)
            finally:
                cluster.shutdown()
        except Exception as exc:  # cleanup must never mask the run's own outcome
            print(f"[soak] cleanup of {s.consumer_group} incomplete: {exc!r}", file=sys.stderr)

    def __iter__(self) -> Iterator[WorkerProcess]:
        return iter(self.workers)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.drop()
