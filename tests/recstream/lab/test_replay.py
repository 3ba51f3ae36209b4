"""MovieLens replay: event generation, pacing, sinks, and the replay | validate acceptance path."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from recstream.lab.datasets import MovieLens, load_movielens
from recstream.lab.replay import (
    CATALOGUE_USER,
    JsonlSink,
    KafkaEventSink,
    Pacer,
    ReplayError,
    count_movielens_events,
    movielens_events,
    replay,
)
from recstream.settings import load_settings
from schemas.edge import Rejection, decode_event
from schemas.events import ClickEvent, Event, ReviewEvent, UploadEvent
from schemas.limits import Limits

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "deploy" / "local" / "sample" / "movielens"
RECSTREAM = Path(sys.executable).parent / "recstream"
NOW_MS = 1_750_000_000_000


@pytest.fixture(scope="module")
def sample() -> MovieLens:
    return load_movielens(SAMPLE)


@pytest.fixture(scope="module")
def sample_events(sample: MovieLens) -> list[Event]:
    return list(movielens_events(sample))


def test_sample_size_and_contents(sample: MovieLens, sample_events: list[Event]) -> None:
    ratings = sum(1 for i in sample.interactions if i.kind == "rating")
    users = {i.user_id for i in sample.interactions if i.kind == "rating"}
    assert len(users) == 40 and 3000 <= ratings <= 6000
    counts = Counter(e.type for e in sample_events)
    assert counts["click"] == ratings
    assert counts["review"] == len(sample.interactions) - ratings > 0
    assert counts["upload"] == len({i.movie_id for i in sample.interactions})
    assert len(sample_events) == count_movielens_events(sample)
    assert (SAMPLE / "README.md").read_text().count("Harper") == 1


def test_uploads_precede_first_interactions_in_time_order(sample_events: list[Event]) -> None:
    uploaded: dict[str, int] = {}
    last_ts = 0
    assert sample_events, "no events generated"
    for n, ev in enumerate(sample_events):
        assert ev.ts >= last_ts, f"event {n} goes back in time"
        last_ts = ev.ts
        if isinstance(ev, UploadEvent):
            assert ev.item_id not in uploaded, "movie uploaded twice"
            assert ev.user_id == CATALOGUE_USER and ev.event_id == f"ml-upload-{ev.item_id}"
            uploaded[ev.item_id] = n
        else:
            assert ev.item_id in uploaded, "interaction before its item's upload"
    for n, ev in enumerate(sample_events):  # each upload is immediately followed by its item
        if isinstance(ev, UploadEvent):
            nxt = sample_events[n + 1]
            assert not isinstance(nxt, UploadEvent) and nxt.item_id == ev.item_id
            assert nxt.ts == ev.ts


def test_event_mapping(sample: MovieLens, sample_events: list[Event]) -> None:
    by_id = {e.event_id: e for e in sample_events}
    assert len(by_id) == len(sample_events), "event ids must be unique"
    assert len(sample.interactions) >= 500, len(sample.interactions)
    for inter in sample.interactions[:500]:
        if inter.kind == "rating":
            click = by_id[f"ml-click-{inter.order}"]
            assert isinstance(click, ClickEvent) and click.weight == inter.value
        else:
            review = by_id[f"ml-review-{inter.order}"]
            assert isinstance(review, ReviewEvent) and review.text == inter.text
        ev = by_id[f"ml-{'click' if inter.kind == 'rating' else 'review'}-{inter.order}"]
        assert (ev.user_id, ev.item_id, ev.ts) == (str(inter.user_id), str(inter.movie_id),
                                                   inter.ts * 1000)  # fmt: skip
    uploads = [e for e in sample_events if isinstance(e, UploadEvent)]
    with_visual = [u for u in uploads if u.features]
    assert with_visual and all(len(u.features["visual"]) == 7 for u in with_visual if u.features)
    movie = sample.movies[int(uploads[0].item_id)]
    assert uploads[0].title == movie.title and uploads[0].tags == (movie.genres or None)


def test_all_sample_events_pass_the_edge(sample_events: list[Event]) -> None:
    limits = Limits()
    assert sample_events, "no events generated"
    for ev in sample_events:
        result = decode_event(ev.to_json_bytes(), key=ev.kafka_key, topic=limits.topic_for(ev.type),
                              limits=limits, now_ms=NOW_MS)  # fmt: skip
        assert not isinstance(result, Rejection), f"{ev.event_id}: {result}"
        assert result == ev


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


def test_rate_pacing_is_a_token_bucket() -> None:
    fc = FakeClock()
    pacer = Pacer(rate=100.0, clock=fc.clock, sleep=fc.sleep)
    start = fc.now
    for _ in range(1000):
        pacer.wait(0)
    # 10 events of burst, then 100/s: 990 more events need ~9.9 s.
    assert fc.now - start == pytest.approx(9.9, abs=0.05)


def test_speedup_paces_by_event_time() -> None:
    fc = FakeClock()
    pacer = Pacer(speedup=10.0, clock=fc.clock, sleep=fc.sleep)
    start = fc.now
    for ts in (1_000_000, 1_000_000, 1_010_000, 1_060_000):
        pacer.wait(ts)
    assert fc.now - start == pytest.approx(6.0)  # 60 s of event time / 10


@pytest.mark.parametrize(("rate", "speedup"), [(0, None), (-1, None), (None, 0)])
def test_pacer_rejects_nonpositive(rate: float | None, speedup: float | None) -> None:
    with pytest.raises(ValueError):
        Pacer(rate=rate, speedup=speedup)


class FakeFuture:
    def __init__(self, fail: bool) -> None:
        self.fail = fail

    def add_errback(self, fn: Any) -> None:
        if self.fail:
            fn(RuntimeError("broker down"))


class FakeProducer:
    def __init__(self, fail_every: int = 0) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.flushed = self.closed = False
        self.fail_every = fail_every

    def send(self, topic: str, value: bytes, key: bytes) -> FakeFuture:
        self.sent.append((topic, key, value))
        return FakeFuture(bool(self.fail_every) and len(self.sent) % self.fail_every == 0)

    def flush(self, timeout: float | None = None) -> None:
        self.flushed = True

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


def test_kafka_sink_routes_by_type_and_keys_by_user(sample_events: list[Event]) -> None:
    producer = FakeProducer()
    settings = load_settings({}, topic_review="reviews.v1")
    with KafkaEventSink(settings, producer=producer) as sink:
        stats = replay(sample_events, sink, limit=300)
    assert producer.flushed and producer.closed and stats.total == 300
    topics = {"click": "events.click", "upload": "events.upload", "review": "reviews.v1"}
    assert len(producer.sent) == 300, len(producer.sent)
    for (topic, key, value), ev in zip(producer.sent, sample_events, strict=False):
        assert topic == topics[ev.type] and key == ev.user_id.encode()
        assert json.loads(value)["event_id"] == ev.event_id


def test_kafka_sink_reports_delivery_failures(sample_events: list[Event]) -> None:
    producer = FakeProducer(fail_every=7)
    sink = KafkaEventSink(load_settings({}), producer=producer)
    replay(sample_events[:50], sink)
    with pytest.raises(ReplayError, match="7 event"):
        sink.close()
    assert producer.closed


def test_jsonl_sink_and_limit(sample_events: list[Event], tmp_path: Path) -> None:
    out = tmp_path / "e.jsonl"
    progress: list[int] = []
    with JsonlSink(out) as sink:
        stats = replay(iter(sample_events), sink, limit=25, progress=progress.append)
    lines = out.read_bytes().splitlines()
    assert len(lines) == stats.total == len(progress) == 25
    assert lines[0] == sample_events[0].to_json_bytes()
    buf = io.BytesIO()
    sink2 = JsonlSink("-", stdout=buf)
    sink2.send(sample_events[0])
    sink2.close()
    assert buf.getvalue() == sample_events[0].to_json_bytes() + b"\n"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSTREAM_")}
    return subprocess.run([str(RECSTREAM), *args], capture_output=True, text=True, env=env,
                          timeout=300, check=False)  # fmt: skip


def test_acceptance_replay_then_validate_on_the_sample(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    proc = _run("replay", "--dataset", f"movielens:{SAMPLE}", "--out", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "7225 events" in proc.stderr
    check = _run("validate", str(out))
    assert check.returncode == 0, check.stdout[-2000:]
    assert len(check.stdout.splitlines()) == len(out.read_bytes().splitlines()) == 7225


def test_replay_cli_errors(tmp_path: Path) -> None:
    proc = _run("replay", "--dataset", f"movielens:{tmp_path}", "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and "not found" in proc.stderr
    proc = _run("replay", "--dataset", "csv:/x", "--out", str(tmp_path / "x"))
    assert proc.returncode == 2
    proc = _run("replay", "--dataset", f"movielens:{SAMPLE}", "--rate", "0")
    assert proc.returncode == 2 and "must be a finite number > 0" in proc.stderr


@pytest.mark.parametrize("rating_power", [0.0, 1.0, 2.0])
def test_training_and_the_worker_weigh_every_replayed_interaction_alike(
    sample: MovieLens, rating_power: float
) -> None:
    """One weight rule: what training gives an interaction is what the worker gives its event."""
    from encoders.policy import UserStatePolicy
    from streams.state.userstate import event_weight

    settings = load_settings({}, weight_click=0.7, weight_review=0.4)
    policy = UserStatePolicy.from_settings(settings, rating_power=rating_power, include_reviews=True)
    by_id = {e.event_id: e for e in movielens_events(sample)}
    checked = Counter[str]()
    for i in sample.interactions:
        kind = "review" if i.kind == "tag" else "click"
        event = by_id[f"ml-{kind}-{i.order}"]
        assert policy.weight(i.kind, i.value) == pytest.approx(event_weight(event, settings, rating_power)), i
        checked[i.kind] += 1
    assert checked["rating"] > 100 and checked["tag"] > 0, checked
    # Stars matter: two ratings of different stars get different weights under every power.
    stars = sorted({i.value for i in sample.interactions if i.kind == "rating"})
    assert len({round(policy.weight("rating", s), 9) for s in stars}) == len(stars)
