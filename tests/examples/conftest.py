"""Real `recstream worker` deployments for the example clients (the fixture of tests/streams)."""

from tests.streams.conftest import deployment_factory

__all__ = ["deployment_factory"]
