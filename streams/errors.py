"""Errors of the stream processor.

Hierarchy::

    StreamError                  base of every stream-processor failure
    ├── StateError               the state store failed (wraps the driver error)
    │   ├── SchemaVersionError   the keyspace holds another CQL schema version
    │   └── StateConnectionError Cassandra refused the connection (credentials, TLS, down)
    ├── DependencyUnavailable    Cassandra or Triton did not answer while the worker started
    ├── PartitionNotOwned        a batch's input partition was revoked while it was processed
    └── RetrievalError           the retrieval index was misused (dimension mismatch, ...)
"""

from __future__ import annotations


class StreamError(RuntimeError):
    """Base class of stream-processor errors."""


class StateError(StreamError):
    """The state store failed."""


class SchemaVersionError(StateError):
    """The keyspace's schema version is not the one this code expects."""


class StateConnectionError(StateError):
    """No connection to Cassandra: refused credentials, a TLS failure or no reachable node."""


class DependencyUnavailable(StreamError):
    """A dependency the worker needs to start (Cassandra, Triton) did not answer.

    The worker keeps retrying with back-off and reports the reason on ``/readyz``.

    Attributes:
        dependency: ``"cassandra"`` or ``"triton"``.
    """

    def __init__(self, dependency: str, reason: str) -> None:
        super().__init__(f"{dependency}: {reason}")
        self.dependency = dependency


class PartitionNotOwned(StreamError):
    """A batch's input partition moved to another worker while the batch was being processed."""


class RetrievalError(StreamError, ValueError):
    """The retrieval index was misused."""
