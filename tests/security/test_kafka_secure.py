"""recstream's Kafka clients against a real broker with only a SASL_SSL (SCRAM-SHA-512) listener."""

from __future__ import annotations

import asyncio
import logging
import ssl
import uuid
from typing import Any

import pytest

from deploy.local.errors import StackError
from recstream.settings import Settings
from streams.kafka_config import aiokafka_config, faust_credentials, kafka_python_config
from tests.security.conftest import SecureStack, is_loopback, listening_sockets, server_pid

pytestmark = [pytest.mark.integration, pytest.mark.kafka]


def _log_since(stack: SecureStack, offset: int) -> str:
    return stack.kafka_log.read_bytes()[offset:].decode(errors="replace")


async def _start_producer(cfg: dict[str, Any]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(request_timeout_ms=5000, **cfg)
    try:
        await producer.start()
    finally:
        await producer.stop()


async def test_kafka_python_and_aiokafka_round_trip_over_scram_and_tls(secure_stack: SecureStack) -> None:
    from aiokafka import AIOKafkaConsumer
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.admin import NewTopic

    s = secure_stack.settings
    topic = f"secure.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(**kafka_python_config(s))
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        admin.close()
    payloads = [f"m{i}-{uuid.uuid4().hex}".encode() for i in range(5)]
    producer = KafkaProducer(acks="all", **kafka_python_config(s))
    try:
        for p in payloads:
            producer.send(topic, key=b"k", value=p)
        producer.flush(30)
    finally:
        producer.close()
    consumer = AIOKafkaConsumer(topic, auto_offset_reset="earliest", group_id=None, **aiokafka_config(s))
    await consumer.start()
    got: list[bytes] = []
    try:
        async with asyncio.timeout(60):
            while len(got) < len(payloads):
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    got += [r.value for r in records]
    finally:
        await consumer.stop()
    assert got == payloads


async def test_a_wrong_password_is_refused(
    secure_stack: SecureStack, caplog: pytest.LogCaptureFixture
) -> None:
    from aiokafka.errors import KafkaConnectionError

    bad = secure_stack.settings_with(
        RECSTREAM_KAFKA_SASL_PASSWORD_FILE=None, RECSTREAM_KAFKA_SASL_PASSWORD="not-the-password"
    )
    mark = secure_stack.kafka_log.stat().st_size
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        await _start_producer(aiokafka_config(bad))
    assert "SaslAuthenticationFailed" in caplog.text, caplog.text
    await asyncio.sleep(1)  # the broker logs the failed authentication asynchronously
    assert "due to invalid credentials with SASL mechanism SCRAM-SHA-512" in _log_since(secure_stack, mark)
    # The same client with the right password gets in: the refusal was the password.
    await _start_producer(aiokafka_config(secure_stack.settings))


async def test_a_plaintext_client_is_refused_on_the_tls_port(
    secure_stack: SecureStack, caplog: pytest.LogCaptureFixture
) -> None:
    from aiokafka.errors import KafkaConnectionError

    mark = secure_stack.kafka_log.stat().st_size
    plain = {"bootstrap_servers": secure_stack.settings.kafka_bootstrap_servers}
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        await _start_producer(plain)
    await asyncio.sleep(1)
    assert "SSL handshake failed" in _log_since(secure_stack, mark)


async def test_the_broker_certificate_is_verified(
    secure_stack: SecureStack, caplog: pytest.LogCaptureFixture
) -> None:
    from aiokafka.errors import KafkaConnectionError

    cfg = aiokafka_config(secure_stack.settings)
    cfg["ssl_context"] = ssl.create_default_context()  # the system's CAs, not the stack's
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        await _start_producer(cfg)
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text, caplog.text


def test_faust_gets_scram_over_tls_credentials(secure_stack: SecureStack) -> None:
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    from streams.app import create_app

    async def no_runtime(app: object) -> object:
        raise AssertionError("not started in this test")

    app = create_app(secure_stack.settings, no_runtime)
    auth = credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context)
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert auth["sasl_plain_username"] == "recstream"
    assert auth["sasl_plain_password"] == secure_stack.kafka_password
    ctx = auth["ssl_context"]
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    subjects = [dict(x[0] for x in c["subject"]) for c in ctx.get_ca_certs()]
    assert {"commonName": "recstream local stack CA"} in subjects
    assert secure_stack.kafka_password not in repr(faust_credentials(secure_stack.settings))


def test_the_local_broker_refuses_to_start_with_other_credentials(secure_stack: SecureStack) -> None:
    from deploy.local.kafka import KafkaService

    other: Settings = secure_stack.settings_with(
        RECSTREAM_KAFKA_SASL_PASSWORD_FILE=None, RECSTREAM_KAFKA_SASL_PASSWORD="rotated-without-reformat"
    )
    props = secure_stack.settings.stack_dir / "kafka" / "server.properties"
    before = props.read_bytes()
    with pytest.raises(StackError, match="other credentials"):
        KafkaService(other).prepare()
    assert props.read_bytes() == before  # the running broker's files are untouched
    assert oct(props.stat().st_mode & 0o777) == "0o600"
    assert secure_stack.kafka_password.encode() not in before  # only the broker's own password


def test_the_broker_listens_on_loopback_only(secure_stack: SecureStack) -> None:
    sockets = listening_sockets(server_pid(secure_stack.settings, "kafka"))
    ports = {port for _, port in sockets}
    assert {29092, 29093} <= ports, sockets
    assert not [s for s in sockets if not is_loopback(s[0])], sockets


def test_the_replay_command_produces_over_scram_and_tls(secure_stack: SecureStack) -> None:
    import os
    import subprocess
    from pathlib import Path

    from recstream.testing import RECSTREAM, read_topic

    tag = uuid.uuid4().hex[:8]
    topics = {
        f"RECSTREAM_TOPIC_{kind.upper()}": f"replay{tag}.{kind}" for kind in ("click", "upload", "review")
    }
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("RECSTREAM_")}
    sample = Path(__file__).resolve().parents[2] / "deploy" / "local" / "sample" / "movielens"
    proc = subprocess.run(
        [RECSTREAM, "replay", "--dataset", f"movielens:{sample}", "--limit", "30", "--no-progress"],
        env={**env, **secure_stack.env, **topics},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = read_topic(secure_stack.settings, list(topics.values()), lambda rs: len(rs) >= 30, timeout_s=30)
    assert len(got) == 30
