"""A TCP forwarder that can be switched on and off: a dependency that is down, then up.

Point a worker at the forwarder's port instead of a real server's; while the forwarder is not
listening the worker sees connection refused, exactly as with a server that is not started,
and once it listens every connection reaches the real server. Byte streams are copied as they
are (gRPC, the Cassandra protocol, Kafka), so what the worker talks to is the real server.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

__all__ = ["TcpForwarder"]


class TcpForwarder:
    """Forwards ``127.0.0.1:port`` to ``target`` while started.

    Args:
        target: ``(host, port)`` of the real server.
        port: The port to listen on (default: a free one, reserved until :meth:`start`).
    """

    def __init__(self, target: tuple[str, int], port: int | None = None) -> None:
        self.target = target
        if port is None:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
        self.port = port
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> TcpForwarder:
        """Listen and forward every accepted connection (until :meth:`stop`)."""
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True, name="forwarder-accept").start()
        return self

    def stop(self) -> None:
        """Stop listening and close every forwarded connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    def __enter__(self) -> TcpForwarder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return  # stopped
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(src, dst), daemon=True, name="forwarder-pipe").start()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    """Copy ``src`` to ``dst`` until either side closes."""
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
