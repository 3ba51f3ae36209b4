"""Shared fixtures.

The real local stack is started once per test session (or reused when already healthy) and
stopped at the end only if this session started it. Tests that need a server ask for the
``stack`` fixture (or one of the per-server fixtures); unit tests of pure logic never do.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from recstream.settings import Settings, load_settings

if TYPE_CHECKING:
    from encoders.text import TextEncoder

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


#: Fixtures that start or reach a real server: a test using one is marked ``integration``.
SERVER_FIXTURES = frozenset(
    {"stack", "topic_factory", "deployment_factory", "chaos_stack", "chaos_deployment", "clean_run"}
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses a server fixture ``integration`` (``make test-unit`` deselects
    them), whether or not its module says so."""
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def no_servers_in_unit_runs(request: pytest.FixtureRequest) -> Iterator[None]:
    """Under ``-m "not integration"`` (``make test-unit``) starting a server fails the test."""
    if "not integration" not in (request.config.getoption("markexpr") or ""):
        yield
        return
    from deploy.local.stack import Stack

    real = Stack.up
    servers = {"kafka", "cassandra", "triton"}

    def refuse(self: Stack, *args: Any, **kwargs: Any) -> list[str]:
        if any(getattr(svc, "name", "") in servers for svc in self.services):
            raise RuntimeError(
                "a test outside the integration marker started the local stack: mark it "
                "`integration` (make test-unit runs with no server)"
            )
        return real(self, *args, **kwargs)  # a fake service of a unit test

    mp = pytest.MonkeyPatch()
    mp.setattr(Stack, "up", refuse)
    try:
        yield
    finally:
        mp.undo()


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
