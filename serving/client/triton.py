"""Async Triton gRPC client with bounded concurrency, timeouts, retries and a circuit breaker.

Every request goes through :meth:`TritonClient.infer`: a semaphore bounds in-flight calls, each
call has a deadline, transient failures (unavailable, deadline exceeded, resource exhausted,
connection errors) are retried with jittered exponential backoff, and a per-model circuit
breaker stops calls to a failing model for a while. Latency, errors, retries and circuit state
are exported per model (``recstream_triton_*``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence

import numpy as np
import tritonclient.grpc.aio as grpcclient
from tritonclient.utils import InferenceServerException

from recstream import metrics
from serving.client.base import FusionInfo, FusionInputs, InferenceClient
from serving.client.resilience import CircuitBreaker, RetryPolicy
from serving.errors import CircuitOpenError, InferenceError, TransientInferenceError

_TRANSIENT = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "CANCELLED")
_NP_TO_TRITON = {
    np.dtype(np.float32): "FP32",
    np.dtype(np.int64): "INT64",
    np.dtype(object): "BYTES",
}


def is_transient(exc: BaseException) -> bool:
    """Whether a failure is worth retrying (server down, overloaded, timed out)."""
    if isinstance(exc, InferenceServerException):
        status = str(exc.status() or "")
        msg = str(exc.message() or "")
        # A model that is loading/unloading during a version swap answers "unavailable".
        return any(s in status for s in _TRANSIENT) or "unavailable" in msg.lower()
    return isinstance(exc, (ConnectionError, TimeoutError, OSError, asyncio.TimeoutError))


class TritonClient(InferenceClient):
    """The workers' client for the served models.

    Args:
        url: gRPC endpoint ``host:port``.
        timeout_s: Deadline of one request.
        max_concurrency: In-flight requests at most.
        retry: Retry policy (``max_attempts=None`` retries until the server is back).
        failure_threshold: Consecutive failures that open a model's circuit.
        reset_timeout_s: Open-circuit time before a probe.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 10.0,
        max_concurrency: int = 16,
        retry: RetryPolicy | None = None,
        failure_threshold: int = 5,
        reset_timeout_s: float = 2.0,
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self._client = grpcclient.InferenceServerClient(url=url)
        self._sem = asyncio.Semaphore(max_concurrency)
        self._breakers: dict[str, CircuitBreaker] = {}
        self._breaker_args = (failure_threshold, reset_timeout_s)

    def breaker(self, model: str) -> CircuitBreaker:
        """The circuit breaker of ``model``."""
        if model not in self._breakers:
            self._breakers[model] = CircuitBreaker(*self._breaker_args)
        return self._breakers[model]

    async def infer(
        self, model: str, inputs: Mapping[str, np.ndarray], outputs: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """Run one request with retries; returns the named outputs.

        Raises:
            InferenceError: A permanent failure (bad input, unknown model).
            TransientInferenceError: Still failing after the retry policy's last attempt.
        """
        attempt = 0
        breaker = self.breaker(model)
        while True:
            attempt += 1
            if not breaker.allow():
                metrics.TRITON_CIRCUIT.labels(model=model).set(breaker.state.value)
                if not self.retry.should_retry(attempt):
                    raise CircuitOpenError(model, "circuit open")
                await asyncio.sleep(max(breaker.retry_after(), 0.01))
                continue
            try:
                result = await self._once(model, inputs, outputs)
            except Exception as exc:
                transient = is_transient(exc)
                metrics.TRITON_ERRORS.labels(
                    model=model, kind="transient" if transient else "permanent"
                ).inc()
                if not transient:
                    breaker.record_success()  # the server answered: it is up
                    raise InferenceError(model, str(exc)) from exc
                breaker.record_failure()
                metrics.TRITON_CIRCUIT.labels(model=model).set(breaker.state.value)
                if not self.retry.should_retry(attempt):
                    raise TransientInferenceError(model, f"{exc} (after {attempt} attempts)") from exc
                metrics.TRITON_RETRIES.labels(model=model).inc()
                await asyncio.sleep(self.retry.delay(attempt))
                continue
            breaker.record_success()
            metrics.TRITON_CIRCUIT.labels(model=model).set(0)
            return result

    async def _once(
        self, model: str, inputs: Mapping[str, np.ndarray], outputs: Sequence[str]
    ) -> dict[str, np.ndarray]:
        reqs = []
        for name, arr in inputs.items():
            inp = grpcclient.InferInput(name, list(arr.shape), _NP_TO_TRITON[arr.dtype])
            inp.set_data_from_numpy(arr)
            reqs.append(inp)
        outs = [grpcclient.InferRequestedOutput(o) for o in outputs]
        async with self._sem:
            t0 = time.perf_counter()
            res = await self._client.infer(model, reqs, outputs=outs, client_timeout=self.timeout_s)
            metrics.triton_seconds(model).observe(time.perf_counter() - t0)
        return {o: res.as_numpy(o) for o in outputs}

    async def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        arr = np.array([[t.encode("utf-8")] for t in texts], dtype=object)
        return (await self.infer("text_encoder", {"TEXT": arr}, ["EMBEDDING"]))["EMBEDDING"]

    async def encode_images(self, images: Sequence[bytes]) -> np.ndarray:
        arr = np.array([[b] for b in images], dtype=object)
        return (await self.infer("image_encoder", {"IMAGE": arr}, ["EMBEDDING"]))["EMBEDDING"]

    async def fuse(self, inputs: FusionInputs) -> np.ndarray:
        ids = np.array([[i.encode("utf-8")] for i in inputs.item_ids], dtype=object)
        out = await self.infer(
            "fusion",
            {
                "TEXT_EMB": inputs.text.astype(np.float32, copy=False),
                "IMAGE_EMB": inputs.image.astype(np.float32, copy=False),
                "FEATURES": inputs.features.astype(np.float32, copy=False),
                "ITEM_ID": ids,
                "MASK": inputs.mask.astype(np.float32, copy=False),
            },
            ["EMBEDDING"],
        )
        return out["EMBEDDING"]

    async def model_info(self) -> FusionInfo:
        cfg = await self._client.get_model_config("fusion", as_json=True)
        params = cfg.get("config", {}).get("parameters", {})
        return FusionInfo.from_parameters({k: v.get("string_value", "") for k, v in params.items()})

    async def load_model(self, name: str) -> None:
        """Ask the server to (re)load ``name`` from the repository (hot swap of versions)."""
        await self._client.load_model(name)

    async def close(self) -> None:
        await self._client.close()
