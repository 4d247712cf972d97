"""Failover drills: figures from the event log (pure functions, no I/O).

Times are seconds since the load began. Definitions (docs/DESIGN.md, "Drills"):

- **Outage** of one client region and one kind of request (reads: reads and
  read-backs; writes): from a failed request until the first successful one
  that no failure follows within `stable_s` (a success between failures does
  not end it). Requests are placed at the moment their answer (or failure)
  came.
- **RTO** (`read_rto_s`, `write_rto_s`) of a client region: from the fault
  until the end of the first outage that began between the fault and the
  heal; 0 when none began; None when it had not ended when the log does, or
  when the region had no request after the fault.
- **DNS RTO** (`dns_rto_s`): the clients whose DNS answer named the lost
  region when the fault struck; from the fault until the last of them got an
  answer naming another region (None unless all did).
- **Split brain**: a sampling round in which two or more database nodes
  answered `pg_is_in_recovery() = false`.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypedDict

from geoha.ops.drill_model import (
    AckedBy,
    Attempt,
    DnsHealthChange,
    Resolution,
    Round,
    WriteOutcome,
    WriteRecord,
)

STABLE_S = 5.0
"""A success ends an outage only if no failure follows within this long (seconds)."""


def r2(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


# -- outages and RTO ---------------------------------------------------------------------


@dataclass(frozen=True)
class Outage:
    start: float
    end: float | None
    """The success that ended it (None: it had not ended when the log does)."""
    failures: int


def outages(attempts: Iterable[Attempt], since: float, stable_s: float = STABLE_S) -> list[Outage]:
    """The outages among `attempts` (one region, one kind) whose requests ended at `since` or
    later, in order."""
    found: list[Outage] = []
    start: float | None = None
    end: float | None = None
    failures = 0
    for a in sorted((a for a in attempts if a.done >= since), key=lambda a: a.done):
        if a.ok:
            if start is not None and end is None:
                end = a.done
            continue
        if start is not None and end is not None and a.done - end > stable_s:
            found.append(Outage(start, end, failures))
            start = None
        if start is None:
            start, failures = a.done, 0
        end = None
        failures += 1
    if start is not None:
        found.append(Outage(start, end, failures))
    return found


def recovery_s(
    attempts: Sequence[Attempt],
    fault_at: float,
    heal_at: float | None,
    stable_s: float = STABLE_S,
) -> float | None:
    """The RTO of one region and one kind of request (see the module's docstring)."""
    if not any(a.done >= fault_at for a in attempts):
        return None
    for outage in outages(attempts, fault_at, stable_s):
        if heal_at is not None and outage.start >= heal_at:
            break
        return None if outage.end is None else outage.end - fault_at
    return 0.0


def of_region(attempts: Iterable[Attempt], region: str, reads: bool) -> list[Attempt]:
    return [a for a in attempts if a.region == region and a.is_read == reads]


# -- DNS ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DnsRecovery:
    clients: int
    """Clients whose answer named the lost region when the fault struck."""
    moved: list[float]
    """For each of them that got an answer naming another region: how long after the fault."""

    @property
    def rto_s(self) -> float | None:
        if self.clients == 0 or len(self.moved) < self.clients:
            return None
        return max(self.moved)


def dns_recovery(resolutions: Sequence[Resolution], lost: str, fault_at: float) -> DnsRecovery:
    """How long the clients of the lost region kept being sent there (see the docstring)."""
    by_client: dict[int, list[Resolution]] = {}
    for r in sorted(resolutions, key=lambda r: r.t):
        if r.region is not None:
            by_client.setdefault(r.client, []).append(r)
    clients = 0
    moved: list[float] = []
    for answers in by_client.values():
        before = [r for r in answers if r.t <= fault_at]
        if not before or before[-1].region != lost:
            continue
        clients += 1
        away = next((r for r in answers if r.t > fault_at and r.region != lost), None)
        if away is not None:
            moved.append(away.t - fault_at)
    return DnsRecovery(clients, moved)


def health_change_after(
    changes: Iterable[DnsHealthChange],
    region: str,
    healthy: bool,
    after: float | None,
    before: float | None = None,
) -> float | None:
    """How long after `after` the region's DNS health first turned `healthy`, if it did before
    `before` (None: it did not)."""
    if after is None:
        return None
    times = [
        c.t
        for c in changes
        if c.region == region
        and c.healthy is healthy
        and c.t >= after
        and (before is None or c.t < before)
    ]
    return min(times) - after if times else None


def first_ok_read_after(
    attempts: Iterable[Attempt], clients: set[int], fault_at: float
) -> list[float]:
    """For each of `clients`, how long after the fault its first successful read came."""
    first: dict[int, float] = {}
    for a in attempts:
        if a.client in clients and a.ok and a.is_read and a.done > fault_at:
            first[a.client] = min(first.get(a.client, a.done), a.done)
    return [t - fault_at for t in first.values()]


def clients_on(resolutions: Iterable[Resolution], region: str, at: float) -> set[int]:
    """The clients whose latest answer at `at` named `region`."""
    latest: dict[int, Resolution] = {}
    for r in sorted(resolutions, key=lambda r: r.t):
        if r.t <= at and r.region is not None:
            latest[r.client] = r
    return {c for c, r in latest.items() if r.region == region}


# -- the database nodes ------------------------------------------------------------------


@dataclass(frozen=True)
class SplitBrain:
    start: float
    end: float
    nodes: tuple[str, ...]
    rounds: int
    wal_advanced: tuple[str, ...]
    """Writable nodes whose WAL position moved on during the span (they took writes)."""
    acked_writes: int
    """Writes acknowledged to clients during the span."""

    @property
    def both_acknowledged(self) -> bool:
        return len(self.wal_advanced) >= 2 and self.acked_writes > 0


def writable_nodes(round_: Round) -> tuple[str, ...]:
    return tuple(s.node for s in round_.samples if s.writable)


def split_brain(
    rounds: Sequence[Round], acked_at: Sequence[float], interval_s: float
) -> list[SplitBrain]:
    """Spans of consecutive rounds with two or more writable nodes."""
    spans: list[list[Round]] = []
    previous_split = False
    for round_ in rounds:
        split = len(writable_nodes(round_)) >= 2
        if split and previous_split:
            spans[-1].append(round_)
        elif split:
            spans.append([round_])
        previous_split = split
    found: list[SplitBrain] = []
    for span in spans:
        nodes = tuple(sorted({n for r in span for n in writable_nodes(r)}))
        first = {s.node: s.lsn for s in span[0].samples}
        last = {s.node: s.lsn for s in span[-1].samples}
        advanced = tuple(
            n for n in nodes if (a := first.get(n)) is not None and (b := last.get(n)) and b > a
        )
        start, end = span[0].t, span[-1].t
        acks = sum(1 for t in acked_at if start <= t <= end + interval_s)
        found.append(SplitBrain(start, end, nodes, len(span), advanced, acks))
    return found


class RoleChange(TypedDict):
    t: float
    node: str
    db: str
    """"primary" (writable), "replica" (in recovery) or "down" (no answer)."""
    patroni: str | None


def db_state(writable: bool | None) -> str:
    return "down" if writable is None else "primary" if writable else "replica"


def role_changes(rounds: Iterable[Round]) -> list[RoleChange]:
    """Each node's state in the first round, then each change."""
    last: dict[str, tuple[str, str | None]] = {}
    changes: list[RoleChange] = []
    for round_ in rounds:
        for s in round_.samples:
            state = (db_state(s.writable), s.patroni_role)
            if last.get(s.node) != state:
                last[s.node] = state
                changes.append(
                    {"t": round(round_.t, 2), "node": s.node, "db": state[0], "patroni": state[1]}
                )
    return changes


# -- acknowledged writes -----------------------------------------------------------------


@dataclass(frozen=True)
class WriteCheck:
    """The clients' writes against what the primary holds (`counts`: rows per name)."""

    acked: int
    acked_by_readback: int
    lost: tuple[str, ...]
    """Acknowledged names with no row."""
    lost_read_back: int
    """Of them, those acknowledged by reading back (the read showed a row the primary lacks)."""
    duplicated: tuple[str, ...]
    """Names with more than one row (each write meant one)."""
    failed: int
    unknown: int
    failed_but_present: tuple[str, ...]
    """Writes the clients were told had failed that were stored all the same."""
    unknown_present: int


def check_writes(writes: Sequence[WriteRecord], counts: Mapping[str, int]) -> WriteCheck:
    acked = [w for w in writes if w.outcome is WriteOutcome.ACKED]
    failed = [w for w in writes if w.outcome is WriteOutcome.FAILED]
    unknown = [w for w in writes if w.outcome is WriteOutcome.UNKNOWN]
    lost = [w for w in acked if counts.get(w.name, 0) == 0]
    return WriteCheck(
        acked=len(acked),
        acked_by_readback=sum(1 for w in acked if w.acked_by is AckedBy.READ_BACK),
        lost=tuple(w.name for w in lost),
        lost_read_back=sum(1 for w in lost if w.acked_by is AckedBy.READ_BACK),
        duplicated=tuple(sorted(n for n, c in counts.items() if c > 1)),
        failed=len(failed),
        unknown=len(unknown),
        failed_but_present=tuple(w.name for w in failed if counts.get(w.name, 0) > 0),
        unknown_present=sum(1 for w in unknown if counts.get(w.name, 0) > 0),
    )


def broken_promises(
    check: WriteCheck | None,
    check_error: str | None,
    *,
    split_moments: int,
    sync: bool,
    settled_error: str | None,
    heal_error: str | None = None,
) -> list[str]:
    """What the drill found broken, one sentence each (empty: every promise kept).

    The promises: in sync mode no acknowledged write is lost (RPO 0); no write is
    stored twice; never two writable primaries; the cluster settles after the heal.
    """
    broken: list[str] = []
    if check is None:
        broken.append(f"acknowledged writes not verified: {check_error or 'no check ran'}")
    else:
        if check.lost and sync:
            names = ", ".join(check.lost[:5]) + (" ..." if len(check.lost) > 5 else "")
            how = (
                f", {check.lost_read_back} of them found earlier by reading back"
                if check.lost_read_back
                else ""
            )
            broken.append(
                f"RPO: {len(check.lost)} acknowledged write(s) missing on the primary{how} "
                f"(synchronous replication promises none): {names}"
            )
        if check.duplicated:
            names = ", ".join(check.duplicated[:5]) + (" ..." if len(check.duplicated) > 5 else "")
            broken.append(f"{len(check.duplicated)} write(s) stored more than once: {names}")
    if split_moments:
        broken.append(f"split brain: two writable primaries in {split_moments} sample round(s)")
    if heal_error is not None:
        broken.append(f"the heal failed: {heal_error}")
    if settled_error is not None:
        broken.append(f"the cluster did not settle after the heal: {settled_error}")
    return broken


# -- time series -------------------------------------------------------------------------


def per_second(
    attempts: Iterable[Attempt], regions: Sequence[str], seconds: int
) -> dict[str, dict[str, list[int]]]:
    """Per region, "read ok", "read failed", "write ok", "write failed" per second (by the
    time each answer came)."""
    series = {
        r: {k: [0] * seconds for k in ("read ok", "read failed", "write ok", "write failed")}
        for r in regions
    }
    for a in attempts:
        second = int(a.done)
        if a.region in series and 0 <= second < seconds:
            kind = "read" if a.is_read else "write"
            series[a.region][f"{kind} {'ok' if a.ok else 'failed'}"][second] += 1
    return series


def answers_per_second(
    resolutions: Iterable[Resolution], regions: Sequence[str], seconds: int
) -> dict[str, list[int]]:
    series = {r: [0] * seconds for r in regions}
    for r in resolutions:
        if r.region in series and 0 <= int(r.t) < seconds:
            series[r.region][int(r.t)] += 1
    return series


def error_kinds(attempts: Iterable[Attempt]) -> dict[str, int]:
    counts = Counter(f"{a.op.value}: {a.outcome}" for a in attempts if not a.ok)
    return dict(sorted(counts.items()))


def error_examples(attempts: Iterable[Attempt], per_kind: int = 3) -> dict[str, list[str]]:
    """Up to `per_kind` different details of each kind of failure, the first ones seen."""
    examples: dict[str, list[str]] = {}
    for a in attempts:
        if a.ok or a.detail is None:
            continue
        seen = examples.setdefault(f"{a.op.value}: {a.outcome}", [])
        if len(seen) < per_kind and a.detail not in seen:
            seen.append(a.detail)
    return dict(sorted(examples.items()))


def counts(attempts: Iterable[Attempt]) -> dict[str, int]:
    done = list(attempts)
    return {"ok": sum(1 for a in done if a.ok), "failed": sum(1 for a in done if not a.ok)}


# -- several drills ----------------------------------------------------------------------


class FigureStats(TypedDict):
    min: float | None
    median: float | None
    max: float | None
    missing: int
    """Drills in which the figure had no value (e.g. an RTO that never ended)."""


def figure_stats(values: Sequence[float | None]) -> FigureStats:
    present = [v for v in values if v is not None]
    if not present:
        return {"min": None, "median": None, "max": None, "missing": len(values)}
    return {
        "min": r2(min(present)),
        "median": r2(statistics.median(present)),
        "max": r2(max(present)),
        "missing": len(values) - len(present),
    }


def summarize(figures: Sequence[Mapping[str, float | None]]) -> dict[str, FigureStats]:
    """min / median / max of each figure over several drills (`figures`: one mapping each)."""
    names = list(dict.fromkeys(n for f in figures for n in f))
    return {n: figure_stats([f.get(n) for f in figures]) for n in names}
