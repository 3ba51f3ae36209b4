"""Event weights of the user state, and their round trip through artefact metadata."""

from __future__ import annotations

import pytest

from encoders.policy import UserStatePolicy
from recstream.settings import load_settings


def test_weights() -> None:
    p = UserStatePolicy(weight_click=2.0, weight_review=0.5, rating_power=1.0)
    assert p.weight("rating", 5.0) == pytest.approx(2.0)
    assert p.weight("click", 2.5) == pytest.approx(1.0)
    assert p.weight("click") == 2.0  # a click without a rating is a full click
    assert p.weight("tag") == 0.0  # reviews are off by default
    assert UserStatePolicy(include_reviews=True, weight_review=0.5).weight("review") == 0.5
    assert p.weight("upload") == 0.0


def test_from_settings_and_dict_round_trip() -> None:
    s = load_settings({}, decay_tau_s=3600.0, weight_click=0.7)
    p = UserStatePolicy.from_settings(s, rating_power=1.0, weight_review=None)
    assert (p.tau_s, p.weight_click, p.weight_review, p.rating_power) == (3600.0, 0.7, 1.0, 1.0)
    assert UserStatePolicy.from_dict({**p.to_dict(), "future_field": 1}) == p
    # Without an explicit RECSTREAM_DECAY_TAU_S the validated training default applies.
    assert UserStatePolicy.from_settings(load_settings({})).tau_s == UserStatePolicy().tau_s == 120.0


def test_invalid() -> None:
    with pytest.raises(ValueError):
        UserStatePolicy(tau_s=0.0)
