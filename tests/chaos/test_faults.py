"""Faults injected into real workers and an isolated real stack while events stream in.

Each test replays the same MovieLens events at a fixed rate, breaks one thing a quarter of the
way through, and requires: the independent oracle finds every distinct event applied exactly
once in every stored state (tests/chaos/oracle.py), the states equal the clean run's, every
event has a list, no dead letter, no state ever moved backwards, the fault visibly hit the
pipeline, and the backlog drained within the fault's bound. Servers are stopped (SIGTERM) and
killed (SIGKILL); workers are killed at chance moments and at chosen points of the commit
protocol (test-only fault hooks), and paused past their session (fencing). The negative
controls run the worker-kill scenario with the duplicate guard off and with one event dropped:
the oracle must report both, or the whole suite fails. Figures go to
``reports/chaos/<fault>.json`` and, through ``python -m tests.chaos.report``, docs/RELIABILITY.md.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from recstream.testing import Deployment
from schemas.events import Event
from tests.chaos.conftest import ChaosStack, CleanRun
from tests.chaos.scenario import REPORT_DIR, Fault, FaultContext, run_fault, write_report

#: Generous bound for a whole scenario (stack restarts take minutes on a loaded machine).
pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.timeout(1800)]

#: Offered rate: the ~1,060 events stream for about a minute, so every fault lands mid-stream.
RATE = 20.0
#: How long Triton stays down before it is started again (its start adds 35-80 s of loading).
TRITON_DOWN_S = 30.0
#: Past the worker's Kafka session timeout (15 s): the group moves its partitions.
PAUSE_S = 25.0


def _redelivered(r: dict[str, Any]) -> str | None:
    return None if r["duplicate_lists"] > 0 else "no event was delivered twice (nothing was redone)"


def _retried(r: dict[str, Any]) -> str | None:
    if r["runtime_retry_log_lines"] > 0 or r["triton_retries_and_errors"] > 0:
        return None
    return "no worker met the failing dependency (no retry, no failed batch or checkpoint)"


def _lost_broker(r: dict[str, Any]) -> str | None:
    if r["kafka_client_error_log_lines"] > 0:
        return None
    return "no worker's Kafka client lost the broker (no failed fetch, no dead coordinator)"


def _taken_over(r: dict[str, Any]) -> str | None:
    if r["notes"].get("took_over_s") is None:
        return "the survivor never took over every partition of the dead worker"
    return None


def _hook_fired(point: str, *, guard: bool = False) -> Callable[[dict[str, Any]], str | None]:
    def check(r: dict[str, Any]) -> str | None:
        if not r["notes"].get("hook_fired"):
            return f"the worker never reached {point}"
        if guard and not r["duplicates_skipped"]:
            return "no redelivered event was recognised as applied (the guard was never exercised)"
        return _redelivered(r)

    return check


def _nothing(ctx: FaultContext) -> tuple[float, float]:
    now = time.time()
    return now, now


def _kill_and_restart_worker(ctx: FaultContext) -> tuple[float, float]:
    time.sleep(1.0)
    t0 = time.time()
    ctx.workers[0].kill()
    ctx.deployment.start_worker()
    return t0, time.time()


def _aimed_kill(point: str) -> Callable[[FaultContext], tuple[float, float]]:
    """The first worker carries the hook and kills itself there; a new worker takes over."""

    def inject(ctx: FaultContext) -> tuple[float, float]:
        w = ctx.workers[0]
        deadline = time.monotonic() + 120
        while w.alive and time.monotonic() < deadline:
            time.sleep(0.1)
        t0 = time.time()
        ctx.notes["hook_fired"] = f"fault hook: SIGKILL at {point}" in w.log_tail(10_000_000)
        w.kill()  # in case it never got there: the scenario then fails on hook_fired
        ctx.deployment.start_worker()
        return t0, time.time()

    return inject


def _triton_outage(ctx: FaultContext) -> tuple[float, float]:
    t0 = time.time()
    ctx.stack.stop("triton")
    time.sleep(TRITON_DOWN_S)
    ctx.notes["down_s"] = TRITON_DOWN_S
    ctx.stack.start("triton")
    return t0, time.time()


def _restart(name: str, *, kill: bool = False) -> Callable[[FaultContext], tuple[float, float]]:
    def inject(ctx: FaultContext) -> tuple[float, float]:
        t0 = time.time()
        ctx.stack.stop(name, kill=kill)
        if kill:
            time.sleep(5.0)  # a crashed node stays away a moment before it is restarted
        ctx.stack.start(name)
        return t0, time.time()

    return inject


_PROCESSED = re.compile(r'^recstream_events_total\{outcome="processed",type="[^"]+"\} (\S+)$', re.M)


def _kill_one_of_two(ctx: FaultContext) -> tuple[float, float]:
    """SIGKILL the second worker once it is processing (it holds work not yet committed)."""
    w = ctx.workers[1]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if sum(float(m.group(1)) for m in _PROCESSED.finditer(w.get("/metrics").decode())) > 0:
                break
        time.sleep(0.2)
    time.sleep(0.5)  # a few batches in: some applied and published, likely not yet committed
    survivor = ctx.workers[0]
    seen = len(survivor.log_tail(100_000_000))
    t0 = time.time()
    w.kill()
    t1 = time.time()
    # The survivor must take over every input partition (after the session timeout); whether
    # the dead worker left work to redo (duplicate lists) depends on where the kill landed.
    s = ctx.deployment.settings
    every = len(s.event_topics) * s.topic_partitions
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assigned = [ln for ln in survivor.log_tail(100_000_000)[seen:].splitlines() if '"assigned {' in ln]
        if assigned and assigned[-1].count("': ") >= every:
            ctx.notes["took_over_s"] = round(time.time() - t1, 1)
            break
        time.sleep(0.5)
    return t0, t1


def _pause_one_of_two(ctx: FaultContext) -> tuple[float, float]:
    """A long pause (GC, frozen VM): the group moves its partitions, then it wakes up."""
    t0 = time.time()
    before = len(ctx.workers[1].log_tail(100_000_000))
    ctx.workers[1].pause()
    time.sleep(PAUSE_S)
    ctx.workers[1].resume()
    ctx.notes["paused_s"] = PAUSE_S
    t1 = time.time()
    # The woken worker finds it was dropped from the group: its commit for the partitions it
    # lost must be refused by the broker (and it forgets the states it held).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        log = ctx.workers[1].log_tail(100_000_000)[before:]
        if "commit refused or states unwritten" in log:
            ctx.notes["stale_commit_refused"] = True
            break
        time.sleep(0.5)
    return t0, t1


def _fenced(r: dict[str, Any]) -> str | None:
    if not r["notes"].get("stale_commit_refused"):
        return "the paused worker's late commit was not refused (did it lose its partitions?)"
    return None


FAULTS = {
    "worker_sigkill": Fault(
        "worker_sigkill",
        "Worker SIGKILLed mid-stream, then restarted",
        _kill_and_restart_worker,
        kills_workers=True,
        hit=_redelivered,
    ),
    "worker_kill_after_apply": Fault(
        "worker_kill_after_apply",
        "Worker killed after applying a batch, before publishing it",
        _aimed_kill("after_apply"),
        kills_workers=True,
        hit=_hook_fired("after_apply"),
        first_worker_env={"RECSTREAM_FAULT_HOOK": "after_apply:60"},
    ),
    "worker_kill_after_publish": Fault(
        "worker_kill_after_publish",
        "Worker killed after publishing a batch's lists, before the commit",
        _aimed_kill("after_publish"),
        kills_workers=True,
        hit=_hook_fired("after_publish"),
        first_worker_env={"RECSTREAM_FAULT_HOOK": "after_publish:60"},
    ),
    "worker_kill_after_flush": Fault(
        "worker_kill_after_flush",
        "Worker killed after writing states, before committing offsets",
        _aimed_kill("after_flush"),
        kills_workers=True,
        hit=_hook_fired("after_flush"),
        first_worker_env={"RECSTREAM_FAULT_HOOK": "after_flush:6"},
    ),
    "triton_outage": Fault(
        "triton_outage",
        f"Triton stopped for {TRITON_DOWN_S:.0f} s, then started",
        _triton_outage,
        hit=_retried,
    ),
    "triton_sigkill": Fault(
        "triton_sigkill", "Triton SIGKILLed, then started", _restart("triton", kill=True), hit=_retried
    ),
    "cassandra_restart": Fault(
        "cassandra_restart", "Cassandra stopped and restarted", _restart("cassandra"), hit=_retried
    ),
    "cassandra_sigkill": Fault(
        "cassandra_sigkill",
        "Cassandra SIGKILLed, then restarted",
        _restart("cassandra", kill=True),
        hit=_retried,
    ),
    "kafka_restart": Fault(
        "kafka_restart", "Kafka broker stopped and restarted", _restart("kafka"), hit=_lost_broker
    ),
    "kafka_sigkill": Fault(
        "kafka_sigkill",
        "Kafka broker SIGKILLed, then restarted",
        _restart("kafka", kill=True),
        hit=_lost_broker,
    ),
    "two_workers_one_killed": Fault(
        "two_workers_one_killed",
        "Two workers, one SIGKILLed (its partitions move to the other)",
        _kill_one_of_two,
        workers=2,
        kills_workers=True,
        hit=_taken_over,
    ),
    "paused_worker": Fault(
        "paused_worker",
        f"Two workers, one paused {PAUSE_S:.0f} s (SIGSTOP) past its session, then resumed",
        _pause_one_of_two,
        workers=2,
        hit=_fenced,
    ),
}


def _run(
    name: str,
    chaos_stack: ChaosStack,
    chaos_deployment: Callable[[], Deployment],
    chaos_events: list[Event],
    clean_run: CleanRun,
    negative_controls: dict[str, Any],
) -> None:
    d = chaos_deployment()
    report = run_fault(FAULTS[name], chaos_stack, d, chaos_events, clean_run.states, rate=RATE)
    report["negative_controls"] = negative_controls
    write_report(name, report)
    assert report["problems"] == [], report["problems"]


@pytest.fixture(scope="package")
def negative_controls(
    chaos_stack: ChaosStack, chaos_events: list[Event], clean_run: CleanRun, request: pytest.FixtureRequest
) -> dict[str, Any]:
    """Break the worker on purpose; the oracle must see it (else every fault test is void)."""
    out: dict[str, Any] = {}
    # The guard matters for events whose state was written but whose offsets were not committed:
    # kill right there (after_flush), with the guard off in every worker of the run.
    controls = {
        "no_dedup": ("no_dedup", "no_dedup,after_flush:6", _aimed_kill("after_flush")),
        "drop_event": ("drop_event:300", "drop_event:300", _nothing),
    }
    for name, (hook, first_hook, inject) in controls.items():
        d = chaos_stack.deployment(REPORT_DIR / "logs" / f"negative_{name}")
        try:
            fault = Fault(
                f"negative_{name}",
                f"negative control: {first_hook}",
                inject,
                kills_workers=True,
                first_worker_env={"RECSTREAM_FAULT_HOOK": first_hook},
            )
            d.env["RECSTREAM_FAULT_HOOK"] = hook  # every worker of the run is broken
            r = run_fault(fault, chaos_stack, d, chaos_events, clean_run.states, rate=RATE)
        finally:
            d.drop()
        oracle = r["oracle"]
        detected = not oracle["ok"]
        out[name] = {
            "hook": hook,
            "detected": detected,
            "lost": oracle["missing"],
            "applied_twice": oracle["extra"],
            "sum_mismatch": oracle["sum_mismatch"],
        }
    undetected = [n for n, v in out.items() if not v["detected"]]
    assert not undetected, f"negative controls not detected by the oracle: {undetected} ({out})"
    return out


def _scenarios() -> list[Any]:
    """Every scenario; ``CHAOS_REPEAT=NAME:N`` runs one scenario N times in a row instead."""
    if repeat := os.environ.get("CHAOS_REPEAT"):
        name, _, n = repeat.partition(":")
        return [pytest.param(name, id=f"{name}-{i + 1}", marks=pytest.mark.long) for i in range(int(n))]
    return [
        "worker_sigkill",
        pytest.param("worker_kill_after_apply", marks=pytest.mark.long),
        pytest.param("worker_kill_after_publish", marks=pytest.mark.long),
        pytest.param("worker_kill_after_flush", marks=pytest.mark.long),
        pytest.param("triton_outage", marks=pytest.mark.long),
        pytest.param("triton_sigkill", marks=pytest.mark.long),
        pytest.param("cassandra_restart", marks=pytest.mark.long),
        pytest.param("cassandra_sigkill", marks=pytest.mark.long),
        pytest.param("kafka_restart", marks=pytest.mark.long),
        pytest.param("kafka_sigkill", marks=pytest.mark.long),
        pytest.param("two_workers_one_killed", marks=pytest.mark.long),
        pytest.param("paused_worker", marks=pytest.mark.long),
    ]


@pytest.mark.parametrize("name", _scenarios())
def test_fault(
    name: str,
    chaos_stack: ChaosStack,
    chaos_deployment: Callable[[], Deployment],
    chaos_events: list[Event],
    clean_run: CleanRun,
    request: pytest.FixtureRequest,
) -> None:
    # The negative controls cost two scenarios: make chaos runs them; make test (only the
    # worker kill) does not, and its report says so.
    if request.config.getoption("-m", default="") == "not long":
        controls: dict[str, Any] = {
            "not_run": "make test runs the worker-kill scenario only; make chaos runs the controls"
        }
    elif os.environ.get("CHAOS_CONTROLS") == "0":  # a developer re-running one scenario
        controls = {"not_run": "CHAOS_CONTROLS=0: a partial run; make chaos runs the controls"}
    else:
        controls = request.getfixturevalue("negative_controls")
    _run(name, chaos_stack, chaos_deployment, chaos_events, clean_run, controls)
