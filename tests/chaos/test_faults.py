"""Faults injected into real workers and an isolated real stack while events stream in.

Each test replays the same MovieLens events at a fixed rate, breaks one thing a quarter of the
way through, and requires the final Cassandra state to equal the clean run's (same applied
event ids and counts, embeddings within 1e-6 after normalisation), every event to have a list,
and no dead letter. Figures go to ``reports/chaos/<fault>.json`` and, through
``python -m tests.chaos.report``, into docs/RELIABILITY.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from schemas.events import Event
from streams.workerproc import Deployment
from tests.chaos.conftest import ChaosStack, CleanRun
from tests.chaos.scenario import Fault, FaultContext, run_fault

#: Generous bound for a whole scenario (stack restarts take minutes on a loaded machine).
pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.timeout(1800)]

#: Offered rate: the ~1,060 events stream for about a minute, so every fault lands mid-stream.
RATE = 20.0
#: How long Triton stays down before it is started again (its start adds 35-80 s of loading).
TRITON_DOWN_S = 30.0


def _kill_and_restart_worker(ctx: FaultContext) -> tuple[float, float]:
    time.sleep(1.0)
    t0 = time.time()
    ctx.workers[0].kill()
    ctx.deployment.start_worker()
    return t0, time.time()


def _triton_outage(ctx: FaultContext) -> tuple[float, float]:
    t0 = time.time()
    ctx.stack.stop("triton")
    time.sleep(TRITON_DOWN_S)
    ctx.notes["down_s"] = TRITON_DOWN_S
    ctx.stack.start("triton")
    return t0, time.time()


def _restart(name: str) -> Callable[[FaultContext], tuple[float, float]]:
    def inject(ctx: FaultContext) -> tuple[float, float]:
        t0 = time.time()
        ctx.stack.stop(name)
        ctx.stack.start(name)
        return t0, time.time()

    return inject


def _kill_one_of_two(ctx: FaultContext) -> tuple[float, float]:
    t0 = time.time()
    ctx.workers[1].kill()
    return t0, time.time()


FAULTS = {
    "worker_sigkill": Fault(
        "worker_sigkill",
        "Worker SIGKILLed mid-stream, then restarted",
        _kill_and_restart_worker,
        kills_workers=True,
    ),
    "triton_outage": Fault(
        "triton_outage", f"Triton stopped for {TRITON_DOWN_S:.0f} s, then started", _triton_outage
    ),
    "cassandra_restart": Fault("cassandra_restart", "Cassandra stopped and restarted", _restart("cassandra")),
    "kafka_restart": Fault("kafka_restart", "Kafka broker stopped and restarted", _restart("kafka")),
    "two_workers_one_killed": Fault(
        "two_workers_one_killed",
        "Two workers, one SIGKILLed (its partitions move to the other)",
        _kill_one_of_two,
        workers=2,
        kills_workers=True,
    ),
}


def _run(
    name: str,
    chaos_stack: ChaosStack,
    chaos_deployment: Callable[[], Deployment],
    chaos_events: list[Event],
    clean_run: CleanRun,
) -> None:
    report = run_fault(
        FAULTS[name], chaos_stack, chaos_deployment(), chaos_events, clean_run.states, rate=RATE
    )
    assert report["problems"] == [], report


def test_worker_sigkill_mid_stream_then_restart(
    chaos_stack: ChaosStack,
    chaos_deployment: Callable[[], Deployment],
    chaos_events: list[Event],
    clean_run: CleanRun,
) -> None:
    _run("worker_sigkill", chaos_stack, chaos_deployment, chaos_events, clean_run)


@pytest.mark.long
def test_triton_stopped_for_30s(
    chaos_stack: ChaosStack,
    chaos_deployment: Callable[[], Deployment],
    chaos_events: list[Event],
    clean_run: CleanRun,
) -> None:
    _run("triton_outage", chaos_stack, chaos_deployment, chaos_events, clean_run)


@pytest.mark.long
def test_cassandra_restarted(
    chaos_stack: ChaosStack,
    chaos_deployment: Callable[[], Deployment],
    chaos_events: list[Event],
    clean_run: CleanRun,
) -> None:
    _run("cassandra_restart", chaos_stack, chaos_deployment, chaos_events, clean_run)


@pytest.mark.long
def test_kafka_broker_restarted(
    chaos_stack: ChaosStack,
    chaos_deployment: Callable[[], Deployment],
    chaos_events: list[Event],
    clean_run: CleanRun,
) -> None:
    _run("kafka_restart", chaos_stack, chaos_deployment, chaos_events, clean_run)


@pytest.mark.long
def test_two_workers_one_sigkilled(
    chaos_stack: ChaosStack,
    chaos_deployment: Callable[[], Deployment],
    chaos_events: list[Event],
    clean_run: CleanRun,
) -> None:
    _run("two_workers_one_killed", chaos_stack, chaos_deployment, chaos_events, clean_run)
