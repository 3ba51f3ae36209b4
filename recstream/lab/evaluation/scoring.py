"""The scoring pass shared by both evaluation modes.

:class:`ScorePass` is fed every event in stream order, twice: :meth:`ScorePass.before` scores a
scorable click against each system's list for the user (recstream: the list published for the
user's previous event; the frozen state; the baselines on the user's fresh history), then
:meth:`ScorePass.after` records the list the event itself triggered and shows the event to the
baselines and the protocol. How the recstream list is obtained is the mode's business: the
in-process mode calls the processor between the two calls, the pipeline mode looks the list up
among those the workers published.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import Protocol as TypingProtocol

from recstream.lab.evaluation.baselines import Baseline, UserHistory
from recstream.lab.evaluation.protocol import Protocol, Tally, rank_of
from schemas.events import ClickEvent, Event
from streams.retrieval.base import ItemIndex
from streams.state.base import UserState
from streams.trending import Trending


class FrozenSystem(TypingProtocol):
    """Lists from user states frozen at the cut."""

    def recommend(self, user: str, k: int, exclude: set[str]) -> list[str]:
        """Top-``k`` item ids for ``user``, none of ``exclude``."""
        ...


def frozen_list(
    states: dict[str, UserState], trending: Trending, index: ItemIndex, user: str, k: int, exclude: set[str]
) -> list[str]:
    """The list from ``user``'s frozen state over ``index`` (frozen trending without a state)."""
    st = states.get(user)
    emb = None if st is None else st.embedding
    if emb is None:
        return [i for i, _ in trending.top(k, exclude)]
    return [i for i, _ in index.search(emb[None, :], k, [exclude])[0]]


class ScorePass:
    """Tallies of every system over the scorable events.

    Args:
        cut_order: First scored interaction order.
        k: List length.
        baselines: Baselines by name (already fitted on the data before the cut).
        frozen: The ``recstream_frozen`` system.
        clock: Timer for the per-system time spent.
    """

    def __init__(
        self,
        cut_order: int,
        k: int,
        baselines: dict[str, Baseline],
        frozen: FrozenSystem,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.k = k
        self.proto = Protocol(cut_order)
        self.baselines = baselines
        self.frozen = frozen
        self.clock = clock
        names = ["recstream", "recstream_frozen", *baselines]
        self.tallies = {n: Tally() for n in names}
        self.spent = dict.fromkeys(names, 0.0)
        self.published: dict[str, list[str]] = {}
        self.seen: dict[str, set[str]] = defaultdict(set)  # every item of the user's events
        self.scored_ts: list[int] = []
        self.scored_lists: dict[str, list[str]] = {}  # scored event id -> recstream list used
        self.missing_lists = 0

    def event_counts(self) -> dict[str, dict[str, int]]:
        """Events per type (``all``, ``after_cut``) and scored events per type (clicks only)."""
        return {
            "all": dict(self.proto.counts),
            "after_cut": dict(self.proto.after_cut),
            "scored": {"click": self.tallies["recstream"].n, "review": 0, "upload": 0},
        }

    def before(self, order: int, ev: Event) -> None:
        """Score ``ev`` if the protocol says it is scorable (before it is applied anywhere)."""
        sc = self.proto.check(order, ev)
        if sc is None:
            return
        assert isinstance(ev, ClickEvent)
        user, k = ev.user_id, self.k
        self.scored_ts.append(ev.ts)
        recs = self.published.get(user, [])
        self.scored_lists[ev.event_id] = recs
        self.tallies["recstream"].add(rank_of(recs, ev.item_id), k, sc)
        t = self.clock()
        frozen = self.frozen.recommend(user, k, self.seen[user])
        self.spent["recstream_frozen"] += self.clock() - t
        self.tallies["recstream_frozen"].add(rank_of(frozen, ev.item_id), k, sc)
        history = UserHistory(user, self.proto.history[user])
        for name, b in self.baselines.items():
            t = self.clock()
            items = b.recommend(history, k, self.proto.had[user])
            self.spent[name] += self.clock() - t
            self.tallies[name].add(rank_of(items, ev.item_id), k, sc)

    def after(self, order: int, ev: Event, recs: list[str] | None) -> None:
        """Record the list ``ev`` triggered (``None``: none arrived) and apply ``ev``."""
        if recs is None:
            self.missing_lists += 1
            recs = []
        self.published[ev.user_id] = recs
        self.seen[ev.user_id].add(ev.item_id)
        for b in self.baselines.values():
            b.observe(ev)
        self.proto.apply(order, ev)
