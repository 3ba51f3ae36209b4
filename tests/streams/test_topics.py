"""Topic creation and the co-partitioning rule of the input topics."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

import pytest

from recstream.settings import Settings
from recstream.testing import RECSTREAM, free_port, isolated_env, recstream_environ
from streams.topics import TopicLayoutError, ensure_topics, partition_count_problem


def test_equal_partition_counts_are_fine() -> None:
    assert partition_count_problem({"a": 4, "b": 4, "c": 4}) is None
    assert partition_count_problem({}) is None


def test_different_partition_counts_are_named() -> None:
    problem = partition_count_problem({"events.click": 4, "events.upload": 4, "events.review": 2})
    assert problem is not None and "events.review: 2" in problem and "events.click: 4" in problem


@pytest.mark.integration
def test_worker_refuses_input_topics_with_different_partition_counts(
    stack: Settings, topic_factory: Callable[..., str]
) -> None:
    env = isolated_env(recstream_environ())
    env.update(
        RECSTREAM_TOPIC_CLICK=topic_factory("click", partitions=2),
        RECSTREAM_TOPIC_UPLOAD=topic_factory("upload", partitions=2),
        RECSTREAM_TOPIC_REVIEW=topic_factory("review", partitions=3),
    )
    from recstream.settings import load_settings

    with pytest.raises(TopicLayoutError, match="different partition counts"):
        ensure_topics(load_settings(env))
    base = {k: v for k, v in os.environ.items() if not k.startswith("RECSTREAM_")}
    proc = subprocess.run(
        [RECSTREAM, "worker", "--web-port", str(free_port())],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "different partition counts" in proc.stderr, proc.stderr[-2000:]
