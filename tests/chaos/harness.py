"""I/O of the fault tests: paced producing, the events replayed, Cassandra state and topic sizes.

Everything here talks to real servers; the producer, the list collector and the topic reader
are those of :mod:`recstream.testing`. The measurements built on what it reads are the pure
functions of :mod:`tests.chaos.accounting`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from recstream.lab.replay import Pacer
from recstream.settings import REPO_ROOT, Settings
from recstream.testing import EventProducer, Message
from schemas.events import Event
from tests.chaos.accounting import UserRow

SAMPLE = REPO_ROOT / "deploy" / "local" / "sample" / "movielens"


def movielens_slice(path: Path = SAMPLE, limit: int | None = None) -> list[Event]:
    """The first ``limit`` replay events of a MovieLens folder (uploads before first use)."""
    from recstream.lab.datasets import load_movielens
    from recstream.lab.replay import movielens_events

    out: list[Event] = []
    for ev in movielens_events(load_movielens(path)):
        if limit is not None and len(out) >= limit:
            break
        out.append(ev)
    return out


def movielens_slice_for_users(users: Iterable[int], path: Path = SAMPLE) -> list[Event]:
    """Replay events of some users of a MovieLens folder, with the uploads of their items."""
    from recstream.lab.datasets import load_movielens
    from recstream.lab.replay import movielens_events

    ml = load_movielens(path)
    keep = set(users)
    ml.interactions = [i for i in ml.interactions if i.user_id in keep]
    return list(movielens_events(ml))


class PacedProducer(threading.Thread):
    """Sends raw ``(topic, key, value)`` messages at ``rate`` per second in a background thread.

    ``sent`` counts messages handed to the client; :meth:`finish` raises on a delivery failure.
    """

    def __init__(self, settings: Settings, messages: Sequence[Message], rate: float):
        super().__init__(daemon=True, name="paced-producer")
        self.settings = settings
        self.messages = messages
        self.rate = rate
        self.sent = 0
        self.error: BaseException | None = None
        self.failures = 0

    def run(self) -> None:
        try:
            producer = EventProducer(self.settings)
            pacer = Pacer(rate=self.rate)
            try:
                for topic, key, value in self.messages:
                    pacer.wait(0)
                    producer.send_raw(topic, key, value)
                    self.sent += 1
                producer.flush(600)
            finally:
                self.failures = producer.failures
                producer.close(timeout_s=30)  # raises DeliveryError after a failure
        except BaseException as exc:  # surfaced by join()
            self.error = exc

    def wait_sent(self, n: int, timeout_s: float = 600.0) -> None:
        """Block until at least ``n`` messages were handed to the client."""
        deadline = time.monotonic() + timeout_s
        while self.sent < n and self.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)

    def finish(self, timeout_s: float = 900.0) -> None:
        """Wait for every message to be delivered; raise if one was not."""
        self.join(timeout_s)
        if self.is_alive():
            raise AssertionError(f"producer still running after {timeout_s:.0f}s ({self.sent} sent)")
        if self.error is not None or self.failures:
            raise AssertionError(f"producer failed ({self.failures} undelivered): {self.error!r}")


def read_states(settings: Settings) -> dict[str, UserRow]:
    """Every user's state in the deployment's keyspace (read through the worker's store)."""
    import asyncio

    from streams.state.cassandra import CassandraStateStore
    from streams.state.session import connect

    cluster, session = connect(settings)
    try:
        rows = session.execute(
            f"SELECT DISTINCT user_id FROM {settings.cassandra_keyspace}.user_state_v2", timeout=60
        )
        users = sorted(r.user_id for r in rows)
    finally:
        cluster.shutdown()

    async def read() -> dict[str, UserRow]:
        async with CassandraStateStore.open(settings) as store:
            states = await store.get_users(users)
        return {
            u: UserRow(
                acc=st.acc,
                event_count=st.event_count,
                recent_events=st.recent_events,
                seen=st.seen,
                ref_ts=st.ref_ts,
            )
            for u, st in states.items()
        }

    return asyncio.run(read())


def topic_size(settings: Settings, topic: str) -> int:
    """Messages in a topic (sum of its partitions' end offsets; topics here are never truncated)."""
    from kafka import KafkaConsumer, TopicPartition

    from streams.kafka_config import kafka_python_config

    consumer = KafkaConsumer(group_id=None, **kafka_python_config(settings))
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return int(sum(ends.values()))
    finally:
        consumer.close()
