"""Circuit breaker and retry policy, with a fake clock."""

from __future__ import annotations

import random

from serving.client.resilience import CircuitBreaker, CircuitState, RetryPolicy


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_breaker_opens_after_threshold_then_half_opens_and_closes() -> None:
    clock = FakeClock()
    cb = CircuitBreaker(failure_threshold=3, reset_timeout_s=10, clock=clock)
    for _ in range(2):
        assert cb.allow()
        cb.record_failure()
    assert cb.state is CircuitState.CLOSED
    cb.record_failure()
    assert cb.state is CircuitState.OPEN and not cb.allow()
    assert cb.retry_after() == 10
    clock.t += 10
    assert cb.state is CircuitState.HALF_OPEN
    assert cb.allow()  # one probe
    assert not cb.allow()  # a second concurrent probe is refused
    cb.record_success()
    assert cb.state is CircuitState.CLOSED and cb.allow()


def test_failed_probe_reopens_immediately() -> None:
    clock = FakeClock()
    cb = CircuitBreaker(failure_threshold=2, reset_timeout_s=5, clock=clock)
    cb.record_failure()
    cb.record_failure()
    clock.t += 5
    assert cb.allow()
    cb.record_failure()
    assert cb.state is CircuitState.OPEN and cb.retry_after() == 5


def test_success_resets_the_failure_count() -> None:
    cb = CircuitBreaker(failure_threshold=2, clock=FakeClock())
    cb.record_failure()
    cb.record_success()
    cb.record_failure()
    assert cb.state is CircuitState.CLOSED


def test_backoff_grows_and_is_capped_with_jitter() -> None:
    policy = RetryPolicy(max_attempts=4, base_delay_s=0.1, max_delay_s=0.5)
    rng = random.Random(0)
    delays = [max(policy.delay(a, rng) for _ in range(200)) for a in (1, 2, 3, 4, 5)]
    assert delays[0] <= 0.1 and delays[1] <= 0.2 and all(d <= 0.5 for d in delays)
    assert delays[3] > 0.3  # reaches near the cap
    assert policy.should_retry(3) and not policy.should_retry(4)
    assert RetryPolicy(max_attempts=None).should_retry(10**6)
