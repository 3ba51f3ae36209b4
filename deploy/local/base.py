"""The interface every local server implements, and process bookkeeping shared by all.

A service writes its configuration under ``<stack_dir>/<name>/``, is started as its own
process group, and is identified later by a pid file that also records the process start
time, so ``down`` never signals a recycled pid and never looks processes up by name.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from recstream.settings import Settings


@dataclass(frozen=True)
class Launch:
    """How to start a server: argv, extra environment, working directory."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path


@dataclass(frozen=True)
class PidRecord:
    """A started process: pid plus its kernel start time (guards against pid reuse)."""

    pid: int
    start_ticks: int
    argv0: str

    def alive(self) -> bool:
        """True when this exact process (same pid and start time) still runs."""
        return process_start_ticks(self.pid) == self.start_ticks


def process_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (/proc/PID/stat field 22), None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; fields after the last ')' are fixed.
    fields = raw[raw.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has exited
        return None
    return int(fields[19])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class Service(ABC):
    """One local server (Kafka, Cassandra, Triton)."""

    #: Short name used on the command line (``--only``) and for its state folder.
    name: str = ""
    #: Why the last health check failed, for error messages.
    last_error: str = ""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.stack_dir / self.name
        self.log_path = settings.stack_dir / "logs" / f"{self.name}.log"
        self.pid_path = settings.stack_dir / "pids" / f"{self.name}.json"

    @property
    @abstractmethod
    def ports(self) -> list[int]:
        """TCP ports on 127.0.0.1 the server listens on."""

    @abstractmethod
    def prepare(self) -> Launch:
        """Resolve binaries, write configuration, initialise storage; return how to launch."""

    @abstractmethod
    def healthy(self) -> bool:
        """A real client-level check (not just an open port). Must not raise; on failure it
        sets ``last_error``."""

    def describe(self) -> str:
        """One line for ``stack status``: where clients connect."""
        return ", ".join(f"127.0.0.1:{p}" for p in self.ports)

    # --- pid bookkeeping ----------------------------------------------------------------
    def read_pid(self) -> PidRecord | None:
        """The recorded process, or None if none was recorded."""
        try:
            data = json.loads(self.pid_path.read_text())
            return PidRecord(int(data["pid"]), int(data["start_ticks"]), str(data["argv0"]))
        except (OSError, ValueError, KeyError):
            return None

    def write_pid(self, proc: subprocess.Popen[bytes]) -> PidRecord:
        """Record a just-started process."""
        ticks = process_start_ticks(proc.pid)
        rec = PidRecord(proc.pid, ticks if ticks is not None else -1, str(proc.args[0]))  # type: ignore[index]
        self.pid_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.pid_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": rec.pid, "start_ticks": rec.start_ticks, "argv0": rec.argv0}))
        os.replace(tmp, self.pid_path)
        return rec

    def running(self) -> PidRecord | None:
        """The recorded process if it is still alive."""
        rec = self.read_pid()
        return rec if rec is not None and rec.alive() else None
