"""Regressions found by the fault tests (tests/chaos) in the Triton client.

* A worker batch (``RECSTREAM_BATCH_SIZE``, 256) may hold more uploads than the text encoder's
  ``max_batch_size`` (128): the server answered INVALID_ARGUMENT and the runtime dead-lettered
  every good event of the batch.
* A stopping Triton unloads its models before it closes its port and answers NOT_FOUND
  ("unknown model ... has no available versions"): that was taken as a permanent refusal, and
  the events of the batch were dead-lettered during a transient outage.
* A worker retries Triton forever, but the backoff computed ``2 ** (attempt - 1)`` as a float,
  which overflows after 1,024 attempts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from recstream.settings import Settings
from serving.client.resilience import RetryPolicy
from serving.client.triton import TritonClient, is_transient, split_batch


def test_split_batch_cuts_along_the_first_axis_in_order() -> None:
    inputs = {"A": np.arange(10).reshape(5, 2), "B": np.arange(5, dtype=np.float32)}
    parts = split_batch(inputs, 2)
    assert [len(p["A"]) for p in parts] == [2, 2, 1]
    assert np.array_equal(np.concatenate([p["A"] for p in parts]), inputs["A"])
    assert np.array_equal(np.concatenate([p["B"] for p in parts]), inputs["B"])


def test_split_batch_keeps_fitting_and_unbatched_requests_whole() -> None:
    inputs = {"A": np.zeros((3, 4))}
    assert len(split_batch(inputs, 3)) == 1
    assert len(split_batch(inputs, 0)) == 1  # max_batch_size 0: the model does not batch


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ("StatusCode.NOT_FOUND", "Request for unknown model: 'text_encoder' has no available versions"),
        ("StatusCode.UNAVAILABLE", "failed to connect to all addresses"),
        ("StatusCode.INTERNAL", "Failed to process the request(s) for model 'fusion_0_0', "
         "message: Stub process 'fusion_0_0' is not healthy."),
        ("StatusCode.UNAVAILABLE", "Server is shutting down"),
        ("StatusCode.DEADLINE_EXCEEDED", "Deadline Exceeded"),
    ],
)  # fmt: skip
def test_restart_and_reload_answers_are_transient(status: str, message: str) -> None:
    assert is_transient(InferenceServerException(message, status=status))


def test_a_refused_input_is_permanent() -> None:
    exc = InferenceServerException(
        "inference request batch-size must be <= 128", "StatusCode.INVALID_ARGUMENT"
    )
    assert not is_transient(exc)
    assert not is_transient(ValueError("bad image"))


def test_retry_delay_stays_bounded_however_many_attempts() -> None:
    policy = RetryPolicy(max_attempts=None, base_delay_s=0.05, max_delay_s=2.0)
    for attempt in (1, 10, 1024, 1025, 5000, 10**6):
        assert 0.0 <= policy.delay(attempt) <= 2.0


async def test_infer_splits_oversize_requests_and_retries_each_part() -> None:
    client = TritonClient("127.0.0.1:1", retry=RetryPolicy(max_attempts=None, base_delay_s=0.001))
    client._max_batch["m"] = 4
    calls: list[int] = []
    failures = {"left": 2}

    async def once(
        model: str, inputs: Mapping[str, np.ndarray], outputs: Sequence[str]
    ) -> dict[str, np.ndarray]:
        calls.append(len(inputs["X"]))
        if len(inputs["X"]) == 2 and failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("server restarting")
        return {"Y": inputs["X"] * 2.0}

    client._once = once  # type: ignore[method-assign]
    x = np.arange(10, dtype=np.float32).reshape(10, 1)
    out = await client.infer("m", {"X": x}, ["Y"])
    np.testing.assert_array_equal(out["Y"], x * 2.0)
    assert max(calls) <= 4 and sorted(calls) == [2, 2, 2, 4, 4]  # the last part failed twice
    await client.close()


@pytest.mark.integration
@pytest.mark.triton
async def test_served_text_encoder_takes_a_batch_over_its_limit(stack: Settings) -> None:
    async with TritonClient(stack.triton_grpc_url, timeout_s=60) as client:
        limit = await client.max_batch_size("text_encoder")
        assert limit > 0
        texts = [f"film number {i}, a {('quiet', 'loud', 'odd')[i % 3]} drama" for i in range(limit + 37)]
        whole = await client.encode_text(texts)
        head = await client.encode_text(texts[:5])
    assert whole.shape == (len(texts), 384)
    np.testing.assert_allclose(whole[:5], head, atol=1e-5)
