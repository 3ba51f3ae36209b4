"""The prequential ("test, then train") protocol: which events are scored, and how.

Pure bookkeeping, no model: the runner feeds every event, in stream order, first to
:meth:`Protocol.check` (before the event is applied anywhere) and then to :meth:`Protocol.apply`.

**Scorable event** (the definition that reproduces the 19,877 events of the shared
``movielens-small`` reference with ``cut=0.8``):

* a click (a MovieLens rating) whose interaction ``order`` is ``>= ml.cut_order(cut)``: the last
  ``1 - cut`` of the ratings in time order, ties in time keeping file order;
* whose user already had an event of any type (so a list had been published for them: the one
  triggered by that previous event);
* whose item the user had not clicked before. Only clicks make an item "had"; a review of an
  item does not (on the shared data no user rates the same movie twice, so this condition
  removes nothing there, and the 68 ratings of an item the user tagged earlier stay scorable).

Reviews and uploads are never scored. A scored event is a hit at 0-based ``rank`` when the item
is at that position of the list; ``HR@K`` is the fraction of hits in the top ``K`` and
``NDCG@K`` the mean of ``1 / log2(rank + 2)`` over hits (one relevant item, so IDCG = 1).
The cold-start slice holds scored events whose item had fewer than :data:`COLD_ITEM_MAX`
interactions (clicks and reviews by anyone) before the event.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from recstream.lab.datasets import MovieLens
from recstream.lab.replay import movielens_events
from schemas.events import ClickEvent, Event, UploadEvent

#: An item with fewer prior interactions than this is "cold" when scored.
COLD_ITEM_MAX = 5


def event_order(event: Event, next_order: int) -> int:
    """Interaction ``order`` of a replayed MovieLens event.

    Clicks and reviews carry it in their id (``ml-click-{order}``, ``ml-review-{order}``, see
    :func:`recstream.lab.replay.movielens_events`); an upload is emitted just before the first
    interaction with its item and takes that interaction's order (``next_order``).
    """
    if isinstance(event, UploadEvent):
        return next_order
    return int(event.event_id.rsplit("-", 1)[1])


def ordered_events(ml: MovieLens) -> Iterator[tuple[int, Event]]:
    """``(order, event)`` for every event of :func:`recstream.lab.replay.movielens_events`."""
    orders = iter(i.order for i in ml.interactions)
    pending = next(orders, 0)
    for ev in movielens_events(ml):
        order = event_order(ev, pending)
        if not isinstance(ev, UploadEvent):
            pending = next(orders, order + 1)
        yield order, ev


def rank_of(items: Sequence[str], target: str) -> int | None:
    """0-based position of ``target`` in ``items``, None when absent."""
    try:
        return list(items).index(target)
    except ValueError:
        return None


def hit_at(rank: int | None, k: int) -> float:
    """1.0 when ``rank`` is within the top ``k``, else 0.0."""
    return 1.0 if rank is not None and rank < k else 0.0


def ndcg_at(rank: int | None, k: int) -> float:
    """NDCG@k of one event with a single relevant item at ``rank`` (0 when outside the top k)."""
    return 1.0 / math.log2(rank + 2) if rank is not None and rank < k else 0.0


@dataclass(frozen=True, slots=True)
class Scored:
    """A scorable event and its slices.

    Attributes:
        event: The click.
        order: Its interaction order.
        cold_item: The item had fewer than :data:`COLD_ITEM_MAX` interactions before it.
        warm_user: The user had an event before the cut.
    """

    event: ClickEvent
    order: int
    cold_item: bool
    warm_user: bool


class Protocol:
    """Tracks what the protocol needs: users' previous events, clicked items, item counts.

    Args:
        cut_order: First interaction order that is scored (``ml.cut_order(cut)``).
    """

    def __init__(self, cut_order: int) -> None:
        self.cut_order = cut_order
        self.active: set[str] = set()
        self.warm_users: set[str] = set()
        self.had: dict[str, set[str]] = defaultdict(set)
        self.history: dict[str, list[str]] = defaultdict(list)
        self.item_interactions: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self.after_cut: Counter[str] = Counter()

    def check(self, order: int, event: Event) -> Scored | None:
        """The event's :class:`Scored` record when it is scorable (call before :meth:`apply`)."""
        if not isinstance(event, ClickEvent) or order < self.cut_order:
            return None
        user = event.user_id
        if user not in self.active or event.item_id in self.had[user]:
            return None
        return Scored(
            event,
            order,
            cold_item=self.item_interactions[event.item_id] < COLD_ITEM_MAX,
            warm_user=user in self.warm_users,
        )

    def apply(self, order: int, event: Event) -> None:
        """Record the event (after it was scored and applied to the systems)."""
        self.counts[event.type] += 1
        if order >= self.cut_order:
            self.after_cut[event.type] += 1
        user = event.user_id
        self.active.add(user)
        if order < self.cut_order:
            self.warm_users.add(user)
        if isinstance(event, UploadEvent):
            return
        self.item_interactions[event.item_id] += 1
        if isinstance(event, ClickEvent) and event.item_id not in self.had[user]:
            self.had[user].add(event.item_id)
            self.history[user].append(event.item_id)


@dataclass(slots=True)
class Tally:
    """Hits and gains of one system over the scored events, with slices and a hit series."""

    n: int = 0
    hits: float = 0.0
    gain: float = 0.0
    slices: dict[str, list[float]] = field(default_factory=dict)  # name -> [n, hits, gain]
    series: list[float] = field(default_factory=list)

    def add(self, rank: int | None, k: int, scored: Scored) -> None:
        """Count one scored event whose item was at ``rank`` of the system's list."""
        h, g = hit_at(rank, k), ndcg_at(rank, k)
        self.n += 1
        self.hits += h
        self.gain += g
        self.series.append(h)
        names = ["cold_item" if scored.cold_item else "warm_item"]
        names.append("warm_user" if scored.warm_user else "new_user")
        for name in names:
            acc = self.slices.setdefault(name, [0, 0.0, 0.0])
            acc[0] += 1
            acc[1] += h
            acc[2] += g

    def figures(self, k: int) -> dict[str, float | int]:
        """``hr@k``, ``ndcg@k``, ``cold_hr@k``, ``cold_ndcg@k``, counts and the other slices."""
        out: dict[str, float | int] = {
            f"hr@{k}": self.hits / self.n if self.n else 0.0,
            f"ndcg@{k}": self.gain / self.n if self.n else 0.0,
            "events": self.n,
        }
        for name in ("cold_item", "warm_item", "warm_user", "new_user"):
            n, h, g = self.slices.get(name, [0, 0.0, 0.0])
            prefix = "cold" if name == "cold_item" else name
            out[f"{prefix}_hr@{k}"] = h / n if n else 0.0
            out[f"{prefix}_ndcg@{k}"] = g / n if n else 0.0
            out[f"{prefix}_events"] = int(n)
        return out
