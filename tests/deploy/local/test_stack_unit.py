"""Pure parts of the local stack: option parsing, pid bookkeeping, generated configs."""

from __future__ import annotations

import itertools
import os
import subprocess
from pathlib import Path

import pytest

from deploy.local.base import PidRecord, process_start_ticks
from deploy.local.cassandra import CassandraService, jvm_options
from deploy.local.errors import StackError
from deploy.local.stack import parse_only
from recstream.settings import load_settings


def test_parse_only_keeps_start_order_and_rejects_unknown() -> None:
    assert parse_only(None) == ["cassandra", "kafka", "triton"]
    assert parse_only("triton,kafka") == ["kafka", "triton"]
    with pytest.raises(StackError, match="unknown service"):
        parse_only("kafka,zookeeper")


def test_pid_record_detects_exit_and_pid_reuse() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        ticks = process_start_ticks(proc.pid)
        assert ticks is not None
        assert PidRecord(proc.pid, ticks, "sleep").alive()
        # Same pid, different start time: a recycled pid must not count as ours.
        assert not PidRecord(proc.pid, ticks + 1, "sleep").alive()
    finally:
        proc.kill()
        proc.wait()
    assert process_start_ticks(proc.pid) is None
    assert process_start_ticks(os.getpid()) is not None


def test_cassandra_jvm_options_carry_jpms_flags() -> None:
    opts = jvm_options()
    pairs = {f"{a} {b}" for a, b in itertools.pairwise(opts)}
    assert "--add-opens java.base/java.lang=ALL-UNNAMED" in pairs
    assert "--add-exports java.base/jdk.internal.misc=ALL-UNNAMED" in pairs
    assert "-Djdk.attach.allowAttachSelf=true" in opts


def test_cassandra_yaml_binds_loopback_and_fills_every_placeholder(tmp_path: Path) -> None:
    import yaml

    settings = load_settings({"RECSTREAM_STACK_DIR": str(tmp_path), "RECSTREAM_CASSANDRA_PORT": "19042"})
    conf = yaml.safe_load(CassandraService(settings).render_config())
    assert conf["listen_address"] == "127.0.0.1" and conf["rpc_address"] == "127.0.0.1"
    assert conf["native_transport_port"] == 19042
    assert conf["data_file_directories"] == [str(tmp_path / "cassandra" / "data")]
    assert conf["authenticator"] == "AllowAllAuthenticator"
    secured = load_settings(
        {
            "RECSTREAM_STACK_DIR": str(tmp_path),
            "RECSTREAM_CASSANDRA_USERNAME": "u",
            "RECSTREAM_CASSANDRA_PASSWORD": "p",
        }
    )
    assert (
        yaml.safe_load(CassandraService(secured).render_config())["authenticator"] == "PasswordAuthenticator"
    )


def test_kraft_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    import uuid

    from deploy.local import kafka

    # 0xf8 encodes to "-" first in URL-safe base64: kafka-storage would take the id for an option.
    draws = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x01" * 16)])
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: next(draws))
    cluster_id = kafka.new_cluster_id()
    assert cluster_id == "AQEBAQEBAQEBAQEBAQEBAQ"
    assert next(draws, None) is None  # the dashed id was drawn and refused
