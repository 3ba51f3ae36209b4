"""Errors of the local stack.

Hierarchy::

    StackError                  base of every local-stack failure
    ├── ToolMissing             java / mvn / the Triton binary is not installed
    ├── ResolveError            Maven could not resolve a server's jars
    ├── PortInUse               a port we need is held by a process we did not start
    └── ServiceFailed           a server exited or did not become healthy (names its log)
"""

from __future__ import annotations

from pathlib import Path


class StackError(RuntimeError):
    """Base class of local-stack errors."""


class ToolMissing(StackError):
    """A required tool (JDK 17, Maven, the Triton binary) is missing."""


class ResolveError(StackError):
    """Maven failed to resolve a server's jars."""


class PortInUse(StackError):
    """A port the stack needs is already taken by a process the stack did not start."""


class ServiceFailed(StackError):
    """A server exited or did not become healthy in time.

    Attributes:
        service: Name of the server.
        log_path: Its log file, for the user to read.
    """

    def __init__(self, service: str, message: str, log_path: Path, log_tail: str = "") -> None:
        self.service = service
        self.log_path = log_path
        text = f"{service}: {message}; log: {log_path}"
        if log_tail:
            text += "\n--- last lines of the log ---\n" + log_tail
        super().__init__(text)
