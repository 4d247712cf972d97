"""A job run every `interval_s` seconds in a task of its own, until stopped."""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod


class Periodic(ABC):
    """Subclasses define `tick()`; `start()` runs it now and then every `interval_s`."""

    name = "periodic"
    interval_s = 0.5

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    @abstractmethod
    async def tick(self) -> None:
        """One round of the job."""

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(self.interval_s)
