"""Single-service lifecycle of the local stack (stop, SIGKILL, start again), on a fake server.

The fake is a Python process listening on a free port; it needs no JDK and no Triton.
"""

from __future__ import annotations

import socket
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local import stack as stack_mod
from deploy.local.base import Launch, Service, port_open
from deploy.local.errors import StackError
from deploy.local.stack import Stack
from recstream.settings import Settings, load_settings
from recstream.testing import free_port

#: Listens on argv[1]; with argv[2] == "linger" the leader exits on SIGTERM while a child of the
#: same process group keeps the port for a second (as a JVM running its shutdown hooks does).
SERVER = textwrap.dedent(
    """
    import os, signal, socket, sys, time
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
    def term(*_):
        if sys.argv[2] == "linger" and os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(1.0); os._exit(0)
        os._exit(0)
    signal.signal(signal.SIGTERM, term)
    while True:
        time.sleep(0.1)
    """
)


class FakeService(Service):
    name = "fake"
    port = 0
    mode = "plain"

    @property
    def ports(self) -> list[int]:
        return [self.port]

    def prepare(self) -> Launch:
        return Launch([sys.executable, "-c", SERVER, str(self.port), self.mode], {}, self.home)

    def healthy(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError as exc:
            self.last_error = repr(exc)
            return False


@pytest.fixture()
def fake_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setattr(FakeService, "port", free_port())
    monkeypatch.setitem(stack_mod.SERVICE_TYPES, "fake", FakeService)
    (tmp_path / "fake").mkdir()
    settings: Settings = load_settings(
        {"RECSTREAM_STACK_DIR": str(tmp_path), "RECSTREAM_STACK_START_TIMEOUT_S": "20"}
    )
    st = Stack(settings, ["fake"])
    yield st
    st.down(timeout_s=5)


def test_stop_kill_and_start_one_service(fake_stack: Stack) -> None:
    port = FakeService.port
    assert fake_stack.start_service("fake") is True
    assert fake_stack.start_service("fake") is False  # already running
    first = fake_stack.service("fake").running()
    assert first is not None and port_open("127.0.0.1", port)

    assert fake_stack.stop_service("fake") is True
    assert not first.alive() and not port_open("127.0.0.1", port)
    assert fake_stack.service("fake").running() is None
    assert fake_stack.stop_service("fake") is False  # nothing left to stop

    assert fake_stack.start_service("fake") is True
    second = fake_stack.service("fake").running()
    assert second is not None and second.pid != first.pid
    assert fake_stack.stop_service("fake", kill=True) is True
    assert not second.alive() and not port_open("127.0.0.1", port)


def test_stop_waits_until_the_ports_are_released(fake_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FakeService, "mode", "linger")
    fake_stack.start_service("fake")
    fake_stack.stop_service("fake")
    # The leader exited at once, but a child held the port: a start right after must work.
    assert not port_open("127.0.0.1", FakeService.port)
    assert fake_stack.start_service("fake") is True


def test_unknown_service_is_an_error(fake_stack: Stack) -> None:
    with pytest.raises(StackError, match="no service 'kafka'"):
        fake_stack.service("kafka")
