"""Topic names and creation (the worker subscribes only to existing topics), and the codec of
the compacted catalogue topic that carries item embeddings to every worker."""

from __future__ import annotations

import json

import numpy as np
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from recstream.settings import Settings
from streams.kafka_config import kafka_python_config
from streams.state.base import ItemRecord

#: The compacted topic carrying item embeddings to every worker.
CATALOG_TOPIC_SUFFIX = ".catalog"


def catalog_topic(settings: Settings) -> str:
    """Name of the compacted catalogue topic (derived from the consumer group)."""
    return settings.consumer_group + CATALOG_TOPIC_SUFFIX


def ensure_topics(settings: Settings) -> list[str]:
    """Create every topic recstream uses that does not exist yet. Returns the created names."""
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
        return created
    finally:
        admin.close()


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
