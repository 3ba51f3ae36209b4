"""The in-process evaluation runner: the real :class:`~streams.processor.Processor` over the
same model code Triton serves (:class:`~serving.client.inprocess.InProcessClient`), a
:class:`~streams.state.memory.MemoryStateStore` and the exact index, fed one event at a time.

Every event of :func:`recstream.lab.replay.movielens_events` is, in order: checked by the protocol
(:mod:`recstream.lab.evaluation.protocol`); when scorable, scored against the list each system holds
for the user just before it (recstream: the list the processor published for the user's previous
event); then applied to the processor and shown to the baselines. Batches of one event are what
makes "the list published just before" exact: a bigger batch adds its uploads and trending
counts before any of its lists is computed.

``recstream_frozen`` is recstream with the user states (and the trending list for users without
a state) frozen at the cut: its list is computed at scoring time from the frozen state against
the live catalogue, excluding the items the user has had by then (the live state's ``seen``).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from recstream.lab.datasets import MovieLens
from recstream.lab.evaluation.baselines import Baseline, default_baselines
from recstream.lab.evaluation.client import PrecomputedClient
from recstream.lab.evaluation.protocol import Tally, ordered_events
from recstream.lab.evaluation.scoring import ScorePass, frozen_list
from recstream.settings import Settings
from schemas.events import Event
from serving.pipelines import meta_of
from streams.processor import Incoming, Processor, ProcessorDeps
from streams.state.base import UserState
from streams.trending import Trending

#: Systems of a run, in report order.
SYSTEMS = ("recstream", "recstream_frozen", "popularity", "itemknn", "ease")


class LeakError(ValueError):
    """The model was trained on data at or after the evaluation cut."""


def check_trained_before_cut(meta: dict[str, Any], cut_frac: float, cut_order: int, dataset: str) -> None:
    """Refuse a model whose training data reaches past the cut.

    Args:
        meta: The artefact's ``meta.json``.
        cut_frac: Evaluation cut (fraction of ratings).
        cut_order: ``ml.cut_order(cut_frac)``.
        dataset: ``--dataset`` value, for the hint.

    Raises:
        LeakError: ``trained_until_order`` is missing or above ``cut_order``, or the artefact's
            ``cut_frac`` differs from ``cut_frac``.
    """
    hint = f"train one with `recstream train --dataset {dataset} --until-frac {cut_frac}`"
    trained = meta.get("trained_until_order")
    if trained is None or int(trained) > cut_order:
        raise LeakError(
            f"model {meta.get('model_version', '?')} was trained until interaction order {trained}, "
            f"after the evaluation cut (order {cut_order}, --cut {cut_frac}): it has seen the test "
            f"events; {hint}"
        )
    frac = meta.get("cut_frac")
    if frac is None or not math.isclose(float(frac), cut_frac, abs_tol=1e-9):
        raise LeakError(
            f"model {meta.get('model_version', '?')} was trained with cut_frac={frac}, the "
            f"evaluation uses --cut {cut_frac}; {hint}"
        )


@dataclass(slots=True)
class RunResult:
    """What a run measured (the report is built from it).

    Attributes:
        k: List length.
        tallies: Per system, hits over the scored events.
        event_counts: Events per type (``all``, ``after_cut``) and scored clicks.
        scored_ts: Event time (epoch ms) of each scored event, in order.
        timings: Seconds per phase and per system.
        model: Model version, artefact folder, cut and user-state settings used.
        scored_lists: The recstream list each scored event was scored against, by event id
            (the parity check compares them across modes).
    """

    k: int
    tallies: dict[str, Tally]
    event_counts: dict[str, dict[str, int]]
    scored_ts: list[int] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    scored_lists: dict[str, list[str]] = field(default_factory=dict)


class _Frozen:
    """Lists from user states and trending counts frozen at the cut."""

    def __init__(self, processor: Processor) -> None:
        self.processor = processor
        self.states: dict[str, UserState] | None = None
        self.trending: Trending | None = None

    def freeze(self, users: dict[str, UserState]) -> None:
        self.states = dict(users)  # states are immutable: a shallow copy is a snapshot
        self.trending = copy.deepcopy(self.processor.trending)

    def recommend(self, user: str, k: int, exclude: set[str]) -> list[str]:
        assert self.states is not None and self.trending is not None
        return frozen_list(self.states, self.trending, self.processor.index, user, k, exclude)


async def run_inprocess(
    ml: MovieLens,
    artefact: Path,
    settings: Settings,
    *,
    cut_frac: float = 0.8,
    dataset_arg: str = "",
    baselines: dict[str, Baseline] | None = None,
    progress: bool = True,
    known_text: dict[str, np.ndarray] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    events: Sequence[tuple[int, Event]] | None = None,
    cut_order: int | None = None,
    check_leak: bool = True,
) -> RunResult:
    """Replay ``ml`` through the processor and the baselines; score the scorable clicks.

    Args:
        ml: Dataset.
        artefact: Fusion artefact folder trained before the cut.
        settings: Settings (``k`` is the list length; the artefact's ``user_state`` decay and
            click weight replace the settings' values, so the state matches training).
        cut_frac: Fraction of ratings before the cut.
        dataset_arg: ``movielens:DIR`` as given (error hints).
        baselines: Baselines to run (default: popularity, item-kNN and EASE fitted here).
        progress: Show tqdm bars.
        known_text: Text embeddings by exact text, computed by the same encoder (see
            :class:`~recstream.lab.evaluation.client.PrecomputedClient`).
        clock: Timer for the timings.
        events: Replay only these ``(order, event)`` (a slice, for the parity test); default
            every event of ``ml``.
        cut_order: First scored order (default ``ml.cut_order(cut_frac)``).
        check_leak: Refuse a model trained past the cut (only the parity test of an untrained
            model turns it off: it compares modes, not quality).

    Raises:
        LeakError: The model was trained past the cut.
    """
    from serving.client.inprocess import InProcessClient
    from streams.retrieval import make_index
    from streams.state.memory import MemoryStateStore

    cut = ml.cut_order(cut_frac) if cut_order is None else cut_order
    meta = meta_of(artefact)
    if check_leak:
        check_trained_before_cut(meta, cut_frac, cut, dataset_arg or f"movielens:{ml.path}")
    policy = meta.get("user_state") or {}
    settings = settings.model_copy(
        update={
            "decay_tau_s": float(policy.get("tau_s", settings.decay_tau_s)),
            "weight_click": float(policy.get("weight_click", settings.weight_click)),
            "ann_backend": "exact",
        }
    )
    k = settings.k
    timings: dict[str, float] = {}
    t0 = clock()
    events = list(ordered_events(ml)) if events is None else list(events)
    timings["events_s"] = clock() - t0

    t0 = clock()
    if baselines is None:
        baselines = default_baselines(events, cut)
    timings["baselines_fit_s"] = clock() - t0

    t0 = clock()
    # The text encoder the served model runs with the same settings: identical review vectors.
    client = PrecomputedClient(
        InProcessClient(artefact, text_encoder=settings.text_encoder, cache_dir=settings.cache_dir)
    )
    await client.warm([e for _, e in events], known_text)
    info = await client.model_info()
    timings["models_warm_s"] = clock() - t0
    store = MemoryStateStore()
    index = make_index("exact", info.out_dim)
    processor = Processor(settings, ProcessorDeps(client=client, store=store, index=index, model=info))
    frozen = _Frozen(processor)
    sp = ScorePass(cut, k, baselines, frozen, clock)

    t_run = clock()
    for order, ev in tqdm(events, disable=not progress, desc="eval", unit="ev", mininterval=2.0):
        if frozen.states is None and order >= cut:
            frozen.freeze(processor.cache.snapshots())
        sp.before(order, ev)
        t = clock()
        out = await processor.process([Incoming(ev)])
        sp.spent["recstream"] += clock() - t
        sp.after(order, ev, [item for item, _ in out[0].items])
    timings["replay_s"] = clock() - t_run
    await client.close()
    timings.update({f"{n}_s": v for n, v in sp.spent.items()})
    counts = sp.event_counts()
    model = {
        "artefact": str(artefact),
        "model_version": info.version,
        "trained_until_order": meta.get("trained_until_order"),
        "trained_until_ts": meta.get("trained_until_ts"),
        "cut_frac": cut_frac,
        "cut_order": cut,
        "cut_ts": ml.cut_ts(cut_frac),
        "decay_tau_s": settings.decay_tau_s,
        "weight_click": settings.weight_click,
        "weight_review": settings.weight_review,
        "rating_power": info.rating_power,
        "memo_hits": client.hits,
        "memo_misses": client.misses,
    }
    return RunResult(k, sp.tallies, counts, sp.scored_ts, timings, model, sp.scored_lists)
