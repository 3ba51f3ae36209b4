"""Test-only fault points of the commit protocol (``RECSTREAM_FAULT_HOOK``).

Chaos tests kill a worker at an exact point of the protocol instead of at a chance moment:
``after_apply`` (a batch applied to the in-memory state, nothing published yet),
``after_publish`` (its lists delivered, the state not yet written) and ``after_flush`` (states
written, offsets not yet committed). With the setting unset, :func:`hit` is a no-op; production
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
        if spec:
            point, _, nth = spec.partition(":")
            self.point, self.nth = point, int(nth or 1)
        self._seen = 0

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
