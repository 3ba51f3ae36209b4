"""An oracle of the chaos tests that does not trust the worker's bookkeeping.

After a scenario, :func:`expected_states` reads the input topics from the beginning (what was
really offered, re-queued copies included), keeps every *distinct* event (by event id; dead
letters are not events), and applies them with the pure state rule only
(:func:`streams.state.userstate.accumulate` and :func:`streams.state.userstate.event_weight`): no offset
guard, no recent-event window, no worker code path. Item vectors come from the catalogue table
(what the uploads produced), review vectors from Triton (the same text encoder and fusion model).
:func:`compare` then holds every user's stored state against it: the un-normalised decayed sum,
its reference time, the set of seen items and the number of distinct events.

Chaos runs use a decay so long (``RECSTREAM_DECAY_TAU_S=1e12``) that every event keeps its full
weight: a lost or doubled event moves the sum by its whole contribution, so one lost and one
doubled event cannot cancel (``tests/chaos/test_oracle.py`` shows it for the sizes used).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from recstream.settings import Settings
from schemas.edge import Rejection, decode_event
from schemas.events import Event, ReviewEvent
from schemas.limits import Limits
from streams.state.userstate import accumulate, event_weight
from tests.chaos.accounting import UserRow

#: Tolerance on the L2 norm of the difference of two sums. Review vectors are recomputed by
#: Triton in batches of another composition (float32 rounding, ~1e-7 per component per review:
#: 5.6e-6 seen for a user with ~100 reviews); one event moves a sum by its weight (unit vectors,
#: weights >= 0.1 in the chaos replay), a thousand times more.
ATOL = 1e-4


@dataclass
class Expected:
    """One user's state as the distinct events imply it."""

    acc: np.ndarray | None = None
    ref_ts: int = 0
    events: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)
    unembedded: int = 0  # events whose item never had a vector (clicks on unknown items)


def distinct_events(raw: Iterable[tuple[bytes | None, bytes, str, int]], limits: Limits) -> list[Event]:
    """Valid events of ``(key, value, topic, append time ms)`` messages, each event id once.

    Validity is judged as the worker judged it, at the message's time (the edge rules).
    """
    out: dict[str, Event] = {}
    for key, value, topic, ts_ms in raw:
        ev = decode_event(value, key=key, topic=topic, limits=limits, now_ms=ts_ms, require_key=True)
        if isinstance(ev, Rejection):
            continue
        out.setdefault(ev.event_id, ev)
    return list(out.values())


def apply_pure(
    events: Sequence[Event],
    item_vec: Mapping[str, np.ndarray],
    review_vec: Mapping[str, np.ndarray],
    settings: Settings,
    rating_power: float,
    tau_s: float,
) -> dict[str, Expected]:
    """Every user's expected state from distinct events (order does not matter: a decayed sum)."""
    users: dict[str, Expected] = {}
    for ev in sorted(events, key=lambda e: (e.ts, e.event_id)):
        u = users.setdefault(ev.user_id, Expected())
        u.events.add(ev.event_id)
        u.seen.add(ev.item_id)
        vec = review_vec.get(ev.event_id) if isinstance(ev, ReviewEvent) else item_vec.get(ev.item_id)
        if vec is None:
            u.unembedded += 1
            continue
        w = event_weight(ev, settings, rating_power)
        u.acc, u.ref_ts = accumulate(u.acc, u.ref_ts, vec, ev.ts, w, tau_s)
    return users


@dataclass(frozen=True)
class Verdict:
    """The oracle's findings for one scenario.

    Attributes:
        users: Users compared.
        missing: Distinct events offered but not counted in the states (lost), summed over users.
        extra: Applications beyond the distinct events (applied twice), summed over users.
        sum_mismatch: Users whose decayed sum differs (a lost and a doubled event show here even
            when the counts agree).
        seen_mismatch: Users whose seen items differ.
        ref_ts_mismatch: Users whose reference time differs.
        details: A few users with their differences, for the failure message.
    """

    users: int
    missing: int
    extra: int
    sum_mismatch: int
    seen_mismatch: int
    ref_ts_mismatch: int
    details: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Nothing lost, nothing doubled, every state as the distinct events imply."""
        return not (
            self.missing or self.extra or self.sum_mismatch or self.seen_mismatch or self.ref_ts_mismatch
        )


def compare(expected: Mapping[str, Expected], stored: Mapping[str, UserRow], seen_max: int) -> Verdict:
    """Hold stored states against the expected ones (see :class:`Verdict`)."""
    missing = extra = sums = seens = refs = 0
    details: list[str] = []
    for user, exp in expected.items():
        row = stored.get(user)
        count = 0 if row is None else row.event_count
        diff = count - len(exp.events)
        missing += max(0, -diff)
        extra += max(0, diff)
        problems = []
        if diff:
            problems.append(f"count {count} vs {len(exp.events)} distinct events")
        acc = None if row is None else row.acc
        dev = (
            float(np.linalg.norm(acc - exp.acc))
            if acc is not None and exp.acc is not None
            else (0.0 if acc is None and exp.acc is None else float("inf"))
        )
        if dev > ATOL:
            sums += 1
            problems.append(f"decayed sum differs by {dev:.3g} (L2)")
        have = set() if row is None else set(row.seen)
        if (len(exp.seen) <= seen_max and have != exp.seen) or not have <= exp.seen:
            seens += 1
            problems.append(f"seen: {len(exp.seen - have)} missing, {len(have - exp.seen)} unexpected")
        if row is not None and not exp.unembedded and exp.acc is not None and row.ref_ts != exp.ref_ts:
            refs += 1
            problems.append(f"ref_ts {row.ref_ts} vs {exp.ref_ts}")
        if problems and len(details) < 10:
            details.append(f"{user}: {'; '.join(problems)}")
    unexpected = set(stored) - set(expected)
    for user in sorted(unexpected)[:3]:
        details.append(f"{user}: a state for a user nobody sent events for")
    extra += sum(stored[u].event_count for u in unexpected)
    return Verdict(len(expected), missing, extra, sums, seens, refs, tuple(details))


def expected_states(settings: Settings) -> dict[str, Expected]:
    """Read the deployment's input topics and catalogue; apply the distinct events (see above)."""
    from recstream.testing import read_topic
    from serving.client.triton import TritonClient
    from streams.items import review_fusion_inputs
    from streams.processor import effective_tau
    from streams.state.cassandra import CassandraStateStore
    from tests.chaos.harness import topic_size

    topics = list(settings.event_topics.values())
    total = sum(topic_size(settings, t) for t in topics)
    records = read_topic(settings, topics, lambda got: len(got) >= total, timeout_s=120)
    raw = [(r.key, r.value, r.topic, r.timestamp_ms) for r in records]
    events = distinct_events(raw, Limits.from_settings(settings))

    async def vectors() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], float, float]:
        async with CassandraStateStore.open(settings) as store:
            items = {it.item_id: it.embedding for it in await store.load_items()}
        client = TritonClient(settings.triton_grpc_url, timeout_s=settings.triton_timeout_s)
        try:
            info = await client.model_info()
            reviews = [e for e in events if isinstance(e, ReviewEvent)]
            rv: dict[str, np.ndarray] = {}
            for i in range(0, len(reviews), 64):
                chunk = reviews[i : i + 64]
                text = await client.encode_text([r.text for r in chunk])
                fused = await client.fuse(
                    review_fusion_inputs(chunk, text, image_dim=info.image_dim, feature_dim=info.feature_dim)
                )
                rv.update({r.event_id: fused[j] for j, r in enumerate(chunk)})
        finally:
            await client.close()
        return items, rv, info.rating_power, effective_tau(settings, info)

    items, reviews, power, tau = asyncio.run(vectors())
    return apply_pure(events, items, reviews, settings, power, tau)
