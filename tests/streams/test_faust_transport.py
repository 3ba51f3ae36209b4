"""The worker's Faust transport: the consumer's fetch wait comes from settings."""

from __future__ import annotations

from pathlib import Path

from recstream.settings import load_settings
from streams.app import create_app
from streams.faust_transport import ConsumerThread, Transport


async def _no_runtime(app: object) -> object:
    raise AssertionError("not started in this test")


async def test_worker_consumer_fetch_wait_comes_from_settings(tmp_path: Path) -> None:
    s = load_settings({"RECSTREAM_KAFKA_FETCH_MAX_WAIT_MS": "7", "RECSTREAM_STACK_DIR": str(tmp_path)})
    app = create_app(s, _no_runtime)
    assert isinstance(app.transport, Transport)
    thread = app.consumer._thread  # type: ignore[attr-defined]
    assert isinstance(thread, ConsumerThread)
    consumer = thread._create_worker_consumer(app.transport)
    try:
        # Faust itself would pass 1,500 ms (see streams/faust_transport.py).
        assert consumer._fetch_max_wait_ms == 7
        assert consumer._group_id == s.consumer_group  # still Faust's worker consumer otherwise
    finally:
        await consumer.stop()


def test_fetch_wait_default_is_short() -> None:
    assert load_settings({}).kafka_fetch_max_wait_ms <= 20
