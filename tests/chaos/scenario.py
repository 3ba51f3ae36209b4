"""One fault run: replay events at a fixed rate, inject a fault mid-stream, measure the outcome.

:func:`run_fault` starts the workers of a fresh deployment on the chaos stack, sends the events
at ``rate``, calls the fault's ``inject`` once a quarter of them are sent, waits for every event
to have its list, then judges the run three ways: the independent oracle (tests/chaos/oracle.py:
the distinct events offered, applied with the pure rule, against every stored state), the clean
run (same users, counts, ids and seen items), and a sampler that read the states every second
during the run (no user's applied-event count ever went down: no state moved backwards). It also
checks that the fault really hit the pipeline (:attr:`Fault.hit`) and that recovery stayed within
its bound, and writes ``reports/chaos/<fault>.json``. The caller asserts ``problems == []``.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from recstream.lab.provenance import provenance, with_provenance
from recstream.settings import REPO_ROOT
from recstream.testing import Deployment, ListCollector, WorkerProcess, event_message, read_topic
from schemas.events import Event
from streams.topics import retry_topic
from tests.chaos.accounting import (
    UserRow,
    account_events,
    account_lists,
    compare_states,
    first_list_times,
    recovery_times,
)
from tests.chaos.harness import PacedProducer, read_states, topic_size
from tests.chaos.oracle import compare, expected_states

REPORT_DIR = REPO_ROOT / "reports" / "chaos"
#: Waiting for lists gives up after this long without a new one (a lost event never gets one).
IDLE_S = 180.0
_DUPLICATES = re.compile(r'^recstream_events_total\{outcome="duplicate",type="[^"]+"\} (\S+)$', re.M)
_COUNTER = re.compile(
    r"^(recstream_triton_retries_total|recstream_triton_errors_total)\{[^}]*\} (\S+)$", re.M
)


@dataclass
class FaultContext:
    """What an ``inject`` function may act on."""

    stack: Any  # tests.chaos.conftest.ChaosStack (not imported: conftest imports this module's users)
    deployment: Deployment
    workers: list[WorkerProcess]
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Fault:
    """A fault scenario.

    Attributes:
        name: Report file name and table key.
        title: What happens, for the report.
        inject: Performs the fault and the restoration; returns (fault start, fault end), epoch s.
        workers: Workers started before the events.
        kills_workers: The fault kills worker processes itself (survival is not required).
    """

    name: str
    title: str
    inject: Callable[[FaultContext], tuple[float, float]]
    workers: int = 1
    kills_workers: bool = False
    #: Why the run counts: None when the fault visibly hit the pipeline, else what is missing.
    hit: Callable[[dict[str, Any]], str | None] | None = None
    #: Variables of the first worker only (e.g. a fault hook).
    first_worker_env: dict[str, str] = field(default_factory=dict)
    #: Fault end to the backlog drained, at most (seconds; generous for a loaded 2-core machine).
    recovery_bound_s: float = 120.0


def _counters(workers: Sequence[WorkerProcess]) -> float:
    total = 0.0
    for w in workers:
        if w.alive:
            with contextlib.suppress(OSError):
                total += sum(float(m.group(2)) for m in _COUNTER.finditer(w.get("/metrics").decode()))
    return total


#: Log lines that show a worker met a failing dependency (and paused or retried).
RETRY_MARKERS = ("batch failed", "checkpoint failed", "publish failed", "not delivered")


#: Log lines of the worker's Kafka client that show it lost the broker (and kept retrying).
KAFKA_MARKERS = ("Failed fetch messages", "Marking the coordinator dead", "Unable connect to node")


def _kafka_error_log_lines(workers: Sequence[WorkerProcess]) -> int:
    return sum(w.log_tail(100_000_000).count(m) for w in workers for m in KAFKA_MARKERS)


def _duplicates_skipped(workers: Sequence[WorkerProcess]) -> float:
    """Events the live workers recognised as already applied (the guard at work)."""
    total = 0.0
    for w in workers:
        if w.alive:
            with contextlib.suppress(OSError):
                total += sum(float(m.group(1)) for m in _DUPLICATES.finditer(w.get("/metrics").decode()))
    return total


def _retry_log_lines(workers: Sequence[WorkerProcess]) -> int:
    return sum(w.log_tail(10_000_000).count(m) for w in workers for m in RETRY_MARKERS)


def run_fault(
    fault: Fault,
    stack: Any,
    deployment: Deployment,
    events: Sequence[Event],
    clean_states: dict[str, Any],
    *,
    rate: float,
    at_fraction: float = 0.25,
    recover_timeout_s: float = 600.0,
) -> dict[str, Any]:
    """Run ``fault`` (see the module docstring); returns the report dict (also written as JSON)."""
    s = deployment.settings
    workers = [
        deployment.start_worker(**(fault.first_worker_env if i == 0 else {})) for i in range(fault.workers)
    ]
    sampler = StateSampler(s)
    sampler.start()
    msgs = [event_message(s, e) for e in events]
    producer = PacedProducer(s, msgs, rate)
    t_begin = time.time()
    producer.start()
    producer.wait_sent(int(len(msgs) * at_fraction))
    ctx = FaultContext(stack, deployment, workers)
    log_from = len(getattr(stack, "log", []))
    fault_start, fault_end = fault.inject(ctx)
    producer.finish()
    ids = {e.event_id for e in events}
    with ListCollector(s) as lists:
        lists.wait_for(ids, recover_timeout_s, idle_s=IDLE_S)
    t_done = time.time()
    time.sleep(2.0)  # lists are published after their state is written; let stragglers land
    inputs = read_topic(s, list(s.event_topics.values()), lambda got: len(got) >= len(msgs), timeout_s=120)
    states = settled_states(s)
    sampler.stop()
    verdict = compare(expected_states(s), states, s.seen_items_max)
    by_user: dict[str, list[str]] = {}
    for e in events:
        by_user.setdefault(e.user_id, []).append(e.event_id)
    ev = account_events(by_user, states)
    la = account_lists(lists.counts.elements(), ids)
    diff = compare_states(clean_states, states)
    sent_at: dict[str, float] = {}
    for r in inputs:  # a re-queued click appears twice: the first send counts
        eid = json.loads(r.value)["event_id"]
        sent_at[eid] = min(sent_at.get(eid, float("inf")), r.timestamp_ms / 1000.0)
    rec = recovery_times(
        fault_end, sent_at, first_list_times((a.value, a.timestamp_ms) for a in lists.first.values())
    )
    dead = topic_size(s, s.topic_dlq)
    survivors = [w for w in deployment.workers if w.alive]
    crashed = [] if fault.kills_workers else [w.log_path.name for w in workers if not w.alive]
    problems = []
    if ev.lost:
        problems.append(f"{ev.lost} events lost (e.g. {list(ev.lost_ids[:5])})")
    if ev.duplicated:
        problems.append(f"{ev.duplicated} events applied twice")
    if ev.unexpected:
        problems.append(f"{ev.unexpected} unexpected event ids in the state")
    if la.missing:
        problems.append(f"{la.missing} events without a list")
    if dead:
        problems.append(f"{dead} dead letters for a transient fault")
    if not diff.equal():
        problems.append(f"state differs from the clean run: {asdict(diff)}")
    if crashed:
        problems.append(f"worker(s) died: {crashed}")
    if not verdict.ok:
        problems.append(
            f"oracle: {verdict.missing} lost, {verdict.extra} applied twice; {list(verdict.details)}"
        )
    if sampler.backwards:
        problems.append(f"states moved backwards: {sampler.backwards[:5]}")
    input_ids = [json.loads(r.value)["event_id"] for r in inputs]
    if set(input_ids) != ids:
        problems.append(f"{len(set(input_ids))} of {len(ids)} input events read back from Kafka")
    report = {
        "fault": fault.name,
        "title": fault.title,
        "outcome": "pass" if not problems else "FAIL",
        "problems": problems,
        "events": len(events),
        "rate_per_s": rate,
        "workers": fault.workers,
        "lost": ev.lost,
        "duplicated": ev.duplicated,
        "lists": lists.total,
        "lists_missing": la.missing,
        "duplicate_lists": la.duplicate_lists,
        "dead_letters": dead,
        # Deferred clicks wait on recstream's own retry topic, never on events.click.
        "requeued_clicks": topic_size(s, retry_topic(s)),
        "clicks_reread_on_input_topics": len(inputs) - len(msgs),
        "state": asdict(diff),
        "fault_start_s": round(fault_start - t_begin, 2),
        "fault_duration_s": round(fault_end - fault_start, 2),
        "recovery_first_list_s": None if rec.first_list_s is None else round(rec.first_list_s, 2),
        "recovery_backlog_s": None if rec.backlog_drained_s is None else round(rec.backlog_drained_s, 2),
        "all_lists_after_s": round(t_done - t_begin, 2),
        "triton_retries_and_errors": _counters(survivors),
        "duplicates_skipped": _duplicates_skipped(survivors),
        "runtime_retry_log_lines": _retry_log_lines(deployment.workers),
        "kafka_client_error_log_lines": _kafka_error_log_lines(deployment.workers),
        "notes": ctx.notes,
        "oracle": asdict(verdict) | {"ok": verdict.ok},
        "state_samples": sampler.samples,
        "states_moved_backwards": len(sampler.backwards),
        "stack_log": list(getattr(stack, "log", []))[log_from:],
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "provenance": provenance(s),
    }
    if fault.hit is not None and (why := fault.hit(report)):
        problems.append(f"the fault did not visibly hit the pipeline: {why}")
    drained = report["recovery_backlog_s"]
    if drained is None or drained > fault.recovery_bound_s:
        problems.append(f"backlog drained after {drained} s (bound {fault.recovery_bound_s:.0f} s)")
    report["recovery_bound_s"] = fault.recovery_bound_s
    report["outcome"] = "pass" if not problems else "FAIL"
    write_report(fault.name, report)
    return report


def settled_states(settings: Any, timeout_s: float = 60.0) -> dict[str, UserRow]:
    """The stored states once the workers' write-behind has caught up (two equal reads)."""
    deadline = time.monotonic() + timeout_s
    prev = read_states(settings)
    while time.monotonic() < deadline:
        time.sleep(settings.commit_interval_s * 2)
        cur = read_states(settings)
        if {u: r.event_count for u, r in cur.items()} == {u: r.event_count for u, r in prev.items()}:
            return cur
        prev = cur
    return prev


class StateSampler(threading.Thread):
    """Reads every state each second: a user's applied-event count must never go down."""

    def __init__(self, settings: Any) -> None:
        super().__init__(daemon=True, name="state-sampler")
        self.settings = settings
        self.samples = 0
        self.backwards: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        last: dict[str, int] = {}
        while not self._halt.wait(1.0):
            try:
                states = read_states(self.settings)
            except Exception:  # Cassandra down during its own fault: try again next second
                continue
            self.samples += 1
            for user, row in states.items():
                if row.event_count < last.get(user, 0):
                    self.backwards.append(f"{user}: {last[user]} -> {row.event_count}")
                last[user] = max(last.get(user, 0), row.event_count)

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


def write_report(name: str, report: dict[str, Any], directory: Path = REPORT_DIR) -> Path:
    """Write one scenario's report as ``<directory>/<name>.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps(with_provenance(report), indent=2, default=str) + "\n")
    return path
