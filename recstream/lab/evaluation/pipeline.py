"""Pipeline-mode evaluation: the events go through Kafka, real workers, Triton and Cassandra.

:func:`drive` produces every event of the replay to its topic and reads ``recs.updated`` with an
independent consumer (:class:`recstream.testing.ListCollector`), pairing each list with its event
by ``trigger_event_id`` (no timing assumptions). The protocol scores a click against the list the
system published for the same user's previous event, so the driver keeps, without waiting on the
clock, the orderings that define "previous":

* a user's events on one topic stay in order (one partition per user key);
* before a user's event on another topic than their previous one, the previous one's list must
  be back (the worker's agents consume topics independently);
* an upload is a barrier: every earlier event's list is back before it is produced, and its own
  list before anything later, so each list sees exactly the catalogue of its moment.

At the cut the driver waits for every list and snapshots the user states from Cassandra (for
``recstream_frozen``). :func:`score_pipeline` then runs the same scoring pass as the in-process
mode over the collected lists.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from recstream.lab.datasets import MovieLens
from recstream.lab.evaluation.baselines import Baseline, default_baselines
from recstream.lab.evaluation.inprocess import RunResult, check_trained_before_cut
from recstream.lab.evaluation.protocol import ordered_events
from recstream.lab.evaluation.scoring import ScorePass, frozen_list
from recstream.settings import Settings
from recstream.testing import AsyncEventProducer, Deployment, ListCollector, recstream_environ
from schemas.events import Event, UploadEvent
from serving.client.base import FusionInfo
from serving.pipelines import meta_of
from streams.errors import StreamError
from streams.retrieval.exact import ExactIndex
from streams.state.base import ItemRecord, UserState
from streams.trending import Trending

if TYPE_CHECKING:
    from streams.state.cassandra import CassandraStateStore


class PipelineEvalError(StreamError):
    """The pipeline did not return a list for some events in time (message names them)."""


@dataclass(slots=True)
class Drive:
    """What the pipeline published during a replay.

    Attributes:
        lists: Item ids of the list each event triggered, by event id.
        model_versions: Model versions seen on the lists.
        frozen_states: User states read from Cassandra once every event before the cut was
            processed.
        items: The catalogue in Cassandra at the end (item embeddings for the frozen lists).
        seconds: Wall time of the replay.
        barriers: Times the driver waited for lists (uploads, topic switches, the cut).
    """

    lists: dict[str, list[str]] = field(default_factory=dict)
    model_versions: set[str] = field(default_factory=set)
    frozen_states: dict[str, UserState] = field(default_factory=dict)
    items: list[ItemRecord] = field(default_factory=list)
    seconds: float = 0.0
    barriers: int = 0


async def drive(
    events: Sequence[tuple[int, Event]],
    settings: Settings,
    cut_order: int,
    *,
    progress: bool = True,
    timeout_s: float = 180.0,
) -> Drive:
    """Produce ``events`` to a running deployment and collect its lists.

    Args:
        events: ``(order, event)`` in stream order
            (:func:`~recstream.lab.evaluation.protocol.ordered_events`).
        settings: The deployment's settings (its topics and keyspace; workers already running).
        cut_order: First scored interaction order; states are snapshotted before it.
        progress: Show a tqdm bar.
        timeout_s: Longest wait for an awaited list (progress resets it).

    Raises:
        PipelineEvalError: An awaited list did not arrive in ``timeout_s``.
    """
    from streams.state.cassandra import CassandraStateStore

    # A redelivered event publishes its list again; the state is not applied twice, and the list
    # is recomputed from the same state, so the first copy (the collector's) stands.
    async with (
        ListCollector(settings, keep="items") as got,
        AsyncEventProducer(settings, linger_ms=2) as producer,
    ):
        pending: set[str] = set()  # events sent, their lists not yet seen back

        async def back(ids: Iterable[str], what: str) -> None:
            """Until the lists of ``ids`` are back (else :class:`PipelineEvalError`)."""
            missing = await got.wait_for_async(ids, timeout_s)
            pending.difference_update([i for i in pending if i in got])
            if missing:
                raise PipelineEvalError(
                    f"no list after {timeout_s:.0f} s while waiting for {what}; "
                    f"{len(pending)} outstanding, e.g. {sorted(pending)[:10]}"
                )

        out = Drive()
        last: dict[str, tuple[str, str]] = {}  # user -> (event id, topic) of their previous event
        users: set[str] = set()
        sent: dict[str, int] = {}  # events sent per user
        t0 = time.monotonic()
        snapped = False
        for order, ev in tqdm(events, disable=not progress, desc="pipeline", unit="ev", mininterval=2.0):
            if not snapped and order >= cut_order:
                await back(pending, "the cut")
                out.frozen_states = await _snapshot(
                    CassandraStateStore.open(settings), users, dict(sent), timeout_s
                )
                snapped = True
                out.barriers += 1
            topic = settings.event_topics[ev.type]
            prev = last.get(ev.user_id)
            if isinstance(ev, UploadEvent):
                await back(pending, f"lists before {ev.event_id}")
                out.barriers += 1
            elif prev is not None and prev[1] != topic and prev[0] not in got:
                await back([prev[0]], prev[0])
                out.barriers += 1
            pending.add(ev.event_id)
            sent[ev.user_id] = sent.get(ev.user_id, 0) + 1
            await producer.send(ev)
            last[ev.user_id] = (ev.event_id, topic)
            users.add(ev.user_id)
            if isinstance(ev, UploadEvent):
                await producer.flush()
                await back([ev.event_id], ev.event_id)
        await producer.flush()
        await back(pending, "the last lists")
        out.seconds = time.monotonic() - t0
        store = CassandraStateStore.open(settings)
        try:
            out.items = await store.load_items()
        finally:
            await store.close()
    out.lists = {t: list(a.items) for t, a in got.first.items()}
    out.model_versions = set(got.model_versions)
    return out


async def _snapshot(
    store: CassandraStateStore, users: set[str], applied: dict[str, int], timeout_s: float
) -> dict[str, UserState]:
    """Every known user's state, read from ``store`` (closed afterwards).

    Workers write states behind (at their next checkpoint, within ``commit_interval_s``): read
    until every user's stored event count is the number of events sent for them.
    """
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            states = await store.get_users(sorted(users))  # the store reads in chunks
            behind = [u for u, n in applied.items() if (st := states.get(u)) is None or st.event_count < n]
            if not behind or time.monotonic() > deadline:
                return states
            await asyncio.sleep(0.2)
    finally:
        await store.close()


class SnapshotFrozen:
    """``recstream_frozen`` from user states read at the cut, over the live catalogue.

    The catalogue grows as the scoring pass sees each upload (:meth:`observe`); users without a
    state at the cut get the trending items as they were at the cut.
    """

    def __init__(self, states: dict[str, UserState], items: Sequence[ItemRecord], dim: int) -> None:
        self.states = states
        self.vectors = {it.item_id: it.embedding for it in items}
        self.index = ExactIndex(dim)
        self.trending = Trending()

    def observe(self, ev: Event, before_cut: bool) -> None:
        """Follow the stream: uploads join the catalogue, clicks before the cut count as trending."""
        if isinstance(ev, UploadEvent):
            vec = self.vectors.get(ev.item_id)
            if vec is not None:
                self.index.upsert([ev.item_id], np.asarray(vec, dtype=np.float32)[None, :])
        elif ev.type == "click" and before_cut:
            self.trending.add(ev.item_id, ev.ts)

    def recommend(self, user: str, k: int, exclude: set[str]) -> list[str]:
        """The list from the user's state at the cut (trending at the cut without one)."""
        return frozen_list(self.states, self.trending, self.index, user, k, exclude)


def served_artefact(settings: Settings, version: str, scratch: Path) -> Path:
    """The artefact folder of the fusion model version Triton serves.

    Looked up in the local Triton model repository (where served versions are staged, hot-swapped
    ones included), then in ``model_dir``; the untrained fallback is re-created in ``scratch``
    (it is seeded, so it equals the served one).

    Raises:
        PipelineEvalError: No artefact with that version is found.
    """
    from serving.pipelines import UNTRAINED_VERSION, write_untrained

    repo = settings.stack_dir / "triton" / "model_repository" / "fusion"
    for meta in [
        *sorted(repo.glob("*/artefact/meta.json")),
        *sorted((settings.model_dir / "fusion").glob("*/meta.json")),
    ]:
        if json.loads(meta.read_text()).get("model_version") == version:
            return meta.parent
    if version == UNTRAINED_VERSION:
        return write_untrained(scratch / "untrained")
    raise PipelineEvalError(f"Triton serves {version}, found neither in {repo} nor in {settings.model_dir}")


async def served_info(settings: Settings) -> FusionInfo:
    """What the running Triton serves as ``fusion``."""
    from serving.client.triton import TritonClient

    async with TritonClient(settings.triton_grpc_url, timeout_s=settings.triton_timeout_s) as client:
        return await client.model_info()


async def run_pipeline(
    ml: MovieLens,
    artefact: Path,
    settings: Settings,
    *,
    cut_frac: float = 0.8,
    dataset_arg: str = "",
    baselines: dict[str, Baseline] | None = None,
    progress: bool = True,
    workers: int = 1,
    clock: Callable[[], float] = time.perf_counter,
    events: Sequence[tuple[int, Event]] | None = None,
    cut_order: int | None = None,
    check_leak: bool = True,
) -> RunResult:
    """Replay ``ml`` through an isolated deployment on the running stack, then score.

    Arguments as :func:`~recstream.lab.evaluation.inprocess.run_inprocess`, plus ``workers`` (worker
    processes sharing the partitions). Triton must serve ``artefact`` (same model version).

    Raises:
        LeakError: The model was trained past the cut.
        PipelineEvalError: Triton serves another model, or lists did not come back.
    """
    cut = ml.cut_order(cut_frac) if cut_order is None else cut_order
    meta = meta_of(artefact)
    if check_leak:
        check_trained_before_cut(meta, cut_frac, cut, dataset_arg or f"movielens:{ml.path}")
    info = await served_info(settings)
    if info.version != meta.get("model_version", info.version):
        raise PipelineEvalError(
            f"Triton serves {info.version} but --model is {meta.get('model_version')}; serve it "
            f"(`recstream stack down && RECSTREAM_MODEL_DIR=<dir with it as the latest> recstream "
            f"stack up`) or evaluate the served one"
        )
    timings: dict[str, float] = {}
    t0 = clock()
    events = list(ordered_events(ml)) if events is None else list(events)
    if baselines is None:
        baselines = default_baselines(events, cut)
    timings["baselines_fit_s"] = clock() - t0
    policy = meta.get("user_state") or {}
    # The same user-state policy as the in-process mode: the model's, set explicitly.
    overrides = {
        "RECSTREAM_K": str(settings.k),
        "RECSTREAM_DECAY_TAU_S": str(float(policy.get("tau_s", settings.decay_tau_s))),
        "RECSTREAM_WEIGHT_CLICK": str(float(policy.get("weight_click", settings.weight_click))),
        "RECSTREAM_ANN_BACKEND": "exact",
        "RECSTREAM_LOG_LEVEL": "WARNING",
    }
    t0 = clock()
    logs = Path(tempfile.mkdtemp(prefix="recstream-eval-"))
    partitions = settings.topic_partitions
    with Deployment.create(recstream_environ(), logs, partitions=partitions, **overrides) as dep:
        for _ in range(workers):
            dep.start_worker()
        timings["deploy_s"] = clock() - t0
        d = await drive(events, dep.settings, cut, progress=progress)
    timings["replay_s"] = d.seconds
    frozen = SnapshotFrozen(d.frozen_states, d.items, info.out_dim)
    sp = ScorePass(cut, settings.k, baselines, frozen, clock)
    for order, ev in events:
        sp.before(order, ev)
        sp.after(order, ev, d.lists.get(ev.event_id))
        frozen.observe(ev, order < cut)
    timings.update({f"{n}_s": v for n, v in sp.spent.items() if n != "recstream"})
    counts = sp.event_counts()
    model = {
        "artefact": str(artefact),
        "model_version": info.version,
        "list_model_versions": sorted(d.model_versions),
        "trained_until_order": meta.get("trained_until_order"),
        "cut_frac": cut_frac,
        "cut_order": cut,
        "decay_tau_s": float(overrides["RECSTREAM_DECAY_TAU_S"]),
        "weight_click": float(overrides["RECSTREAM_WEIGHT_CLICK"]),
        "workers": workers,
        "barriers": d.barriers,
        "lists_received": len(d.lists),
        "events_without_list": sp.missing_lists,
        "events_per_s": len(events) / d.seconds if d.seconds else 0.0,
    }
    return RunResult(settings.k, sp.tallies, counts, sp.scored_ts, timings, model, sp.scored_lists)


def parity(a: RunResult, b: RunResult) -> dict[str, float | int]:
    """How far two runs of recstream (e.g. in-process and pipeline) agree on the same events.

    Returns:
        ``hr_diff`` (absolute HR@K difference), ``identical_lists`` (fraction of scored events
        whose list is the same, in the same order, in both runs), ``events`` compared, and
        ``only_one`` (scored events present in a single run: must be 0).
    """
    k = a.k
    ha = float(a.tallies["recstream"].figures(k)[f"hr@{k}"])
    hb = float(b.tallies["recstream"].figures(k)[f"hr@{k}"])
    common = a.scored_lists.keys() & b.scored_lists.keys()
    same = sum(a.scored_lists[e] == b.scored_lists[e] for e in common)
    return {
        "hr_diff": abs(ha - hb),
        "identical_lists": same / len(common) if common else 0.0,
        "events": len(common),
        "only_one": len(a.scored_lists.keys() ^ b.scored_lists.keys()),
    }
