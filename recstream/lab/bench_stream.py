"""End-to-end stream benchmarks: a real worker in an isolated deployment on the running stack.

* click path: sustained events/s from the first produce to the last list received, for a burst of
  clicks, with the Cassandra statements the worker sent per click (its
  ``recstream_cassandra_statements_total`` before and after the bursts, once the group has
  committed them, i.e. once their states are written);
* baselines measured the same way in the same run, each a subprocess on topics of its own: a bare
  aiokafka consume -> produce passthrough (the Python client's own ceiling) and a Faust agent
  doing the same (what Faust itself costs): ``python -m recstream.lab.bench_stream [--faust] SRC DST``;
* freshness: event timestamp -> list received by an external consumer, at a fixed offered rate
  (500 events/s by default) and at 1,000 and 2,000, each with the rate lists were received at;
* review path: reviews go through the Triton text encoder; events/s and per-event latency.

Lists are paired with events by ``trigger_event_id``; each run's event ids carry a unique
prefix, so nothing of an earlier run is counted. Figures are printed, never asserted here
(``recstream bench --require`` checks them against docs/targets.toml).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recstream.lab.bench import (
    StreamMeasure,
    click,
    counter_by_label,
    faust_app_id,
    faust_passthrough,
    passthrough,
    review,
    stage_profile,
    stage_readings,
    statements_per_event,
    summarise,
    upload,
)
from recstream.settings import Settings
from recstream.testing import AsyncEventProducer, Deployment, ListCollector, recstream_environ
from schemas.events import Event


class Harness:
    """A producer to the deployment's input topics and a collector of its output topic.

    The collector starts at the topic's end (nothing of an earlier run counts) and notes when
    each output was read; the producer notes when each event was sent.
    """

    def __init__(self, settings: Settings, out_topic: str | None = None) -> None:
        self.settings = settings
        self.sent_at: dict[str, float] = {}
        self.event_ts: dict[str, int] = {}
        self.producer = AsyncEventProducer(settings, linger_ms=1)
        self.outputs = ListCollector(settings, topic=out_topic, start="latest", keep="nothing")
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Harness:
        await self._stack.enter_async_context(self.producer)
        await self._stack.enter_async_context(self.outputs)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    def received(self, event_id: str) -> float:
        """When the output of ``event_id`` was read (``time.perf_counter()``)."""
        return self.outputs[event_id].received

    async def send(self, ev: Event, topic: str | None = None, key: bytes | None = None) -> None:
        """Produce one event (to its type's topic unless ``topic``) and note when."""
        self.sent_at[ev.event_id] = time.perf_counter()
        self.event_ts[ev.event_id] = ev.ts
        await self.producer.send(ev, topic=topic, key=key)

    async def wait_for(
        self, ids: list[str], timeout_s: float = 300.0, alive: Callable[[], bool] | None = None
    ) -> None:
        """Until every id in ``ids`` has its output.

        Raises:
            TimeoutError: Outputs still missing after ``timeout_s`` (with a count).
            RuntimeError: ``alive`` says the process producing the outputs has exited.
        """
        await self.producer.flush()
        missing = await self.outputs.wait_for_async(ids, timeout_s, alive=alive)
        if missing and alive is not None and not alive():
            raise RuntimeError(f"the consumer exited with {len(missing)} of {len(ids)} outputs missing")
        if missing:
            raise TimeoutError(f"{len(missing)} of {len(ids)} outputs missing after {timeout_s:.0f} s")

    def measure(self, name: str, ids: list[str]) -> StreamMeasure:
        """Wall time first send -> last output, and per-event send -> output latencies."""
        first = min(self.sent_at[i] for i in ids)
        last = max(self.received(i) for i in ids)
        lat = [(self.received(i) - self.sent_at[i]) * 1000 for i in ids]
        return StreamMeasure(name, len(ids), last - first, lat)


async def burst(
    h: Harness,
    events: Sequence[Event],
    name: str,
    topic: str | None = None,
    alive: Callable[[], bool] | None = None,
) -> StreamMeasure:
    """Produce ``events`` as fast as the producer goes; measure until the last output."""
    for ev in events:
        await h.send(ev, topic=topic, key=ev.event_id.encode() if topic else None)
    ids = [e.event_id for e in events]
    await h.wait_for(ids, alive=alive)
    return h.measure(name, ids)


async def paced(
    h: Harness, make: Callable[[int], Event], rate: float, seconds: float, name: str
) -> StreamMeasure:
    """Produce at ``rate`` events/s for ``seconds``; latency = list received - event timestamp.

    Events are due at ``i / rate`` (catching up after a hiccup). The run's events/s is the rate
    lists were received at (events / first send -> last list); ``sent_seconds`` is what sending
    took, one interval per event, so a producer on schedule sends at exactly ``rate``.
    """
    n = int(rate * seconds)
    t0 = time.perf_counter()
    wall0 = time.time()
    ids = []
    for i in range(n):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        ev = make(i)
        ids.append(ev.event_id)
        await h.send(ev)
    sent_seconds = time.perf_counter() - t0 + 1 / rate
    await h.wait_for(ids)
    # Freshness from the event's own timestamp (epoch ms) to the receipt, on one clock.
    offset = wall0 - t0
    lat = [((h.received(i) + offset) * 1000 - h.event_ts[i]) for i in ids]
    last = max(h.received(i) for i in ids)
    return StreamMeasure(name, n, last - t0, lat, offered_per_s=rate, sent_seconds=sent_seconds)


@dataclass
class StreamBenchConfig:
    """Sizes of the stream benchmarks (defaults: a few minutes on 2 cores)."""

    repeats: int = 3
    clicks: int = 5000
    rate: float = 500.0
    fresh_rates: tuple[float, ...] = (1000.0, 2000.0)
    fresh_seconds: float = 10.0
    reviews: int = 300
    items: int = 500
    users: int = 1000
    passthrough_warmup: int = 200


#: Settings of the benchmark's worker on top of the caller's (provenance records them).
WORKER_OVERRIDES = {"RECSTREAM_LOG_LEVEL": "WARNING", "RECSTREAM_K": "20"}
#: Report key -> (arguments of ``python -m recstream.lab.bench_stream`` before SRC DST, row name).
PASSTHROUGHS: dict[str, tuple[tuple[str, ...], str]] = {
    "passthrough": ((), "aiokafka consume -> produce passthrough"),
    "faust_passthrough": (("--faust",), "Faust agent consume -> produce passthrough"),
}
STATEMENTS = "recstream_cassandra_statements_total"


def fresh_key(rate: float, fixed: float) -> str:
    """Report key of a freshness run: ``fresh`` at the fixed rate, else ``fresh_<rate>``."""
    return "fresh" if rate == fixed else f"fresh_{rate:g}"


def fresh_rates(cfg: StreamBenchConfig) -> list[float]:
    """The fixed rate, then each other rate once, in the order given."""
    return list(dict.fromkeys([cfg.rate, *cfg.fresh_rates]))


def wait_settled(lag: Callable[[], int | None], timeout_s: float = 60.0) -> bool:
    """Until the consumer group has committed every input event (so their states are written).

    The worker commits an offset only after writing the states it covers, so a lag of 0 means
    every Cassandra statement of those events has been sent and counted. False at timeout.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if lag() == 0:
            return True
        time.sleep(0.25)
    return False


def _stages(worker: Any) -> dict[str, tuple[float, float]]:
    return stage_readings(worker.get("/metrics").decode())


def _statements(worker: Any) -> dict[str, float]:
    return counter_by_label(worker.get("/metrics").decode(), STATEMENTS, "kind")


async def _worker_runs(
    dep: Any,
    cfg: StreamBenchConfig,
    tag: str,
    runs: dict[str, list[StreamMeasure]],
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Click bursts (with the worker's Cassandra statements), freshness runs, review bursts."""
    from recstream.lab.soak import GroupLag

    s, worker = dep.settings, dep.workers[0]
    lag = await asyncio.to_thread(GroupLag, s)
    try:
        async with Harness(s) as h:
            say(f"catalogue: uploading {cfg.items} items through the worker")
            await burst(h, [upload(i, tag) for i in range(cfg.items)], "uploads")
            warm = [click(i, tag, cfg.items, cfg.users) for i in range(cfg.users)]
            await burst(h, warm, "warm-up")  # every user has a state row before measuring
            settled = await asyncio.to_thread(wait_settled, lag)  # warm-up writes not counted
            before = await asyncio.to_thread(_statements, worker)
            stages0 = await asyncio.to_thread(_stages, worker)
            n = cfg.users
            for r in range(cfg.repeats):
                evs = [click(n + i, tag, cfg.items, cfg.users) for i in range(cfg.clicks)]
                n += cfg.clicks
                runs["click"].append(await burst(h, evs, "click path, 1 worker"))
                say(f"click path run {r + 1}: {runs['click'][-1].events_per_s:,.0f} events/s")
            stages1 = await asyncio.to_thread(_stages, worker)
            wall = sum(m.seconds for m in runs["click"])
            settled = await asyncio.to_thread(wait_settled, lag) and settled
            after = await asyncio.to_thread(_statements, worker)
            stats = statements_per_event(before, after, cfg.clicks * cfg.repeats)
            stats["cassandra_statements_settled"] = settled
            stats["profile"] = stage_profile(stages0, stages1, cfg.clicks * cfg.repeats, wall)
            say(f"click path: {stats['cassandra_statements_per_event']} Cassandra statements per event")
            for rate in fresh_rates(cfg):
                key = fresh_key(rate, cfg.rate)
                for r in range(cfg.repeats):
                    base = n

                    def make(i: int, base: int = base) -> Event:
                        return click(base + i, tag, cfg.items, cfg.users)

                    n += int(rate * cfg.fresh_seconds)
                    m = await paced(h, make, rate, cfg.fresh_seconds, f"freshness at {rate:.0f} events/s")
                    runs[key].append(m)
                    say(f"freshness at {rate:g}/s run {r + 1}: p99 {m.pct(99):.1f} ms, "
                        f"received {m.events_per_s:,.0f}/s of {rate:g}/s offered")  # fmt: skip
            for r in range(cfg.repeats):
                revs = [review(r * cfg.reviews + i, tag, cfg.items, cfg.users) for i in range(cfg.reviews)]
                runs["review"].append(await burst(h, revs, "review path (text encoder), 1 worker"))
                say(f"review path run {r + 1}: {runs['review'][-1].events_per_s:,.0f} events/s")
    finally:
        await asyncio.to_thread(lag.close)
    return stats


def _topics(settings: Settings, names: Sequence[str], create: bool) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    from streams.kafka_config import kafka_python_config

    admin = KafkaAdminClient(**kafka_python_config(settings))
    try:
        if create:
            admin.create_topics(
                [NewTopic(t, num_partitions=settings.topic_partitions, replication_factor=1) for t in names]
            )
        else:
            admin.delete_topics([t for t in names if t in set(admin.list_topics())])
    finally:
        admin.close()


def _passthrough_runs(
    dep: Any, key: str, cfg: StreamBenchConfig, tag: str, logs: Path, say: Callable[[str], None]
) -> list[StreamMeasure]:
    """A passthrough subprocess on topics of its own, warmed up, then ``cfg.repeats`` bursts."""
    args, name = PASSTHROUGHS[key]
    s = dep.settings
    src, dst = f"{s.consumer_group}.{key}.in", f"{s.consumer_group}.{key}.out"
    _topics(s, [src, dst], create=True)
    with (logs / f"{key}.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "recstream.lab.bench_stream", *args, src, dst],
            env={**os.environ, **dep.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive() -> bool:
        return proc.poll() is None

    async def measure() -> list[StreamMeasure]:
        async with Harness(s, out_topic=dst) as h:
            # Not measured: the consumer joining its group and getting its partitions.
            warm = [click(i, f"{tag}{key}", cfg.items, cfg.users) for i in range(cfg.passthrough_warmup)]
            await burst(h, warm, "warm-up", topic=src, alive=alive)
            n, out = cfg.passthrough_warmup, []
            for r in range(cfg.repeats):
                evs = [click(n + i, f"{tag}{key}", cfg.items, cfg.users) for i in range(cfg.clicks)]
                n += cfg.clicks
                out.append(await burst(h, evs, name, topic=src, alive=alive))
                say(f"{key} run {r + 1}: {out[-1].events_per_s:,.0f} events/s")
            return out

    try:
        return asyncio.run(measure())
    finally:
        if alive():
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        try:  # the Faust agent's app also made "<app id>-__assignor-__leader"
            _topics(s, [src, dst, f"{faust_app_id(src)}-__assignor-__leader"], create=False)
        except Exception as exc:  # cleanup must not hide the figures
            say(f"{key}: topics {src}, {dst} not deleted: {exc!r}")


def run_stream_benchmarks(
    settings: Settings, cfg: StreamBenchConfig, say: Callable[[str], None] = print
) -> dict[str, dict[str, Any]]:
    """Click path and its Cassandra statements, freshness at each rate, review path, passthroughs.

    Returns ``{key: summary}`` (see :func:`recstream.lab.bench.summarise`) for ``click``,
    ``passthrough``, ``faust_passthrough``, ``fresh`` (at ``cfg.rate``), ``fresh_<rate>`` (each of
    ``cfg.fresh_rates``) and ``review``; ``click`` adds the figures of
    :func:`recstream.lab.bench.statements_per_event` and ``cassandra_statements_settled``. A passthrough
    that failed is ``{"name", "error"}`` (the others are still measured).
    """
    tag = "b" + uuid.uuid4().hex[:6]
    keys = ["click", *PASSTHROUGHS, *(fresh_key(r, cfg.rate) for r in fresh_rates(cfg)), "review"]
    runs: dict[str, list[StreamMeasure]] = {k: [] for k in keys}
    errors: dict[str, str] = {}
    logs = Path(tempfile.mkdtemp(prefix="recstream-bench-"))
    with Deployment.create(
        recstream_environ(), logs, partitions=settings.topic_partitions, **WORKER_OVERRIDES
    ) as dep:
        dep.start_worker()
        stats = asyncio.run(_worker_runs(dep, cfg, tag, runs, say))
        for key in PASSTHROUGHS:
            try:
                runs[key] = _passthrough_runs(dep, key, cfg, tag, logs, say)
            except Exception as exc:  # one baseline failing must not discard the others
                errors[key] = f"{exc!r} (log: {logs / f'{key}.log'})"
                say(f"{key} failed: {errors[key]}")
    out: dict[str, dict[str, Any]] = {}
    for key in keys:
        if runs[key]:
            out[key] = summarise(runs[key])
        elif key in errors:
            out[key] = {"name": PASSTHROUGHS[key][1], "error": errors[key]}
    out["click"].update(stats)
    return out


def passthrough_main(argv: list[str] | None = None) -> int:
    """``python -m recstream.lab.bench_stream [--faust] SRC DST``: run a passthrough until killed."""
    from recstream.settings import load_settings

    p = argparse.ArgumentParser(prog="python -m recstream.lab.bench_stream")
    p.add_argument("--faust", action="store_true", help="a Faust agent instead of bare aiokafka")
    p.add_argument("src")
    p.add_argument("dst")
    args = p.parse_args(argv)
    if args.faust:
        faust_passthrough(load_settings(), args.src, args.dst)
    else:
        asyncio.run(passthrough(load_settings(), args.src, args.dst, asyncio.Event()))
    return 0


if __name__ == "__main__":
    raise SystemExit(passthrough_main())
