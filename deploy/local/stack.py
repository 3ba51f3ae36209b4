"""Start, stop and inspect the local stack: real Kafka, Cassandra and Triton on loopback.

``up`` starts what is not already running (reusing healthy servers), waits until every server
answers a client-level health check, and fails with the server's log path if one dies or times
out. ``down`` stops exactly the processes ``up`` recorded (pid + start time), never by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from deploy.local.base import PidRecord, Service, port_open
from deploy.local.cassandra import CassandraService
from deploy.local.errors import PortInUse, ServiceFailed, StackError
from deploy.local.kafka import KafkaService
from deploy.local.triton import TritonService
from recstream.settings import Settings

#: Start order; Triton is independent of the other two, the JVMs start first (slowest).
SERVICE_TYPES: dict[str, type[Service]] = {
    "cassandra": CassandraService,
    "kafka": KafkaService,
    "triton": TritonService,
}


@dataclass(frozen=True)
class ServiceStatus:
    """What ``stack status`` reports for one server."""

    name: str
    pid: int | None
    healthy: bool
    endpoint: str
    log_path: str


def parse_only(only: str | None) -> list[str]:
    """``"kafka,triton"`` -> ``["kafka", "triton"]`` in start order; None means all."""
    if not only:
        return list(SERVICE_TYPES)
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in SERVICE_TYPES]
    if unknown:
        raise StackError(f"unknown service(s) {unknown}; choose from {', '.join(SERVICE_TYPES)}")
    return [n for n in SERVICE_TYPES if n in names]


class Stack:
    """The local stack for one settings object (one ``stack_dir``)."""

    def __init__(self, settings: Settings, names: Iterable[str] | None = None) -> None:
        self.settings = settings
        self.services = [SERVICE_TYPES[n](settings) for n in (names or SERVICE_TYPES)]

    def up(self, progress: Callable[[str], None] = lambda _: None) -> list[str]:
        """Start every server not already healthy and wait for all.

        Returns:
            Names of the servers this call started (the others were already up).

        Raises:
            PortInUse: A port is held by a process this stack did not start.
            ServiceFailed: A server exited or timed out (message names its log).
        """
        started: list[tuple[Service, subprocess.Popen[bytes]]] = []
        for svc in self.services:
            if svc.running() is not None:
                progress(f"{svc.name}: already running (pid {svc.running().pid})")  # type: ignore[union-attr]
                continue
            busy = [p for p in svc.ports if port_open("127.0.0.1", p)]
            if busy:
                if svc.healthy():
                    progress(f"{svc.name}: a server this stack did not start answers on {busy}; using it")
                    continue
                raise PortInUse(f"{svc.name}: port(s) {busy} on 127.0.0.1 are in use by another process")
            progress(f"{svc.name}: preparing")
            launch = svc.prepare()
            svc.log_path.parent.mkdir(parents=True, exist_ok=True)
            with svc.log_path.open("ab") as log:
                log.write(f"\n=== recstream stack up {time.strftime('%Y-%m-%dT%H:%M:%S')} ===\n".encode())
                log.flush()
                proc = subprocess.Popen(
                    launch.argv,
                    cwd=launch.cwd,
                    env={**os.environ, **launch.env} if launch.env else None,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # own process group: `down` signals exactly it
                )
            svc.write_pid(proc)
            progress(f"{svc.name}: started pid {proc.pid}, waiting until healthy")
            started.append((svc, proc))
        with ThreadPoolExecutor(max_workers=max(1, len(started))) as pool:
            futures = [pool.submit(self._wait, svc, proc, progress) for svc, proc in started]
            errors = [f.exception() for f in futures]
        failed = [e for e in errors if e is not None]
        if failed:
            raise failed[0]
        for svc in self.services:
            if svc not in [s for s, _ in started] and not svc.healthy():
                raise ServiceFailed(svc.name, "running but not healthy", svc.log_path, _tail(svc))
        return [svc.name for svc, _ in started]

    def _wait(self, svc: Service, proc: subprocess.Popen[bytes], progress: Callable[[str], None]) -> None:
        t0 = time.monotonic()
        deadline = t0 + self.settings.stack_start_timeout_s
        while time.monotonic() < deadline:
            code = proc.poll()
            if code is not None:
                svc.pid_path.unlink(missing_ok=True)
                raise ServiceFailed(
                    svc.name, f"exited with code {code} during start", svc.log_path, _tail(svc)
                )
            if svc.healthy():
                progress(f"{svc.name}: healthy after {time.monotonic() - t0:.1f}s ({svc.describe()})")
                return
            time.sleep(0.5)
        raise ServiceFailed(
            svc.name,
            f"not healthy after {self.settings.stack_start_timeout_s:.0f}s (last check: {svc.last_error})",
            svc.log_path,
            _tail(svc),
        )

    def down(self, progress: Callable[[str], None] = lambda _: None, timeout_s: float = 60.0) -> list[str]:
        """Stop the servers this stack started (reverse order). Returns the names stopped."""
        return [
            svc.name for svc in reversed(self.services) if _stop(svc, signal.SIGTERM, timeout_s, progress)
        ]

    # --- single-service lifecycle (fault injection in tests/chaos) -----------------------
    def service(self, name: str) -> Service:
        """The service called ``name`` in this stack.

        Raises:
            StackError: This stack has no such service.
        """
        for svc in self.services:
            if svc.name == name:
                return svc
        raise StackError(f"no service {name!r} in this stack ({', '.join(s.name for s in self.services)})")

    def stop_service(
        self,
        name: str,
        *,
        kill: bool = False,
        timeout_s: float = 60.0,
        progress: Callable[[str], None] = lambda _: None,
    ) -> bool:
        """Stop one server this stack started: SIGTERM (graceful), or SIGKILL with ``kill``.

        Only the recorded process group is signalled. Returns False when it was not running.
        """
        sig = signal.SIGKILL if kill else signal.SIGTERM
        return _stop(self.service(name), sig, timeout_s, progress)

    def start_service(self, name: str, progress: Callable[[str], None] = lambda _: None) -> bool:
        """Start one server (if not running) and wait until it is healthy.

        Returns:
            True when this call started it, False when it was already running.

        Raises:
            ServiceFailed: It exited or timed out during start.
        """
        return bool(Stack(self.settings, [self.service(name).name]).up(progress))

    def status(self) -> list[ServiceStatus]:
        """Health of every server (a real client check each)."""
        out = []
        for svc in self.services:
            rec = svc.running()
            out.append(
                ServiceStatus(
                    svc.name,
                    rec.pid if rec else None,
                    svc.healthy(),
                    svc.describe(),
                    str(svc.log_path),
                )
            )
        return out


def _stop(svc: Service, sig: signal.Signals, timeout_s: float, progress: Callable[[str], None]) -> bool:
    """Signal ``svc``'s recorded process group, wait for it to exit (SIGKILL after ``timeout_s``)."""
    rec = svc.running()
    if rec is None:
        svc.pid_path.unlink(missing_ok=True)
        return False
    progress(f"{svc.name}: stopping pid {rec.pid} ({sig.name})")
    _signal_group(rec.pid, sig)
    deadline = time.monotonic() + timeout_s
    while _holding(svc, rec) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _holding(svc, rec):
        progress(f"{svc.name}: did not stop in {timeout_s:.0f}s, killing")
        _signal_group(rec.pid, signal.SIGKILL)
        while _holding(svc, rec):
            time.sleep(0.1)
    svc.pid_path.unlink(missing_ok=True)
    return True


def _holding(svc: Service, rec: PidRecord) -> bool:
    # A JVM's main thread can exit (the pid reads as a zombie) while its shutdown hooks still
    # run and hold the ports: stopped means exited *and* every port released, so that a start
    # right after never finds its own ports busy.
    return rec.alive() or any(port_open("127.0.0.1", p) for p in svc.ports)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # The server leads its own process group (start_new_session), so this reaches its children
    # (Triton's Python-backend stubs) too, and nothing else.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _tail(svc: Service, lines: int = 25) -> str:
    try:
        return "\n".join(svc.log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
