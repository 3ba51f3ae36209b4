"""Retry with backoff and a circuit breaker: pure logic with an injectable clock, no I/O.

A worker must pause and retry while Triton is down, never turn a transient outage into dead
letters, and must not hammer a server that is failing. The breaker opens after
``failure_threshold`` consecutive failures, refuses calls for ``reset_timeout_s``, then lets one
probe through (half-open): success closes it, failure opens it again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum


class CircuitState(Enum):
    """Breaker states (the metric value is the enum value)."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass
class CircuitBreaker:
    """Consecutive-failure circuit breaker.

    Args:
        failure_threshold: Consecutive failures that open the circuit.
        reset_timeout_s: How long it stays open before a probe is allowed.
        clock: Monotonic clock (injectable for tests).
    """

    failure_threshold: int = 5
    reset_timeout_s: float = 5.0
    clock: Callable[[], float] = time.monotonic
    _failures: int = field(default=0, init=False)
    _opened_at: float | None = field(default=None, init=False)
    _probe_in_flight: bool = field(default=False, init=False)

    @property
    def state(self) -> CircuitState:
        """Current state."""
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self.clock() - self._opened_at >= self.reset_timeout_s:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def allow(self) -> bool:
        """May a call go through now? In half-open state only one probe at a time."""
        st = self.state
        if st is CircuitState.CLOSED:
            return True
        if st is CircuitState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return True
        return False

    def retry_after(self) -> float:
        """Seconds until a probe will be allowed (0 when calls may go now)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self.reset_timeout_s - (self.clock() - self._opened_at))

    def record_success(self) -> None:
        """A call succeeded: close the circuit."""
        self._failures = 0
        self._opened_at = None
        self._probe_in_flight = False

    def record_failure(self) -> None:
        """A call failed transiently: count it, open (or re-open) when over the threshold."""
        self._failures += 1
        if self._probe_in_flight or self._failures >= self.failure_threshold:
            self._opened_at = self.clock()
        self._probe_in_flight = False


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter.

    ``max_attempts=None`` retries forever: the stream worker's choice, since an event must
    never be dropped because a dependency is down; the caller's pause is what bounds the cost.
    """

    max_attempts: int | None = 5
    base_delay_s: float = 0.05
    max_delay_s: float = 2.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Sleep before retry number ``attempt`` (1-based)."""
        # The exponent is capped: a worker retries forever, and 2 ** 1024 overflows a float.
        cap = min(self.max_delay_s, self.base_delay_s * (2 ** min(attempt - 1, 60)))
        return (rng or random).uniform(0, cap)

    def should_retry(self, attempt: int) -> bool:
        """Whether another attempt follows attempt number ``attempt``."""
        return self.max_attempts is None or attempt < self.max_attempts
