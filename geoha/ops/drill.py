"""One failover drill: load, fault, heal, settle, verify.

The drill knows no controller: what it asks of the deployment (run `geoha
chaos`, the controller's events, the DNS health, whether the cluster has
settled) comes through a `DrillControl` that the command implements
(geoha.commands.drill). Its phases:

1. **warm-up**: the clients (geoha.ops.drill_clients), the role sampler
   (geoha.ops.drill_sampler) and a DNS health watch start; `warmup_s` of load.
2. **fault**: `geoha chaos INJECT`; the fault's time is when it struck (the
   first kill of one of its nodes, or the partition's rules in place).
3. **heal**: `heal_after_s` later, `geoha chaos HEAL` (also when the load has
   ended by then; and on any way out once injected, an interrupt included).
4. **load end**: no new operation after `duration_s`; writes in flight decide
   their outcome.
5. **settle**: until a primary runs, every other data node streams (as the
   synchronous standby in sync mode), every DNS record and etcd member is
   healthy and no fault is left; at most `settle_timeout_s`.
6. **verify**: every theme name the clients wrote is counted on the primary
   (the application's read-write URI).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import psycopg

from geoha.errors import GeohaError
from geoha.ops.drill_clients import Load, Target
from geoha.ops.drill_model import (
    Clock,
    ControllerEvent,
    DnsHealthChange,
    DrillLog,
    DrillSettings,
    Marks,
    WriteRecord,
    fault_struck_at,
)
from geoha.ops.drill_report import DrillReport, build_report
from geoha.ops.drill_sampler import DatabaseTarget, RoleSampler

PROGRESS_EVERY_S = 5.0
SETTLE_POLL_S = 1.0
CLIENTS_FINISH_S = 45.0
"""How long past the load's end the drill waits for writes in flight."""


@dataclass(frozen=True)
class SettleState:
    missing: str | None
    """What the cluster still lacks to count as settled (None: settled)."""
    primary: str | None


class DrillControl(Protocol):
    """What a drill asks of the deployment."""

    def chaos(self, args: Sequence[str]) -> None:
        """Run `geoha chaos ARGS`; a GeohaError when it fails."""

    def events(self) -> list[ControllerEvent]:
        """The controller's recent events, `t` in wall-clock seconds."""

    def dns_health(self) -> dict[str, bool]:
        """Each data region's health in the global DNS."""

    def settle_state(self) -> SettleState:
        """Whether the cluster has settled, and its primary."""


@dataclass(frozen=True)
class DrillTargets:
    clients: Target
    databases: list[DatabaseTarget]
    write_dsn: str
    """The application's read-write URI: the primary, wherever it is."""


BeforeVerify = Callable[[list[WriteRecord]], None]


def count_names(dsn: str, names: Sequence[str]) -> dict[str, int]:
    """Rows per theme name on the node `dsn` reaches (the primary for a read-write URI)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT name, count(*) FROM themes WHERE name = ANY(%s) GROUP BY name", (list(names),)
        ).fetchall()
    return {str(name): int(n) for name, n in rows}


class DnsWatch:
    """Polls the DNS health every second; records each change (the first poll included)."""

    def __init__(self, poll: Callable[[], dict[str, bool]], clock: Clock) -> None:
        self.poll = poll
        self.clock = clock
        self.changes: list[DnsHealthChange] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drill-dns", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        known: dict[str, bool] = {}
        while not self._stop.is_set():
            try:
                health = self.poll()
            except GeohaError:
                health = {}
            t = self.clock()
            for region, healthy in health.items():
                if known.get(region) is not healthy:
                    known[region] = healthy
                    self.changes.append(DnsHealthChange(t, region, healthy))
            self._stop.wait(1.0)


class Drill:
    """One drill (see the module's docstring); `run()` returns its report."""

    def __init__(
        self,
        settings: DrillSettings,
        targets: DrillTargets,
        control: DrillControl,
        say: Callable[[str], None],
        before_verify: BeforeVerify | None = None,
    ) -> None:
        self.settings = settings
        self.targets = targets
        self.control = control
        self.say = say
        self.before_verify = before_verify
        started = time.monotonic()
        self.clock: Clock = lambda: time.monotonic() - started
        self.load = Load(
            targets.clients,
            settings.rate,
            settings.duration_s,
            self.clock,
            seed=settings.seed,
            tag=settings.tag,
        )
        self.sampler = RoleSampler(targets.databases, self.clock, settings.sample_interval_s)
        self.dns = DnsWatch(control.dns_health, self.clock)
        self.marks = Marks(load_end=settings.duration_s)
        self.progress_at = 0.0
        self.heal_error: str | None = None

    def note(self, message: str) -> None:
        self.say(f"[+{self.clock():5.1f} s] {message}")

    def run(self) -> DrillReport:
        s = self.settings
        self.sampler.start()
        self.dns.start()
        self.load.start()
        self.note(
            f"warm-up: {len(self.load.clients)} clients, {s.rate:g} operations/s for "
            f"{s.duration_s:g} s; {s.fault} at +{s.warmup_s:g} s, healed {s.heal_after_s:g} s later"
        )
        try:
            try:
                self.fault_and_heal()
                self.wait_until(s.duration_s, "healed")
                self.note("load done: waiting for the writes in flight to decide their outcome")
                finished = self.load.join(CLIENTS_FINISH_S)
            finally:
                self.load.halt()
            stragglers = 0 if finished else sum(1 for t in self.load.threads if t.is_alive())
            settle = self.settle()
            counts, check_error = self.verify()
        finally:
            self.sampler.stop()
            self.dns.stop()
        log = DrillLog(
            attempts=self.load.attempts(),
            resolutions=self.load.resolutions(),
            writes=self.load.writes(),
            rounds=list(self.sampler.rounds),
            dns_changes=list(self.dns.changes),
            marks=self.marks,
            clients=len(self.load.clients),
            capped=self.load.budget.capped,
            stragglers=stragglers,
            settle_error=settle.missing,
            primary=settle.primary,
            counts=counts,
            check_error=check_error,
            heal_error=self.heal_error,
        )
        return build_report(self.settings, log)

    def fault_and_heal(self) -> None:
        s = self.settings
        self.wait_until(s.warmup_s, "warm-up")
        issued = self.clock()
        self.note(f"injecting {s.fault}: geoha chaos {' '.join(s.chaos.inject)}")
        try:
            self.control.chaos(s.chaos.inject)
            returned = self.clock()
            struck = fault_struck_at(self.drill_events(), s.chaos, issued, returned)
            self.marks = replace(
                self.marks, fault_issued=issued, fault_at=struck, fault_returned=returned
            )
            self.note(f"fault active (struck at +{struck:.1f} s)")
            self.wait_until(struck + s.heal_after_s, "fault active")
        finally:
            heal_at = self.clock()
            self.note(f"healing: geoha chaos {' '.join(s.chaos.heal)}")
            try:
                self.control.chaos(s.chaos.heal)
            except GeohaError as exc:  # the controller may still get there: settle and see
                self.heal_error = str(exc)
                self.note(f"the heal failed: {exc}")
            self.marks = replace(self.marks, heal_at=heal_at, heal_returned=self.clock())

    def drill_events(self) -> list[ControllerEvent]:
        """The controller's events on the drill's clock."""
        offset = time.time() - self.clock()
        return [
            ControllerEvent(e.t - offset, e.kind, e.node, e.target) for e in self.control.events()
        ]

    def wait_until(self, at: float, phase: str) -> None:
        """Sleep until `at` on the drill's clock, saying how the load fares every few seconds."""
        while (left := at - self.clock()) > 0:
            time.sleep(min(left, 1.0))
            if self.clock() - self.progress_at >= PROGRESS_EVERY_S:
                self.progress_at = self.clock()
                self.note(f"{phase}: {self.recent_load()}")

    def recent_load(self) -> str:
        since = self.clock() - PROGRESS_EVERY_S
        recent = [a for a in self.load.attempts() if a.done >= since]
        parts = []
        for region in self.settings.data_regions:
            reads = [a for a in recent if a.region == region and a.is_read]
            writes = [a for a in recent if a.region == region and not a.is_read]
            parts.append(
                f"{region} reads {sum(1 for a in reads if a.ok)}/{len(reads)} ok, "
                f"writes {sum(1 for a in writes if a.ok)}/{len(writes)}"
            )
        latest = self.sampler.latest()
        writable = [x.node for x in latest.samples if x.writable] if latest else []
        return f"last {PROGRESS_EVERY_S:g} s: {'; '.join(parts)}; writable: {writable or 'none'}"

    def settle(self) -> SettleState:
        deadline = self.clock() + self.settings.settle_timeout_s
        said = 0.0
        self.note("settling: waiting for a primary, the other data node streaming, DNS healthy")
        while True:
            state = self.control.settle_state()
            if state.missing is None:
                self.marks = replace(self.marks, settled_at=self.clock())
                self.note(f"settled: primary {state.primary}")
                return state
            if self.clock() >= deadline:
                self.note(
                    f"not settled after {self.settings.settle_timeout_s:g} s: {state.missing}"
                )
                return state
            if self.clock() - said >= 10:
                said = self.clock()
                self.note(f"settling: {state.missing}")
            time.sleep(SETTLE_POLL_S)

    def verify(self) -> tuple[dict[str, int] | None, str | None]:
        writes = self.load.writes()
        if self.before_verify is not None:
            self.before_verify(writes)
        acked = sum(1 for w in writes if w.acked_at is not None)
        self.note(f"verifying {len(writes)} writes ({acked} acknowledged) on the primary")
        try:
            return count_names(self.targets.write_dsn, [w.name for w in writes]), None
        except psycopg.Error as exc:
            return None, f"{type(exc).__name__}: {exc}".strip()
