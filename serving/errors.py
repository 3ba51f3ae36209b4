"""Errors of the serving package.

Hierarchy::

    ServingError                 base of every serving failure
    ├── ServerNotFound           the tritonserver binary or Python stub is missing
    ├── ModelConfigError         an invalid typed model configuration
    └── InferenceError           a request failed (carries the model name)
        ├── TransientInferenceError   worth retrying (unavailable, timeout, overloaded)
        └── CircuitOpenError          the circuit breaker refuses calls for now
"""

from __future__ import annotations


class ServingError(RuntimeError):
    """Base class of serving errors."""


class ServerNotFound(ServingError):
    """The Triton binary or its Python-backend stub could not be located."""


class ModelConfigError(ServingError, ValueError):
    """A typed model configuration is invalid."""


class InferenceError(ServingError):
    """An inference request failed."""

    def __init__(self, model: str, message: str) -> None:
        self.model = model
        super().__init__(f"{model}: {message}")


class TransientInferenceError(InferenceError):
    """A failure worth retrying: server unavailable, deadline exceeded, queue full."""


class CircuitOpenError(TransientInferenceError):
    """The circuit breaker is open after repeated failures; calls wait until it half-opens."""
