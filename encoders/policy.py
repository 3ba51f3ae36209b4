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
        """Weight of one event; ``0.0`` means the event does not touch the state.

        Args:
            kind: ``"rating"``/``"click"`` or ``"tag"``/``"review"``.
            rating: Stars of a rating (ignored when ``rating_power`` is 0 or ``rating <= 0``).
        """
        if kind in ("rating", "click"):
            if self.rating_power and rating > 0:
                return self.weight_click * (rating / 5.0) ** self.rating_power
            return self.weight_click
        if kind in ("tag", "review"):
            return self.weight_review if self.include_reviews else 0.0
        return 0.0
