"""A base for async resources with an explicit ``close()`` (clients, stores)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class AsyncResource(ABC):
    """Use as ``async with resource: ...``; leaving the block calls :meth:`close`."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections and threads."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
