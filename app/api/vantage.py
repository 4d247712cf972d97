"""This region's view of every database node: which of them it can reach, and since when not.

geoha's fast failover (geoha/ops/fencing.py) declares a primary dead only when
no region can reach it. A region's vantage point is its application: if no API
instance of the region reaches the primary, neither do its users' writes. So
each instance probes every database node every POLL_S seconds and answers the
latest views at `GET /health/vantage` (instance-only, like `/health`).

A node counts as reached when, within PROBE_TIMEOUT_S, either its Patroni
answers `GET /liveness` with 200 (over TLS, verified against the deployment's
CA, when its REST API speaks it) or, if it does not, its postmaster answers a
PostgreSQL SSLRequest (one byte, no login; asked second because the postmaster
forks a backend for it). A TCP connect alone would not do: the kernel accepts
connections for a process that is stopped or hung.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.api.periodic import Periodic
from app.api.wire import exchange, http_get

POLL_S = 0.5
PROBE_TIMEOUT_S = 0.8
SSL_REQUEST = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")
"""A PostgreSQL SSLRequest: length 8, code 1234.5679; the postmaster answers 'S' or 'N'."""
TARGET = re.compile(r"^([a-z0-9][a-z0-9-]{0,62})=([^:,\s\[\]]+):([0-9]{1,5}):([0-9]{1,5})$")


@dataclass(frozen=True)
class VantageTarget:
    """A database node: its name, address, PostgreSQL port and Patroni REST port."""

    name: str
    host: str
    pg_port: int
    patroni_port: int


def parse_targets(text: str) -> list[VantageTarget] | None:
    """`NAME=HOST:PG_PORT:PATRONI_PORT,...`; None if any item is not one."""
    targets: list[VantageTarget] = []
    for item in text.split(","):
        match = TARGET.fullmatch(item.strip())
        if match is None:
            return None
        name, host, pg_port, patroni_port = match.groups()
        ports = int(pg_port), int(patroni_port)
        if not all(0 < p < 65536 for p in ports):
            return None
        targets.append(VantageTarget(name, host, *ports))
    names = [t.name for t in targets]
    return targets if len(set(names)) == len(names) else None


@dataclass(frozen=True)
class NodeView:
    """The latest view of one node from one vantage point."""

    observed_at: float
    """When it was last probed (a monotonic clock)."""
    failing_since: float | None
    """Since when every probe has failed; None if the last one reached the node."""


def observe(previous: NodeView | None, reached: bool, at: float) -> NodeView:
    """The view after one more probe at `at`: a success resets the failure clock."""
    if reached:
        return NodeView(at, None)
    if previous is not None and previous.failing_since is not None:
        return NodeView(at, previous.failing_since)
    return NodeView(at, at)


def report(views: dict[str, NodeView], now: float) -> dict[str, dict[str, float | bool | None]]:
    """The views as ages from `now`, so the reader's clock need not be this machine's."""
    return {
        name: {
            "reached": view.failing_since is None,
            "observed_ago_s": round(now - view.observed_at, 3),
            "failing_for_s": (
                None if view.failing_since is None else round(now - view.failing_since, 3)
            ),
        }
        for name, view in views.items()
    }


async def _answers_ssl_request(host: str, port: int) -> bool:
    return await exchange(host, port, SSL_REQUEST, 1) in (b"S", b"N")


async def reached(
    target: VantageTarget, timeout_s: float = PROBE_TIMEOUT_S, tls: ssl.SSLContext | None = None
) -> bool:
    """Whether the node's Patroni or its postmaster answers within `timeout_s`; Patroni's
    REST API over TLS verified by `tls` when given."""

    async def patroni_live(host: str, port: int) -> bool:
        status = await exchange(host, port, http_get(host, port, "/liveness"), 16, tls)
        return status.startswith((b"HTTP/1.0 200", b"HTTP/1.1 200"))

    async def one(probe: Callable[[str, int], Awaitable[bool]], port: int) -> bool:
        try:
            async with asyncio.timeout(timeout_s):
                return await probe(target.host, port)
        except (OSError, TimeoutError):
            return False

    # Patroni first: the postmaster forks a backend for every connection, even one that
    # only asks for SSL, so it is asked only when Patroni does not answer.
    if await one(patroni_live, target.patroni_port):
        return True
    return await one(_answers_ssl_request, target.pg_port)


class Vantage(Periodic):
    """Probes every target every POLL_S seconds."""

    name = "vantage"
    interval_s = POLL_S

    def __init__(
        self,
        targets: list[VantageTarget],
        tls: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.targets = targets
        self.tls = tls
        self.views: dict[str, NodeView] = {}
        self._clock = clock

    async def tick(self) -> None:
        results = await asyncio.gather(*(reached(t, tls=self.tls) for t in self.targets))
        at = self._clock()
        for target, ok in zip(self.targets, results, strict=True):
            self.views[target.name] = observe(self.views.get(target.name), ok, at)

    def report(self) -> dict[str, dict[str, float | bool | None]]:
        return report(self.views, self._clock())
