"""Fixtures that run real `recstream worker` processes against the session's stack."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from recstream.settings import Settings
from recstream.testing import Deployment, recstream_environ

__all__ = ["deployment_factory"]


@pytest.fixture()
def deployment_factory(stack: Settings, tmp_path: Path) -> Iterator[Callable[[], Deployment]]:
    """Makes isolated deployments (topics, group, keyspace) and kills their workers after the test.

    Workers wait up to 90 s for ``/readyz`` and log to ``<tmp_path>/deployment-<n>/``; a test may
    change a deployment's ``env`` between worker starts.
    """
    made: list[Deployment] = []

    def make() -> Deployment:
        d = Deployment.create(
            recstream_environ(),
            tmp_path / f"deployment-{len(made)}",
            partitions=2,
            RECSTREAM_K="10",
            # Explicit, so tests recompute states with a known decay whatever model is served.
            RECSTREAM_DECAY_TAU_S="604800",
            RECSTREAM_LOG_LEVEL="WARNING",
        )
        d.ready_timeout_s = 90
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop_all()
