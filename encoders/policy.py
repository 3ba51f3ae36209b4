"""How events move a user state: the decay constant and the weight of each event.

Training, :mod:`recstream.lab.training.quick_eval` and the stream worker must agree on these numbers, so the
trained artefact stores the policy it was fitted with (``meta.json`` -> ``user_state``) and the
worker can read it back with :meth:`UserStatePolicy.from_dict`. Pure Python (no torch), so the
worker can import it cheaply.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol


class PolicySource(Protocol):
    """What :meth:`UserStatePolicy.from_settings` reads (:class:`recstream.settings.Settings`).

    A protocol, not an import: :mod:`encoders` imports only :mod:`schemas` (``.importlinter``).
    """

    weight_click: float
    weight_review: float
    decay_tau_s: float

    @property
    def model_fields_set(self) -> set[str]: ...


def event_weight(
    kind: str,
    strength: float | None,
    *,
    weight_click: float,
    weight_review: float,
    weight_upload: float,
    rating_power: float,
) -> float:
    """How strongly one event pulls its user's state: the one weight rule of training and serving.

    The worker (:func:`streams.state.userstate.event_weight`, for live events and the chaos
    oracle) and training (:meth:`UserStatePolicy.weight`, for dataset interactions) both call
    this function, so the state a model is trained on and the state it is served with cannot
    drift apart.

    Args:
        kind: ``"click"``/``"rating"``, ``"review"``/``"tag"`` or ``"upload"``.
        strength: A click's own weight (a MovieLens replay carries the rating stars there) or a
            review's rating; ``None`` or 0: none given.
        weight_click: Weight of a click of strength 1.
        weight_review: Weight of a review without a rating.
        weight_upload: Weight of an upload for its uploader.
        rating_power: 0: a click's strength multiplies ``weight_click`` as it is; above 0: the
            strength is read as stars (0-5) and scales the click by ``(stars / 5) **
            rating_power``.

    Returns:
        The weight; ``0.0`` for an unknown kind.
    """
    if kind in ("click", "rating"):
        if rating_power and strength:
            return weight_click * (min(strength, 5.0) / 5.0) ** rating_power
        return weight_click * ((strength or 1.0) if not rating_power else 1.0)
    if kind in ("review", "tag"):
        return weight_review * ((strength / 5.0) if strength else 1.0)
    if kind == "upload":
        return weight_upload
    return 0.0


@dataclass(frozen=True, slots=True)
class UserStatePolicy:
    """Parameters of the user-state update (:mod:`streams.state.userstate`) per event.

    Attributes:
        tau_s: Decay time constant (seconds).
        weight_click: Weight of a click (a MovieLens rating) before rating scaling.
        weight_review: Weight of a review (a MovieLens tag).
        rating_power: A rating ``r`` (0.5-5 stars) scales the click weight by ``(r / 5) **
            rating_power``; ``0`` ignores ratings (every click counts the same).
        include_reviews: Whether reviews update the state at all.
    """

    tau_s: float = 120.0  # chosen on validation before the cut (README, "Evaluation")
    weight_click: float = 1.0
    weight_review: float = 1.0
    rating_power: float = 0.0
    include_reviews: bool = False

    def __post_init__(self) -> None:
        if self.tau_s <= 0 or self.weight_click <= 0 or self.weight_review <= 0:
            raise ValueError("tau_s and the weights must be positive")

    @classmethod
    def from_settings(cls, settings: PolicySource, **overrides: Any) -> UserStatePolicy:
        """Policy with weights from the settings; ``overrides`` win.

        The decay is the settings' only when ``RECSTREAM_DECAY_TAU_S`` is set explicitly;
        otherwise this class's default, the value validated for training.
        """
        base: dict[str, Any] = {
            "weight_click": settings.weight_click,
            "weight_review": settings.weight_review,
        }
        if "decay_tau_s" in settings.model_fields_set:
            base["tau_s"] = settings.decay_tau_s
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UserStatePolicy:
        """Inverse of :meth:`to_dict` (unknown keys are ignored for forward compatibility)."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, stored in the artefact metadata."""
        return asdict(self)

    def weight(self, kind: str, rating: float = 0.0) -> float:
        """Weight of one dataset interaction (:func:`event_weight`, the worker's rule).

        ``0.0`` means the interaction does not touch the state: reviews when ``include_reviews``
        is off (a choice of training data), and uploads (not in the training data).

        Args:
            kind: ``"rating"``/``"click"`` or ``"tag"``/``"review"``.
            rating: Stars of a rating, carried by a replayed click as its weight (0: none).
        """
        if kind in ("tag", "review") and not self.include_reviews:
            return 0.0
        return event_weight(
            kind,
            rating or None,
            weight_click=self.weight_click,
            weight_review=self.weight_review,
            weight_upload=0.0,
            rating_power=self.rating_power,
        )
