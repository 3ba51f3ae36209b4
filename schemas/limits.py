"""Edge limits: the configurable size bounds that every incoming event is checked against.

The defaults equal the defaults of :class:`recstream.settings.Settings` (a test keeps them in
sync), and they are the limits written into the JSON Schema files in ``schemas/json``. A
deployment may raise or lower them through ``RECSTREAM_MAX_*`` settings; the schema files then
describe the default deployment only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

#: One day: events stamped further ahead of the consumer's clock are refused (clock skew bound).
DEFAULT_MAX_FUTURE_MS = 86_400_000


class LimitSource(Protocol):
    """What :meth:`Limits.from_settings` reads: :class:`recstream.settings.Settings` has it all.

    A protocol rather than an import, because :mod:`schemas` imports nothing of the project
    (the import-linter contracts in ``.importlinter``).
    """

    max_message_bytes: int
    max_text_chars: int
    max_title_chars: int
    max_id_chars: int
    max_list_items: int
    max_features: int
    max_image_bytes: int
    max_image_pixels: int
    topic_click: str
    topic_upload: str
    topic_review: str


@dataclass(frozen=True, slots=True)
class Limits:
    """Size and sanity bounds applied at the edge.

    Attributes:
        max_message_bytes: Largest accepted Kafka message value, in bytes.
        max_text_chars: Longest review ``text`` / upload ``description`` (code points).
        max_title_chars: Longest upload ``title`` and longest single tag (code points).
        max_id_chars: Longest id (``event_id``, ``user_id``, ``item_id``, feature names...).
        max_list_items: Most entries in ``tags``, in one feature vector and in ``items``.
        max_features: Most named feature vectors in one upload.
        max_image_bytes: Largest decoded image payload, in bytes.
        max_image_pixels: Largest image, width * height.
        max_future_ms: How far ``ts`` may lie ahead of the consumer's clock.
        topic_click: Topic that carries click events.
        topic_upload: Topic that carries upload events.
        topic_review: Topic that carries review events.
    """

    max_message_bytes: int = 1_048_576
    max_text_chars: int = 10_000
    max_title_chars: int = 1_000
    max_id_chars: int = 256
    max_list_items: int = 256
    max_features: int = 32
    max_image_bytes: int = 5_242_880
    max_image_pixels: int = 16_000_000
    max_future_ms: int = DEFAULT_MAX_FUTURE_MS
    topic_click: str = "events.click"
    topic_upload: str = "events.upload"
    topic_review: str = "events.review"

    @classmethod
    def from_settings(cls, settings: LimitSource) -> Limits:
        """Limits and topic names of a deployment.

        Args:
            settings: The validated recstream settings.

        Returns:
            Limits built from the ``max_*`` and ``topic_*`` settings.
        """
        return cls(
            max_message_bytes=settings.max_message_bytes,
            max_text_chars=settings.max_text_chars,
            max_title_chars=settings.max_title_chars,
            max_id_chars=settings.max_id_chars,
            max_list_items=settings.max_list_items,
            max_features=settings.max_features,
            max_image_bytes=settings.max_image_bytes,
            max_image_pixels=settings.max_image_pixels,
            topic_click=settings.topic_click,
            topic_upload=settings.topic_upload,
            topic_review=settings.topic_review,
        )

    def topic_for(self, event_type: str) -> str | None:
        """The topic that must carry events of ``event_type`` (None for an unknown type)."""
        if event_type == "click":
            return self.topic_click
        if event_type == "upload":
            return self.topic_upload
        if event_type == "review":
            return self.topic_review
        return None


#: Limits of a default deployment; records validated without explicit limits use these.
DEFAULT_LIMITS = Limits()
