"""Fixtures of the fault tests: a second, isolated stack whose servers the tests may break.

The shared stack (``stack`` fixture, default ports) belongs to everybody on the machine and is
never stopped here. ``chaos_stack`` starts Kafka, Cassandra and Triton again on other ports
(Kafka 19092/19093, Cassandra 19042/17000/17199, Triton 18000-18002) under
``<stack_dir>/chaos``, lets a test stop, SIGKILL and restart one server of it, and stops at the
end of the package (tests/chaos) whatever it started there, so the memory is back
before the rest of a ``make test`` session runs.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from recstream.settings import Settings, load_settings
from recstream.testing import Deployment, ListCollector, event_message
from schemas.events import Event
from tests.chaos.accounting import UserRow
from tests.chaos.harness import PacedProducer, movielens_slice_for_users
from tests.chaos.scenario import IDLE_S, REPORT_DIR, settled_states

#: Ports of the isolated stack (the shared one uses 9092/9093, 9042/7000/7199, 8000-8002).
CHAOS_PORTS = {
    "RECSTREAM_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19092",
    "RECSTREAM_CASSANDRA_PORT": "19042",
    "RECSTREAM_CASSANDRA_STORAGE_PORT": "17000",
    "RECSTREAM_CASSANDRA_JMX_PORT": "17199",
    "RECSTREAM_TRITON_HTTP_PORT": "18000",
    "RECSTREAM_TRITON_GRPC_PORT": "18001",
    "RECSTREAM_TRITON_METRICS_PORT": "18002",
    "RECSTREAM_TRITON_GRPC_URL": "127.0.0.1:18001",
}
#: Worker settings of every chaos deployment. The decay is so long that every event keeps its
#: whole weight in the user's sum, so the oracle sees any lost or doubled event (oracle.py).
WORKER_ENV = {
    "RECSTREAM_K": "10",
    "RECSTREAM_LOG_LEVEL": "INFO",  # assignments, re-queues and repairs, for the post-mortem
    "RECSTREAM_DECAY_TAU_S": "1e12",
    "RECSTREAM_COMMIT_INTERVAL_S": "1.0",
}
#: Sample users replayed by the fault tests: the four with tags (so clicks, reviews and uploads
#: all occur) and eight small histories, about 1,300 events with their items' uploads.
CHAOS_USERS = (14, 28, 84, 112, 154, 210, 280, 364, 448, 490, 504, 546)


def chaos_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """``RECSTREAM_*`` of the isolated stack: the caller's, with the chaos ports and stack dir."""
    inherited = {
        k: v for k, v in (os.environ if environ is None else environ).items() if k.startswith("RECSTREAM_")
    }
    stack_dir = load_settings(inherited).stack_dir / "chaos"
    return {**inherited, **CHAOS_PORTS, "RECSTREAM_STACK_DIR": str(stack_dir)}


@dataclass
class ChaosStack:
    """The isolated stack and the faults a test may inject into it."""

    env: dict[str, str]
    settings: Settings
    log: list[str] = field(default_factory=list)

    def _progress(self, msg: str) -> None:
        self.log.append(f"{time.strftime('%H:%M:%S')} {msg}")
        print(f"[chaos-stack] {msg}")

    def stop(self, name: str, *, kill: bool = False) -> None:
        """Stop one server (SIGTERM, or SIGKILL with ``kill``); fails if this stack did not start it."""
        from deploy.local.stack import Stack

        if not Stack(self.settings).stop_service(name, kill=kill, progress=self._progress):
            raise AssertionError(f"{name} of the chaos stack is not running (or not started by it)")

    def start(self, name: str) -> None:
        """Start one server again and wait until it is healthy."""
        from deploy.local.stack import Stack

        Stack(self.settings).start_service(name, progress=self._progress)

    def deployment(self, log_dir: Path, partitions: int = 4, **extra: str) -> Deployment:
        """A new isolated deployment (topics, group, keyspace) on this stack."""
        return Deployment.create({**self.env, **WORKER_ENV}, log_dir, partitions=partitions, **extra)


@pytest.fixture(scope="package")
def chaos_stack() -> Iterator[ChaosStack]:
    """Kafka, Cassandra and Triton on the chaos ports, healthy; stopped at the end if started here."""
    from deploy.local.stack import Stack

    env = chaos_env()
    settings = load_settings(env)
    cs = ChaosStack(env, settings)
    started = Stack(settings).up(cs._progress)
    try:
        yield cs
    finally:
        if started:
            Stack(settings, started).down(cs._progress)


@pytest.fixture()
def chaos_deployment(
    chaos_stack: ChaosStack, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Deployment]]:
    """Makes isolated deployments on the chaos stack; kills their workers and drops their data after.

    Worker logs are kept under ``reports/chaos/logs/<test>/`` for the post-mortem.
    """
    from deploy.local.stack import Stack

    # A test that failed mid-fault may have left a server down: every test starts healthy.
    Stack(chaos_stack.settings).up(chaos_stack._progress)
    made: list[Deployment] = []
    log_root = REPORT_DIR / "logs" / request.node.name
    shutil.rmtree(log_root, ignore_errors=True)

    def make(**extra: str) -> Deployment:
        d = chaos_stack.deployment(log_root / f"deployment-{len(made)}", **extra)
        made.append(d)
        return d

    yield make
    for d in made:
        d.drop()


@pytest.fixture(scope="package")
def chaos_events() -> list[Event]:
    """The events every fault test replays (see ``CHAOS_USERS``)."""
    return movielens_slice_for_users(CHAOS_USERS)


@dataclass(frozen=True)
class CleanRun:
    """The states and list count of an uninterrupted run of ``chaos_events``."""

    states: dict[str, UserRow]
    lists: int
    seconds: float


@pytest.fixture(scope="package")
def clean_run(chaos_stack: ChaosStack, chaos_events: list[Event]) -> CleanRun:
    """Replay ``chaos_events`` through one worker with no fault: the reference state."""
    d = chaos_stack.deployment(REPORT_DIR / "logs" / "clean_run")
    try:
        d.start_worker()
        t0 = time.monotonic()
        messages = [event_message(d.settings, e) for e in chaos_events]
        producer = PacedProducer(d.settings, messages, rate=10_000)
        producer.start()
        producer.finish()
        with ListCollector(d.settings) as lists:
            lists.wait_for({e.event_id for e in chaos_events}, timeout_s=600, idle_s=IDLE_S)
        seconds = time.monotonic() - t0
        return CleanRun(settled_states(d.settings), lists.total, seconds)
    finally:
        d.drop()
