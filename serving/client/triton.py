"""Async Triton gRPC client with bounded concurrency, timeouts, retries and a circuit breaker.

Every request goes through :meth:`TritonClient.infer`: a request larger than the model's
``max_batch_size`` (read once from the server) is split into requests the server accepts, a
semaphore bounds in-flight calls, each
call has a deadline, transient failures (unavailable, deadline exceeded, resource exhausted,
connection errors) are retried with jittered exponential backoff, and a per-model circuit
breaker stops calls to a failing model for a while. Latency, errors, retries and circuit state
are exported per model (``recstream_triton_*``).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

import numpy as np
import tritonclient.grpc.aio as grpcclient
from tritonclient.grpc._client import MAX_GRPC_MESSAGE_SIZE, KeepAliveOptions
from tritonclient.utils import InferenceServerException

from recstream import metrics
from serving.client.base import FusionInfo, FusionInputs, InferenceClient
from serving.client.resilience import CircuitBreaker, RetryPolicy
from serving.errors import CircuitOpenError, InferenceError, TransientInferenceError

# NOT_FOUND is transient for a worker: the models it calls exist, and a server that is stopping,
# starting or swapping versions answers "unknown model ... has no available versions" meanwhile.
_TRANSIENT = (
    "UNAVAILABLE",
    "DEADLINE_EXCEEDED",
    "RESOURCE_EXHAUSTED",
    "ABORTED",
    "CANCELLED",
    "NOT_FOUND",
)
#: Messages of a server (or a Python-backend stub) that is going down or coming up.
_TRANSIENT_TEXT = (
    "unavailable",
    "unknown model",
    "no available versions",
    "is not ready",
    "is not healthy",  # a Python-backend stub killed with its server
    "shutting down",
)
_T = TypeVar("_T")
_NP_TO_TRITON = {
    np.dtype(np.float32): "FP32",
    np.dtype(np.int64): "INT64",
    np.dtype(object): "BYTES",
}


def channel_args() -> list[tuple[str, int | bool]]:
    """gRPC channel options: the client's defaults, and quick reconnects to a restarted server.

    gRPC's default reconnect backoff grows to two minutes; after a Triton restart the worker's
    channel then stayed down for many seconds after the server was ready.
    """
    ka = KeepAliveOptions()
    return [
        ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_SIZE),
        ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_SIZE),
        ("grpc.keepalive_time_ms", ka.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", ka.keepalive_timeout_ms),
        ("grpc.keepalive_permit_without_calls", ka.keepalive_permit_without_calls),
        ("grpc.http2.max_pings_without_data", ka.http2_max_pings_without_data),
        ("grpc.initial_reconnect_backoff_ms", 250),
        ("grpc.min_reconnect_backoff_ms", 250),
        ("grpc.max_reconnect_backoff_ms", 2000),
    ]


def split_batch(inputs: Mapping[str, np.ndarray], limit: int) -> list[dict[str, np.ndarray]]:
    """Cut a request along its first (batch) axis into requests of at most ``limit`` rows.

    ``limit <= 0`` (a model without batching) or a request that fits returns it whole.
    """
    n = len(next(iter(inputs.values()))) if inputs else 0
    if limit <= 0 or n <= limit:
        return [dict(inputs)]
    return [{k: v[i : i + limit] for k, v in inputs.items()} for i in range(0, n, limit)]


def is_transient(exc: BaseException) -> bool:
    """Whether a failure is worth retrying (server down, restarting, overloaded, timed out).

    Only the server refusing the input itself (e.g. INVALID_ARGUMENT) is permanent: the caller
    dead-letters those events, so anything a restart or a model reload can cause must be
    transient here, or a dependency outage turns into lost events.
    """
    if isinstance(exc, InferenceServerException):
        status = str(exc.status() or "")
        msg = str(exc.message() or "").lower()
        return any(s in status for s in _TRANSIENT) or any(t in msg for t in _TRANSIENT_TEXT)
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
        self._client = grpcclient.InferenceServerClient(url=url, channel_args=channel_args())
        self._sem = asyncio.Semaphore(max_concurrency)
        self._breakers: dict[str, CircuitBreaker] = {}
        self._breaker_args = (failure_threshold, reset_timeout_s)
        self._max_batch: dict[str, int] = {}
        self._stalled_calls = 0

    @property
    def grpc_client(self) -> grpcclient.InferenceServerClient:
        """The gRPC client the requests go through (``/readyz`` runs its Triton check on it)."""
        return self._client

    @property
    def stalled(self) -> bool:
        """Whether a call is between a transient failure (or a refusal of the open circuit) and
        its end: the server is unreachable, restarting or overloaded right now."""
        return self._stalled_calls > 0

    def breaker(self, model: str) -> CircuitBreaker:
        """The circuit breaker of ``model``."""
        if model not in self._breakers:
            self._breakers[model] = CircuitBreaker(*self._breaker_args)
        return self._breakers[model]

    async def infer(
        self, model: str, inputs: Mapping[str, np.ndarray], outputs: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """Run one request with retries; returns the named outputs.

        A request over the model's ``max_batch_size`` goes as several requests (concurrently,
        each retried on its own) whose outputs are concatenated in order.

        Raises:
            InferenceError: A permanent failure (bad input, unknown model).
            TransientInferenceError: Still failing after the retry policy's last attempt.
        """
        limit = await self.max_batch_size(model)
        parts = split_batch(inputs, limit)
        if len(parts) == 1:
            return await self._call(model, lambda: self._once(model, inputs, outputs))
        results = await asyncio.gather(
            *(self._call(model, functools.partial(self._once, model, part, outputs)) for part in parts)
        )
        return {o: np.concatenate([r[o] for r in results]) for o in outputs}

    async def max_batch_size(self, model: str) -> int:
        """The model's ``max_batch_size`` from its served config (0: no batching), cached."""
        if model not in self._max_batch:
            cfg = await self._call(model, lambda: self._client.get_model_config(model, as_json=True))
            self._max_batch[model] = int(cfg.get("config", {}).get("max_batch_size", 0) or 0)
        return self._max_batch[model]

    async def _call(self, model: str, op: Callable[[], Awaitable[_T]]) -> _T:
        """Run ``op`` under ``model``'s circuit breaker, retrying transient failures.

        From its first transient failure (or refusal by the open circuit) to its end, the call
        counts as stalled (:attr:`stalled`).
        """
        attempt = 0
        stalled = False
        breaker = self.breaker(model)
        try:
            while True:
                attempt += 1
                if not breaker.allow():
                    if not stalled:
                        stalled, self._stalled_calls = True, self._stalled_calls + 1
                    metrics.TRITON_CIRCUIT.labels(model=model).set(breaker.state.value)
                    if not self.retry.should_retry(attempt):
                        raise CircuitOpenError(model, "circuit open")
                    await asyncio.sleep(max(breaker.retry_after(), 0.01))
                    continue
                try:
                    result = await op()
                except Exception as exc:
                    transient = is_transient(exc)
                    metrics.TRITON_ERRORS.labels(
                        model=model, kind="transient" if transient else "permanent"
                    ).inc()
                    if not transient:
                        breaker.record_success()  # the server answered: it is up
                        raise InferenceError(model, str(exc)) from exc
                    if not stalled:
                        stalled, self._stalled_calls = True, self._stalled_calls + 1
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
        finally:
            if stalled:
                self._stalled_calls -= 1

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
