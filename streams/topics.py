"""Topic names and creation (the worker subscribes only to existing topics), and the codec of
the compacted catalogue topic that carries item embeddings to every worker."""

from __future__ import annotations

import json
import time

import numpy as np
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from recstream.settings import Settings
from streams.errors import StreamError
from streams.kafka_config import kafka_python_config
from streams.state.base import ItemRecord

#: The compacted topic carrying item embeddings to every worker.
CATALOG_TOPIC_SUFFIX = ".catalog"
#: recstream's own topic of deferred clicks (item still unknown), read back by the workers.
RETRY_TOPIC_SUFFIX = ".retry"


def catalog_topic(settings: Settings) -> str:
    """Name of the compacted catalogue topic (derived from the consumer group)."""
    return settings.consumer_group + CATALOG_TOPIC_SUFFIX


class TopicLayoutError(StreamError):
    """The input topics cannot be co-partitioned (their partition counts differ)."""


def partition_count_problem(counts: dict[str, int]) -> str | None:
    """Why input topics with these partition counts break per-user ownership, or None.

    Partition ``p`` of the click, upload and review topics is owned by one worker; a user's
    events land on the same ``p`` of each only when every input topic has the same count.
    """
    if len(set(counts.values())) <= 1:
        return None
    shown = ", ".join(f"{t}: {n}" for t, n in sorted(counts.items()))
    return (
        f"the input topics have different partition counts ({shown}); a user's events would be "
        "owned by different workers: give them the same count"
    )


def retry_topic(settings: Settings) -> str:
    """Name of the retry topic of deferred clicks (derived from the consumer group).

    A click whose item is unknown yet waits here, on the same partition number as its original,
    never on ``events.click``, whose other consumers would see it twice.
    """
    return settings.consumer_group + RETRY_TOPIC_SUFFIX


def input_topics(settings: Settings) -> list[str]:
    """Every topic a worker consumes: click, upload, review and the retry topic."""
    return [*settings.event_topics.values(), retry_topic(settings)]


def ensure_topics(settings: Settings) -> list[str]:
    """Create every topic recstream uses that does not exist yet. Returns the created names.

    Raises:
        TopicLayoutError: The input topics (the retry topic included) exist with different
            partition counts.
    """
    p = settings.topic_partitions
    wanted = {
        settings.topic_click: NewTopic(settings.topic_click, p, 1),
        settings.topic_upload: NewTopic(settings.topic_upload, p, 1),
        settings.topic_review: NewTopic(settings.topic_review, p, 1),
        settings.topic_recs: NewTopic(settings.topic_recs, p, 1),
        settings.topic_dlq: NewTopic(settings.topic_dlq, p, 1),
        catalog_topic(settings): NewTopic(
            catalog_topic(settings), p, 1, topic_configs={"cleanup.policy": "compact"}
        ),
        retry_topic(settings): NewTopic(retry_topic(settings), p, 1),
    }
    admin = KafkaAdminClient(**kafka_python_config(settings))
    try:
        existing = set(admin.list_topics())
        missing = [t for name, t in wanted.items() if name not in existing]
        created = []
        for topic in missing:
            try:
                admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:  # another worker won the race
                pass
        problem = partition_count_problem(_partition_counts(admin, input_topics(settings)))
        if problem is not None:
            raise TopicLayoutError(problem)
        return created
    finally:
        admin.close()


def _partition_counts(admin: KafkaAdminClient, topics: list[str], timeout_s: float = 15.0) -> dict[str, int]:
    """Partition count per topic (waits for topics created a moment ago to show in metadata)."""
    deadline = time.monotonic() + timeout_s
    while True:
        described = admin.describe_topics(topics)
        counts = {
            d["name"]: len(d["partitions"]) for d in described if not d["error_code"] and d["partitions"]
        }
        if len(counts) == len(set(topics)) or time.monotonic() > deadline:
            return counts
        time.sleep(0.2)


def encode_catalog_item(item_id: str, vec: np.ndarray, model_version: str, title: str) -> bytes:
    """Catalogue broadcast message (JSON; the vector as a float list)."""
    return json.dumps(
        {
            "item_id": item_id,
            "embedding": [float(x) for x in vec],
            "model_version": model_version,
            "title": title,
        }
    ).encode()


def decode_catalog_item(value: bytes) -> ItemRecord:
    """Inverse of :func:`encode_catalog_item`."""
    data = json.loads(value)
    return ItemRecord(
        data["item_id"],
        np.asarray(data["embedding"], dtype=np.float32),
        frozenset(),
        data.get("model_version", ""),
        data.get("title", ""),
    )
