"""Pure mapping from upload events to the fusion model's inputs.

The text template must equal the one the fusion model was trained on
(:func:`recstream.lab.training.item_table.movie_text`): ``"Title. Genres: A, B"``; a test pins
the two together, since train/serve skew here would silently degrade every new item's embedding.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import numpy as np

from schemas.events import ReviewEvent, UploadEvent
from serving.client.base import FusionInputs

#: Precomputed feature vector the fusion model takes, and its width (MovieLens visual features).
FEATURE_NAME = "visual"


def upload_text(event: UploadEvent) -> str:
    """The text the encoder sees for an uploaded item."""
    text = f"{event.title}. Genres: {', '.join(event.tags)}" if event.tags else event.title
    if event.description:
        text = f"{text}. {event.description}"
    return text


def upload_image_bytes(event: UploadEvent) -> bytes | None:
    """Inline image bytes (``{"b64": ...}``); ``{"uri": ...}`` images are not fetched by the worker."""
    if event.image is None or event.image.b64 is None:
        return None
    return base64.b64decode(event.image.b64)


def fusion_inputs(
    uploads: Sequence[UploadEvent],
    text_emb: np.ndarray,
    image_emb: dict[int, np.ndarray],
    *,
    image_dim: int,
    feature_dim: int,
) -> FusionInputs:
    """Assemble the fusion batch for ``uploads``.

    Args:
        uploads: The upload events, in batch order.
        text_emb: ``[n, 384]`` text embeddings of :func:`upload_text` of each upload.
        image_emb: Image embedding by upload position (only uploads that carry an image).
        image_dim: Width of the image embedding.
        feature_dim: Width of the ``visual`` feature vector the model takes.
    """
    n = len(uploads)
    image = np.zeros((n, image_dim), dtype=np.float32)
    feats = np.zeros((n, feature_dim), dtype=np.float32)
    mask = np.zeros((n, 4), dtype=np.float32)
    mask[:, 0] = 1.0
    mask[:, 3] = 1.0  # the model ignores the id when it has no learned embedding for it
    for i, up in enumerate(uploads):
        if i in image_emb:
            image[i] = image_emb[i]
            mask[i, 1] = 1.0
        vec = (up.features or {}).get(FEATURE_NAME)
        if vec is not None and len(vec) == feature_dim:
            feats[i] = np.asarray(vec, dtype=np.float32)
            mask[i, 2] = 1.0
    return FusionInputs(
        text=np.ascontiguousarray(text_emb, dtype=np.float32),
        image=image,
        features=feats,
        item_ids=tuple(u.item_id for u in uploads),
        mask=mask,
    )


def review_fusion_inputs(
    reviews: Sequence[ReviewEvent], text_emb: np.ndarray, *, image_dim: int, feature_dim: int
) -> FusionInputs:
    """The fusion batch that maps review texts into the item/user space (text modality only).

    The worker and the chaos oracle (tests/chaos/oracle.py) both embed reviews this way.
    """
    n = len(reviews)
    mask = np.zeros((n, 4), dtype=np.float32)
    mask[:, 0] = 1.0
    return FusionInputs(
        text=np.ascontiguousarray(text_emb, dtype=np.float32),
        image=np.zeros((n, image_dim), dtype=np.float32),
        features=np.zeros((n, feature_dim), dtype=np.float32),
        item_ids=tuple(f"review:{r.event_id}" for r in reviews),
        mask=mask,
    )
