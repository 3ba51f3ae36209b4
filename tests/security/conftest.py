"""A secured local stack of its own: Kafka SASL_SSL (SCRAM-SHA-512) and Cassandra with
PasswordAuthenticator and client TLS, in a private stack folder on their own ports.

The shared stack (default ports, ``.stack/``) is never touched; only its Triton is used, as a
client, by the worker test (started here only if nothing serves it yet, and then stopped). The
TLS material (a throwaway CA, a server certificate for 127.0.0.1) is generated at fixture time;
both passwords are unique per session and reach recstream through ``*_PASSWORD_FILE`` settings.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.local.tls import LocalTls, ensure_local_tls
from recstream.settings import Settings, load_settings
from recstream.testing import Deployment

#: Ports of the secured servers (the shared stack uses 9xxx, the chaos stack 19xxx).
KAFKA_PORT = 29092  # controller on 29093
CASSANDRA_PORTS = {"port": 29042, "storage": 27000, "jmx": 27199}


@dataclass(frozen=True)
class SecureStack:
    """The secured servers: their settings (as environment), secrets and TLS material."""

    env: dict[str, str]
    settings: Settings
    tls: LocalTls
    kafka_password: str
    cassandra_password: str

    @property
    def kafka_log(self) -> Path:
        """The broker's log file."""
        return self.settings.stack_dir / "logs" / "kafka.log"

    def settings_with(self, **env: str | None) -> Settings:
        """These settings with some ``RECSTREAM_*`` variables replaced (None removes one)."""
        merged = dict(self.env)
        for key, value in env.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        return load_settings(merged)


def listening_sockets(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket ``pid`` listens on, from /proc."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            hex_addr, hex_port = local.split(":")
            raw = bytes.fromhex(hex_addr)
            # /proc prints each 32-bit word of the address in host (little-endian) order.
            addr = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            out.append((str(ipaddress.ip_address(addr)), int(hex_port, 16)))
    return out


def is_loopback(addr: str) -> bool:
    """Whether ``addr`` (IPv4, IPv6 or IPv4-mapped IPv6) is a loopback address."""
    ip = ipaddress.ip_address(addr)
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def server_pid(settings: Settings, name: str) -> int:
    """Pid of a local server started by the stack (from its pid file)."""
    return int(json.loads((settings.stack_dir / "pids" / f"{name}.json").read_text())["pid"])


def _secret_file(folder: Path, name: str, value: str) -> Path:
    path = folder / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")  # a trailing newline, as `echo secret > file` leaves
    return path


@pytest.fixture(scope="session")
def secure_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureStack]:
    """Kafka (SASL_SSL, SCRAM-SHA-512) and Cassandra (password auth + TLS), up for the session."""
    from deploy.local.stack import Stack

    root = tmp_path_factory.mktemp("secure")
    stack_dir = root / "stack"
    tls = ensure_local_tls(stack_dir / "tls")  # generated now; the servers reuse it
    secret_dir = root / "secrets"
    secret_dir.mkdir(mode=0o700)
    kafka_password = f"kafka-{secrets.token_hex(12)}"
    cassandra_password = f"cass-{secrets.token_hex(12)}"
    env = {
        "RECSTREAM_STACK_DIR": str(stack_dir),
        "RECSTREAM_STACK_START_TIMEOUT_S": "420",
        "RECSTREAM_KAFKA_HEAP": "384M",
        "RECSTREAM_CASSANDRA_HEAP": "768M",
        "RECSTREAM_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{KAFKA_PORT}",
        "RECSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "RECSTREAM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "RECSTREAM_KAFKA_SASL_USERNAME": "recstream",
        "RECSTREAM_KAFKA_SASL_PASSWORD_FILE": str(_secret_file(secret_dir, "kafka", kafka_password)),
        "RECSTREAM_KAFKA_SSL_CAFILE": str(tls.ca_cert),
        "RECSTREAM_CASSANDRA_PORT": str(CASSANDRA_PORTS["port"]),
        "RECSTREAM_CASSANDRA_STORAGE_PORT": str(CASSANDRA_PORTS["storage"]),
        "RECSTREAM_CASSANDRA_JMX_PORT": str(CASSANDRA_PORTS["jmx"]),
        "RECSTREAM_CASSANDRA_USERNAME": "recstream",
        "RECSTREAM_CASSANDRA_PASSWORD_FILE": str(_secret_file(secret_dir, "cassandra", cassandra_password)),
        "RECSTREAM_CASSANDRA_SSL_CAFILE": str(tls.ca_cert),
    }
    settings = load_settings(env)
    stack = Stack(settings, ["cassandra", "kafka"])
    t0 = time.monotonic()
    started = stack.up(lambda msg: print(f"[secure stack] {msg}"))
    print(f"[secure stack] up in {time.monotonic() - t0:.1f}s")
    try:
        yield SecureStack(env, settings, tls, kafka_password, cassandra_password)
    finally:
        Stack(settings, started).down()


@pytest.fixture(scope="session")
def shared_triton(settings: Settings) -> Iterator[str]:
    """Triton's gRPC address: the shared stack's, started (and later stopped) only if not up."""
    from deploy.local.stack import Stack

    started = Stack(settings, ["triton"]).up(lambda msg: print(f"[triton] {msg}"))
    try:
        yield settings.triton_grpc_url
    finally:
        if started:
            Stack(settings, started).down()


@pytest.fixture(scope="module")
def secure_deployment(
    secure_stack: SecureStack, shared_triton: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """A real worker at DEBUG log level on the secured stack (own topics, group and keyspace).

    Its one worker is ``workers[0]``, stopped with SIGTERM at the end of the module.
    """
    # Schema and topics go through the password + TLS session and the SASL_SSL admin client.
    dep = Deployment.create(
        secure_stack.env,
        tmp_path_factory.mktemp("secure-worker"),
        partitions=2,
        RECSTREAM_K="5",
        RECSTREAM_TRITON_GRPC_URL=shared_triton,
        RECSTREAM_LOG_LEVEL="DEBUG",
    )
    try:
        dep.start_worker()
        yield dep
    finally:
        dep.stop_all(signal.SIGTERM)
