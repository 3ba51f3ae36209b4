"""Test-only fault points of the commit protocol (``RECSTREAM_FAULT_HOOK``).

Chaos tests kill a worker at an exact point of the protocol instead of at a chance moment:
``after_apply`` (a batch applied to the in-memory state, nothing published yet),
``after_publish`` (its lists delivered, the state not yet written) and ``after_flush`` (states
written, offsets not yet committed). Two more break the worker on purpose, as negative controls
of the chaos oracle (a check that cannot see them is broken): ``no_dedup`` turns the duplicate
guard off, ``drop_event:N`` silently skips the Nth event taken. Several may be combined with
commas (``no_dedup,after_flush:6``). With the setting unset every point is a no-op; production
deployments never set it.
"""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger("recstream.worker")


class FaultPoints:
    """Counts arrivals at each point and SIGKILLs the process at the configured one."""

    def __init__(self, spec: str | None) -> None:
        self.point: str | None = None
        self.nth = 1
        self.controls: set[str] = set()
        self.drop_nth = 0
        for part in (spec or "").split(","):
            name, _, nth = part.strip().partition(":")
            if name == "no_dedup":
                self.controls.add(name)
            elif name == "drop_event":
                self.controls.add(name)
                self.drop_nth = int(nth or 1)
            elif name:
                self.point, self.nth = name, int(nth or 1)
        self._seen = 0
        self._taken = 0

    @property
    def no_dedup(self) -> bool:
        """Negative control: applying duplicates again."""
        return "no_dedup" in self.controls

    def drop_this(self) -> bool:
        """Negative control: True for the Nth event taken (the runtime then skips it silently)."""
        if "drop_event" not in self.controls:
            return False
        self._taken += 1
        if self._taken == self.drop_nth:
            log.warning("fault hook: event %d dropped on purpose", self._taken)
            return True
        return False

    def hit(self, point: str) -> None:
        """Called by the runtime at ``point``; kills the process on the configured arrival."""
        if point != self.point:
            return
        self._seen += 1
        if self._seen == self.nth:
            log.warning("fault hook: SIGKILL at %s (arrival %d)", point, self._seen)
            for h in logging.getLogger().handlers:
                h.flush()
            os.kill(os.getpid(), signal.SIGKILL)
