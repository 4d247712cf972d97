"""Holding writes across a planned switchover: PgBouncer's PAUSE/RESUME, per API instance.

geoha's switchover (geoha/data/write_hold.py) asks every API instance to pause
writes before it asks Patroni to switch over, and to resume them once the new
primary takes writes. While paused:
- a new write waits at the gate, then runs against whichever node is primary by
  then (its own write deadline starts when it passes the gate);
- writes already running go on; `pause` answers once none is left (or its drain
  bound is reached), so no write is on the old primary's connection when the
  demote's fast shutdown cuts it and its outcome becomes unknown;
- reads are not held: replicas and, until the demote, the primary answer them.
A pause ends by itself after its hold bound, so a switchover that dies half-way
holds writes no longer than that.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

MAX_HOLD_S = 10.0
"""The longest pause an instance accepts: a held request must still end well
inside the load balancers' server timeout."""


@dataclass(frozen=True)
class PauseState:
    """What a pause or resume found: writes still running, writes waiting at the gate."""

    paused: bool
    in_flight: int
    held: int


class WriteGate:
    """Counts the writes in flight and holds new ones while paused (one event loop)."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._in_flight = 0
        self._held = 0
        self._expiry: asyncio.TimerHandle | None = None

    @property
    def paused(self) -> bool:
        return not self._open.is_set()

    def state(self) -> PauseState:
        return PauseState(self.paused, self._in_flight, self._held)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[None]:
        """Wait while paused, then count this write as in flight until it ends."""
        if not self._open.is_set():
            self._held += 1
            try:
                await self._open.wait()  # the expiry timer opens it at the latest
            finally:
                self._held -= 1
        self._in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def pause(self, hold_s: float, drain_s: float) -> PauseState:
        """Hold new writes for at most `hold_s` (a second pause restarts the bound) and
        wait up to `drain_s` for the running ones to end."""
        if not 0 < hold_s <= MAX_HOLD_S:
            raise ValueError(f"hold_s must be in (0, {MAX_HOLD_S:g}], got {hold_s!r}")
        loop = asyncio.get_running_loop()
        if self._expiry is not None:
            self._expiry.cancel()
        self._open.clear()
        self._expiry = loop.call_later(hold_s, self._release)
        try:
            async with asyncio.timeout(drain_s):
                await self._idle.wait()
        except TimeoutError:
            pass
        return self.state()

    def resume(self) -> PauseState:
        """Let held writes go; returns how many were waiting."""
        held = self.state()
        self._release()
        return PauseState(False, held.in_flight, held.held)

    def _release(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        self._open.set()
