"""The live demo: replay a MovieLens folder through a running worker and watch lists refresh.

Pure pieces (which users to follow, how a list is rendered) are functions here; the command in
``recstream/cli/demo.py`` starts the processes and drives the terminal view.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from rich.table import Table

from recstream.testing import Arrival
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
    produced_at: dict[str, float] = field(default_factory=dict)  # event id -> perf_counter()
    latest: dict[str, tuple[Arrival, float | None]] = field(default_factory=dict)
    received: int = 0
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_arrival(self, arrival: Arrival) -> None:
        """Record a list read by the demo's :class:`recstream.testing.ListCollector`."""
        with self.lock:
            self.received += 1
            sent = self.produced_at.pop(arrival.trigger, None)
            latency = None if sent is None else arrival.received - sent
            if latency is not None:
                self.latencies.append(latency)
                del self.latencies[:-2000]
            if arrival.user_id in self.users:
                self.latest[arrival.user_id] = (arrival, latency)

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
            now = time.perf_counter()
            for u in self.users:
                if u not in self.latest:
                    t.add_row(u, "-", "(waiting for this user's first event)", "-", "-")
                    continue
                arrival, latency = self.latest[u]
                names = [self.titles.get(i, i) for i in arrival.items[:top]]
                t.add_row(
                    u,
                    arrival.trigger,
                    "\n".join(f"{n + 1}. {name}" for n, name in enumerate(names)),
                    "-" if latency is None else f"{latency * 1000:.0f} ms",
                    f"{now - arrival.received:.1f} s",
                )
            return t
