"""The live demo: replay a MovieLens folder through a running worker and watch lists refresh.

Pure pieces (which users to follow, how a list is rendered) are functions here; the command in
``recstream/cli/demo.py`` starts the processes and drives the terminal view.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from rich.table import Table

from schemas.events import ClickEvent, Event


def most_active_users(events: Iterable[Event], n: int) -> list[str]:
    """The ``n`` users with the most clicks among ``events`` (ties by user id)."""
    counts = Counter(e.user_id for e in events if isinstance(e, ClickEvent))
    return [u for u, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


@dataclass
class LiveLists:
    """Latest list per followed user and the latency of each list (thread-safe)."""

    users: list[str]
    titles: dict[str, str]
    produced_at: dict[str, float] = field(default_factory=dict)  # event id -> produce time
    latest: dict[str, tuple[dict, float, float | None]] = field(default_factory=dict)
    received: int = 0
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_list(self, value: bytes, now: float) -> None:
        """Record a ``recs.updated`` message received at ``now``."""
        rec = json.loads(value)
        with self.lock:
            self.received += 1
            sent = self.produced_at.pop(rec["trigger_event_id"], None)
            latency = None if sent is None else now - sent
            if latency is not None:
                self.latencies.append(latency)
                del self.latencies[:-2000]
            if rec["user_id"] in self.users:
                self.latest[rec["user_id"]] = (rec, now, latency)

    def table(self, top: int = 5) -> Table:
        """The terminal view: one row per followed user."""
        with self.lock:
            lat = sorted(self.latencies)
            p50 = f"{lat[len(lat) // 2] * 1000:.0f} ms" if lat else "-"
            p99 = f"{lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000:.0f} ms" if lat else "-"
            t = Table(
                title=f"recstream live: {self.received} lists received, event->list p50 {p50}, p99 {p99}",
                expand=True,
            )
            t.add_column("user", no_wrap=True)
            t.add_column("trigger", no_wrap=True)
            t.add_column(f"top {top} recommendations", ratio=1)
            t.add_column("event->list", justify="right")
            t.add_column("age", justify="right")
            now = time.time()
            for u in self.users:
                if u not in self.latest:
                    t.add_row(u, "-", "(waiting for this user's first event)", "-", "-")
                    continue
                rec, got, latency = self.latest[u]
                names = [self.titles.get(i["item_id"], i["item_id"]) for i in rec["items"][:top]]
                t.add_row(
                    u,
                    rec["trigger_event_id"],
                    "\n".join(f"{n + 1}. {name}" for n, name in enumerate(names)),
                    "-" if latency is None else f"{latency * 1000:.0f} ms",
                    f"{now - got:.1f} s",
                )
            return t
