"""Holding the API's writes across a planned switchover (app/api/gate.py, on every instance).

`geoha switchover` pauses writes on every API instance before it asks Patroni
to switch over, and resumes them once the new primary takes writes. A write
then neither dies on the old primary's connection when the demote's fast
shutdown cuts it (an answer of "outcome unknown") nor is refused: it waits, at
most HOLD_S, and lands on the new primary. Reads go on throughout.

An instance that does not answer (a standby slot, a stopped node) takes no
writes, so it needs no pause; one that answers with an error is reported, and
the switchover goes on without it, as it did before pauses existed.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from geoha.plan import Node, NodeRole, Plan

HOLD_S = 5.0
"""How long an instance holds writes at most: the switchover resumes them sooner, and a
switchover that dies half-way leaves them held no longer than this."""
REQUEST_TIMEOUT_S = 8.0
"""A pause answers once the running writes end (at most the API's write timeout)."""


@dataclass
class HoldReport:
    """Which instances hold writes, which are not running, which refused, and for how long."""

    held: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    paused_at: float | None = None
    resumed_at: float | None = None
    released: int = 0
    """Writes that were waiting at the gates when they opened."""

    def summary(self) -> str:
        if not self.held and not self.failed:
            return "no API instance was running: no write to hold"
        parts = []
        if self.held and self.paused_at is not None and self.resumed_at is not None:
            parts.append(
                f"writes held {self.resumed_at - self.paused_at:.1f} s on "
                f"{len(self.held)} API instance(s), {self.released} released"
            )
        if self.failed:
            parts.append(f"not held on {'; '.join(self.failed)}")
        return ", ".join(parts)


class WriteHold:
    """Pause and resume writes on every API instance of the plan (they answer in parallel)."""

    def __init__(self, plan: Plan) -> None:
        self._instances = plan.by_role(NodeRole.API)
        path = plan.api_admin_token_path
        self._token = path.read_text(encoding="utf-8").strip() if path.exists() else None
        self.report = HoldReport()

    def pause(self) -> None:
        if self._token is None:  # no API instance was ever rendered
            return
        self.report.paused_at = time.monotonic()
        for node, outcome in self._each(f"pause?hold_s={HOLD_S:g}"):
            if outcome is None:
                self.report.absent.append(node.name)
            elif isinstance(outcome, str):
                self.report.failed.append(f"{node.name}: {outcome}")
            else:
                self.report.held.append(node.name)

    def resume(self) -> None:
        if not self.report.held:
            return
        held = set(self.report.held)
        results = self._each("resume", [n for n in self._instances if n.name in held])
        self.report.resumed_at = time.monotonic()
        self.report.released = sum(o for _, o in results if isinstance(o, int))

    def _each(
        self, action: str, nodes: list[Node] | None = None
    ) -> list[tuple[Node, int | str | None]]:
        targets = self._instances if nodes is None else nodes
        if not targets:
            return []
        with ThreadPoolExecutor(max_workers=len(targets)) as pool:
            outcomes = list(pool.map(lambda n: self._call(n, action), targets))
        return list(zip(targets, outcomes, strict=True))

    def _call(self, node: Node, action: str) -> int | str | None:
        """Writes held at the gate (an int), an error (a str), or None: not running."""
        url = f"http://{node.endpoint('http')}/admin/writes/{action}"
        try:
            resp = httpx.post(
                url, headers={"authorization": f"Bearer {self._token}"}, timeout=REQUEST_TIMEOUT_S
            )
        except httpx.ConnectError:
            return None
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}"
        if resp.status_code != 200:
            return f"HTTP {resp.status_code}"
        return int(resp.json().get("held", 0))
