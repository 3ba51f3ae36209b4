"""The consumer's rule for ``recs.updated``: apply a user's list only if its ``seq`` is higher.

Lists may arrive twice (at-least-once) or out of date (a worker that lost its partitions);
``seq`` is the user's applied-event count when the list was computed (schemas/COMPATIBILITY.md,
"What a consumer of recs.updated may assume"). :class:`LatestLists` is that rule for Python
consumers, and the reference the contract's test replays lists through.
"""

from __future__ import annotations

from collections.abc import Iterator

from schemas.events import RecsUpdated


def supersedes(incoming: RecsUpdated, current: RecsUpdated | None) -> bool:
    """Whether ``incoming`` should replace ``current`` (the user's list applied so far).

    Higher ``seq`` wins; equal or lower is a duplicate or stale. Lists without ``seq`` (older
    workers) fall back to ``generated_at``; a list with ``seq`` beats one without.
    """
    if current is None:
        return True
    if incoming.seq is not None and current.seq is not None:
        return incoming.seq > current.seq
    if incoming.seq is not None:
        return True
    if current.seq is not None:
        return False
    return incoming.generated_at > current.generated_at


class LatestLists:
    """Each user's newest list by the rule of :func:`supersedes`."""

    def __init__(self) -> None:
        self._lists: dict[str, RecsUpdated] = {}
        #: Lists offered and dropped (duplicates and stale lists).
        self.dropped = 0

    def offer(self, lst: RecsUpdated) -> bool:
        """Apply ``lst`` if it supersedes its user's list; returns whether it was applied."""
        if supersedes(lst, self._lists.get(lst.user_id)):
            self._lists[lst.user_id] = lst
            return True
        self.dropped += 1
        return False

    def get(self, user_id: str) -> RecsUpdated | None:
        """The user's list applied so far."""
        return self._lists.get(user_id)

    def __iter__(self) -> Iterator[RecsUpdated]:
        return iter(self._lists.values())

    def __len__(self) -> int:
        return len(self._lists)
