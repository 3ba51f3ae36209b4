"""One fault run: replay events at a fixed rate, inject a fault mid-stream, measure the outcome.

:func:`run_fault` starts the workers of a fresh deployment on the chaos stack, sends the events
at ``rate``, calls the fault's ``inject`` once a quarter of them are sent, waits for every event
to have its list, then compares the Cassandra states with the clean run, counts lost and
double-applied events, lists and dead letters, computes the recovery times, and writes
``reports/chaos/<fault>.json``. The caller asserts ``result["problems"] == []``.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from recstream.settings import REPO_ROOT
from schemas.events import Event
from streams.workerproc import Deployment, WorkerProcess
from tests.chaos.accounting import (
    account_events,
    account_lists,
    compare_states,
    first_list_times,
    recovery_times,
)
from tests.chaos.harness import (
    PacedProducer,
    event_messages,
    read_states,
    read_topic,
    topic_size,
    wait_lists,
)

REPORT_DIR = REPO_ROOT / "reports" / "chaos"
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


def _counters(workers: Sequence[WorkerProcess]) -> float:
    total = 0.0
    for w in workers:
        if w.alive:
            with contextlib.suppress(OSError):
                total += sum(float(m.group(2)) for m in _COUNTER.finditer(w.get("/metrics").decode()))
    return total


def _retry_log_lines(workers: Sequence[WorkerProcess]) -> int:
    return sum(w.log_tail(10_000_000).count("batch failed") for w in workers)


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
    workers = [deployment.start_worker() for _ in range(fault.workers)]
    msgs = event_messages(s, events)
    producer = PacedProducer(s, msgs, rate)
    t_begin = time.time()
    producer.start()
    producer.wait_sent(int(len(msgs) * at_fraction))
    ctx = FaultContext(stack, deployment, workers)
    log_from = len(getattr(stack, "log", []))
    fault_start, fault_end = fault.inject(ctx)
    producer.finish()
    ids = {e.event_id for e in events}
    lists = wait_lists(s, ids, timeout_s=recover_timeout_s)
    t_done = time.time()
    time.sleep(2.0)  # lists are published after their state is written; let stragglers land
    inputs = read_topic(s, list(s.event_topics.values()), lambda got: len(got) >= len(msgs), timeout_s=120)
    states = read_states(s)
    by_user: dict[str, list[str]] = {}
    for e in events:
        by_user.setdefault(e.user_id, []).append(e.event_id)
    ev = account_events(by_user, states)
    la = account_lists([json.loads(r.value)["trigger_event_id"] for r in lists], ids)
    diff = compare_states(clean_states, states)
    sent_at: dict[str, float] = {}
    for r in inputs:  # a re-queued click appears twice: the first send counts
        eid = json.loads(r.value)["event_id"]
        sent_at[eid] = min(sent_at.get(eid, float("inf")), r.timestamp_ms / 1000.0)
    rec = recovery_times(fault_end, sent_at, first_list_times((r.value, r.timestamp_ms) for r in lists))
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
        "lists": len(lists),
        "lists_missing": la.missing,
        "duplicate_lists": la.duplicate_lists,
        "dead_letters": dead,
        "requeued_clicks": len(inputs) - len(msgs),
        "state": asdict(diff),
        "fault_start_s": round(fault_start - t_begin, 2),
        "fault_duration_s": round(fault_end - fault_start, 2),
        "recovery_first_list_s": None if rec.first_list_s is None else round(rec.first_list_s, 2),
        "recovery_backlog_s": None if rec.backlog_drained_s is None else round(rec.backlog_drained_s, 2),
        "all_lists_after_s": round(t_done - t_begin, 2),
        "triton_retries_and_errors": _counters(survivors),
        "runtime_retry_log_lines": _retry_log_lines(deployment.workers),
        "notes": ctx.notes,
        "stack_log": list(getattr(stack, "log", []))[log_from:],
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    write_report(fault.name, report)
    return report


def write_report(name: str, report: dict[str, Any], directory: Path = REPORT_DIR) -> Path:
    """Write one scenario's report as ``<directory>/<name>.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return path
