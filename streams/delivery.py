"""Hands messages to the producer and makes sure the broker gets every one of them.

The runtime sends a batch's messages without waiting for the broker (the next batch is processed
meanwhile) and marks the batch's offsets done only once :meth:`Publisher.delivered` returns.
A message the producer refuses is retried with backoff; one the broker did not acknowledge is
sent again (a list may then arrive twice, which consumers of ``recs.updated`` tolerate).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

log = logging.getLogger("recstream.worker")

#: A message to publish: (topic, key, value); the partition follows from the key.
Message = tuple[str, bytes | None, bytes]
#: Hands one message to the producer (topic, key, value, partition or None for the key's);
#: the result resolves when the broker has it.
SendFn = Callable[[str, bytes | None, bytes, int | None], Awaitable[Awaitable[Any]]]


class Publisher:
    """Sends with retries and waits for acknowledgements; counts the time spent paused.

    Args:
        send: The producer's send (for example the Faust app's).
    """

    def __init__(self, send: SendFn) -> None:
        self._send = send
        #: Seconds spent waiting to retry a refused send.
        self.paused_s = 0.0

    async def send(
        self, topic: str, key: bytes | None, value: bytes, partition: int | None = None
    ) -> Awaitable[Any]:
        """Hand one message to the producer, retrying with backoff while it refuses.

        Args:
            partition: Where to write it; None: where the producer's partitioner puts the key.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._send(topic, key, value, partition)
            except Exception as exc:
                delay = min(5.0, 0.1 * 2 ** min(attempt, 6)) * random.uniform(0.5, 1.0)
                log.warning("publish failed (%r); retry %d in %.2fs", exc, attempt, delay)
                self.paused_s += delay
                await asyncio.sleep(delay)

    async def send_all(self, messages: Sequence[Message]) -> list[Awaitable[Any]]:
        """Hand every message to the producer (waits only while its buffer is full)."""
        return [await self.send(topic, key, value) for topic, key, value in messages]

    async def delivered(self, messages: Sequence[Message], futures: Sequence[Awaitable[Any]]) -> None:
        """Return once the broker acknowledged every message (re-sending those it did not)."""
        pending = list(zip(messages, futures, strict=True))
        while pending:
            results = await asyncio.gather(*(f for _, f in pending), return_exceptions=True)
            failed = [m for (m, _), r in zip(pending, results, strict=True) if isinstance(r, BaseException)]
            if not failed:
                return
            log.warning("%d messages not delivered (%r); sending them again", len(failed), results[0])
            await asyncio.sleep(0.5)
            pending = [(m, await self.send(*m)) for m in failed]
