"""Shared fixtures.

The real local stack is started once per test session (or reused when already healthy) and
stopped at the end only if this session started it. Tests that need a server ask for the
``stack`` fixture (or one of the per-server fixtures); unit tests of pure logic never do.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from recstream.settings import Settings, load_settings

if TYPE_CHECKING:
    from encoders.text import TextEncoder

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings from the environment (defaults: the local stack on loopback)."""
    return load_settings()


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Iterator[Settings]:
    """The real local stack (Kafka, Cassandra, Triton), healthy for the whole session."""
    from deploy.local.stack import Stack

    st = Stack(settings)
    started = st.up(lambda msg: print(f"[stack] {msg}"))
    try:
        yield settings
    finally:
        if started:
            Stack(settings, started).down()


@pytest.fixture()
def topic_factory(stack: Settings) -> Callable[[str], str]:
    """Creates a fresh, uniquely named topic per call (no cross-test interference)."""
    from kafka.admin import KafkaAdminClient, NewTopic

    def make(prefix: str = "test", partitions: int = 1) -> str:
        name = f"{prefix}.{uuid.uuid4().hex[:10]}"
        admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap_servers)
        try:
            admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        finally:
            admin.close()
        return name

    return make


@pytest.fixture(scope="session")
def shared_movielens() -> Path:
    """The shared ml-latest-small folder beside the repo."""
    path = SHARED_DATA / "movielens-small"
    if not (path / "ratings.csv").exists():
        pytest.fail(f"shared dataset missing at {path}; tests expect ../shared/data beside the repo")
    return path


@pytest.fixture(scope="session")
def text_encoder() -> TextEncoder:
    """The bundled all-MiniLM-L6-v2, loaded once per session (about a second on CPU)."""
    from encoders.text import TextEncoder  # torch: only the tests that ask for it pay

    return TextEncoder()
