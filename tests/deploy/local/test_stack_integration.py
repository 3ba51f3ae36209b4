"""The three real servers, started by `recstream stack up`, used from Python clients."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from recstream.settings import Settings

pytestmark = pytest.mark.integration
RECSTREAM = str(Path(sys.executable).parent / "recstream")


def test_kafka_produce_consume_round_trip(stack: Settings, topic_factory: Callable[..., str]) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    topic = topic_factory("roundtrip", partitions=2)
    payloads = [f"event-{i}-{uuid.uuid4().hex}".encode() for i in range(20)]
    producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap_servers, acks="all")
    try:
        for i, p in enumerate(payloads):
            producer.send(topic, key=f"user-{i % 3}".encode(), value=p)
        producer.flush(timeout=30)
    finally:
        producer.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=stack.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=15000,
        group_id=f"test-{uuid.uuid4().hex[:8]}",
    )
    try:
        got = []
        deadline = time.monotonic() + 30
        while len(got) < len(payloads) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                got.extend(r.value for r in records)
    finally:
        consumer.close()
    assert sorted(got) == sorted(payloads)


def test_cassandra_keyspace_table_write_read(stack: Settings) -> None:
    from cassandra.cluster import Cluster

    cluster = Cluster(stack.cassandra_hosts, port=stack.cassandra_port)
    try:
        session = cluster.connect()
        ks = f"test_{uuid.uuid4().hex[:8]}"
        session.execute(
            f"CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
        )
        try:
            session.execute(f"CREATE TABLE {ks}.kv (k text PRIMARY KEY, v blob, n bigint)")
            vec = np.arange(8, dtype=np.float32)
            insert = session.prepare(f"INSERT INTO {ks}.kv (k, v, n) VALUES (?, ?, ?)")
            session.execute(insert, ("alice", vec.tobytes(), 42))
            row = session.execute(f"SELECT v, n FROM {ks}.kv WHERE k = %s", ("alice",)).one()
            assert row.n == 42
            assert np.array_equal(np.frombuffer(row.v, dtype=np.float32), vec)
            version = session.execute("SELECT release_version FROM system.local").one().release_version
            assert version.startswith("5.0"), version
        finally:
            session.execute(f"DROP KEYSPACE {ks}")
    finally:
        cluster.shutdown()


def test_triton_grpc_inference_on_echo_model(stack: Settings) -> None:
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url=stack.triton_grpc_url)
    try:
        assert client.is_server_live() and client.is_model_ready("echo")
        x = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
        inp = grpcclient.InferInput("INPUT", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        result = client.infer(
            "echo",
            [inp],
            outputs=[
                grpcclient.InferRequestedOutput("OUTPUT"),
                grpcclient.InferRequestedOutput("SUM"),
            ],
        )
        np.testing.assert_array_equal(result.as_numpy("OUTPUT"), x)
        np.testing.assert_allclose(result.as_numpy("SUM")[:, 0], x.sum(axis=1), rtol=1e-6)
        server = client.get_server_metadata()
        assert server.name == "triton"
    finally:
        client.close()


def test_stack_status_reports_all_healthy(stack: Settings) -> None:
    proc = subprocess.run([RECSTREAM, "stack", "status"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("kafka", "cassandra", "triton"):
        line = next(ln for ln in proc.stdout.splitlines() if ln.startswith(name))
        assert "healthy" in line, proc.stdout
