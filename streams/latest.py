"""What this worker last published: each user's latest list (bounded LRU) and list freshness.

:func:`record_published` is the runtime's hook, called once per batch right after the broker
has acknowledged the batch's lists. It remembers the newest list of every user (the ops page
shows it with item titles) and feeds the freshness of every list (event time to published) into
the sliding window the ops page reports percentiles of. Both are process-wide, like the
Prometheus registry: one worker per process.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from streams.window import SampleWindow

if TYPE_CHECKING:
    from streams.processor import Outcome

#: Users whose latest list a worker keeps (about 1-2 kB each with K = 20).
MAX_USERS = 10_000


@dataclass(frozen=True, slots=True)
class LatestList:
    """One published list, as the ops page shows it.

    Attributes:
        user_id: The user.
        items: ``(item_id, score)`` pairs, best first.
        trigger_event_id: The event whose processing produced the list.
        event_type: ``click``, ``upload`` or ``review``.
        model_version: Model that produced the embeddings.
        generated_at: When the list was computed (epoch ms).
        published_at: When the broker acknowledged it (epoch s).
    """

    user_id: str
    items: tuple[tuple[str, float], ...]
    trigger_event_id: str
    event_type: str
    model_version: str
    generated_at: int
    published_at: float


class LatestLists:
    """A bounded map user id -> :class:`LatestList`; the least recently published user goes first.

    Args:
        max_users: Users kept at most.
    """

    def __init__(self, max_users: int = MAX_USERS) -> None:
        if max_users < 1:
            raise ValueError("max_users must be at least 1")
        self.max_users = max_users
        self._lists: OrderedDict[str, LatestList] = OrderedDict()

    def put(self, latest: LatestList) -> None:
        """Store ``latest`` as its user's newest list, evicting the stalest user when full."""
        self._lists[latest.user_id] = latest
        self._lists.move_to_end(latest.user_id)
        while len(self._lists) > self.max_users:
            self._lists.popitem(last=False)

    def get(self, user_id: str) -> LatestList | None:
        """The newest list published for ``user_id`` by this worker, if still kept."""
        return self._lists.get(user_id)

    def __len__(self) -> int:
        return len(self._lists)


LISTS = LatestLists()
FRESHNESS = SampleWindow()


def record_published(
    outcomes: Sequence[Outcome],
    published_s: float,
    *,
    model_version: str = "",
    lists: LatestLists = LISTS,
    freshness: SampleWindow = FRESHNESS,
    now: float | None = None,
) -> None:
    """Remember a published batch (the runtime's hook).

    Args:
        outcomes: The batch's outcomes, in publishing order (a user's later list wins).
        published_s: Wall-clock time (epoch s) at which the broker acknowledged the lists.
        model_version: Model that produced the lists.
        lists: Store of latest lists (default: the process-wide one).
        freshness: Window of freshness samples in seconds (default: the process-wide one).
        now: Monotonic time of the samples (default ``time.monotonic()``).
    """
    last: dict[str, Outcome] = {}
    for o in outcomes:
        last[o.event.user_id] = o
    for o in last.values():
        lists.put(
            LatestList(
                user_id=o.event.user_id,
                items=o.items,
                trigger_event_id=o.event.event_id,
                event_type=o.event.type,
                model_version=model_version,
                generated_at=o.generated_at,
                published_at=published_s,
            )
        )
    freshness.add(
        time.monotonic() if now is None else now,
        (max(0.0, published_s - o.event.ts / 1000.0) for o in outcomes),
    )
