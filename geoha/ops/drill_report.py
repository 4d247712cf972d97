"""A drill's report: its shape (the JSON `geoha drill failover --json` prints), built from the
drill's log by pure functions, and the summary of several drills.

geoha.ops.drill_render writes it as report.json, report.md and timeline.png.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TypedDict

from geoha.ops.drill_analysis import (
    FigureStats,
    RoleChange,
    SplitBrain,
    WriteCheck,
    answers_per_second,
    broken_promises,
    check_writes,
    clients_on,
    counts,
    dns_recovery,
    error_examples,
    error_kinds,
    first_ok_read_after,
    health_change_after,
    of_region,
    outages,
    per_second,
    r2,
    recovery_s,
    role_changes,
    split_brain,
    summarize,
)
from geoha.ops.drill_model import DrillLog, DrillSettings, Marks, WriteOutcome, WriteRecord


class OutageReport(TypedDict):
    kind: str
    """"reads" or "writes"."""
    start_s: float
    end_s: float | None
    failures: int


class RegionReport(TypedDict):
    """What the clients sent to one region's entry."""

    reads: dict[str, int]
    """"ok" and "failed" requests (reads and read-backs)."""
    writes: dict[str, int]
    read_rto_s: float | None
    write_rto_s: float | None
    outages: list[OutageReport]
    """Every outage after the fault, the heal's included."""
    errors: dict[str, int]


class HealthChangeReport(TypedDict):
    t: float
    region: str
    healthy: bool


class DnsReport(TypedDict):
    lost_region: str | None
    clients_on_lost_region: int
    """Clients whose DNS answer named the lost region when the fault struck."""
    clients_moved: int
    """Of them, those that got an answer naming another region later on."""
    dns_rto_s: float | None
    moved_median_s: float | None
    client_read_rto_s: float | None
    """Until the last of those clients read successfully again (None unless all did)."""
    detect_s: float | None
    """From the fault until the DNS marked the lost region unhealthy (None: not before the
    heal)."""
    restored_s: float | None
    """From the heal until the DNS marked it healthy again."""
    answers: dict[str, int]
    """Answers the clients got, per region."""
    health_changes: list[HealthChangeReport]


class WritesReport(TypedDict):
    sent: int
    acked: int
    acked_by_readback: int
    failed: int
    unknown: int
    verified: bool
    error: str | None
    lost: list[str]
    lost_read_back: int
    """Lost writes the clients had found by reading back."""
    duplicated: list[str]
    failed_but_present: list[str]
    unknown_present: int


class WriteLogEntry(TypedDict):
    name: str
    outcome: str
    acked_at_s: float | None
    by: str | None
    id: int | None
    attempts: int


class SplitBrainReport(TypedDict):
    start_s: float
    end_s: float
    nodes: list[str]
    rounds: int
    wal_advanced: list[str]
    acked_writes: int
    both_acknowledged: bool


class MarksReport(TypedDict):
    fault_issued_s: float | None
    fault_at_s: float | None
    fault_command_s: float | None
    heal_at_s: float | None
    heal_command_s: float | None
    load_end_s: float
    settled_at_s: float | None


class Timeline(TypedDict):
    seconds: int
    requests: dict[str, dict[str, list[int]]]
    """Per region: "read ok", "read failed", "write ok", "write failed" per second."""
    dns_answers: dict[str, list[int]]


class Verdict(TypedDict):
    ok: bool
    broken: list[str]
    warnings: list[str]


class DrillReport(TypedDict):
    fault: str
    chaos: dict[str, str]
    """The `geoha chaos` arguments that injected and healed it."""
    replication: str
    rate: float
    duration_s: float
    heal_after_s: float
    clients: int
    seed: int
    tag: str
    marks: MarksReport
    requests: dict[str, int]
    errors: dict[str, int]
    """Failed requests by kind ("write: 503 database unavailable", "read: connect failed")."""
    error_examples: dict[str, list[str]]
    """A few of what each kind of failure said (the API's message, the client's exception)."""
    write_rto_s: dict[str, float | None]
    read_rto_s: dict[str, float | None]
    dns_rto_s: float | None
    acked_writes: int
    acked_lost: int
    duplicated: int
    split_brain_moments: int
    regions: dict[str, RegionReport]
    dns: DnsReport
    writes: WritesReport
    split_brain: list[SplitBrainReport]
    role_changes: list[RoleChange]
    primary: str | None
    settled: bool
    timeline: Timeline
    write_log: list[WriteLogEntry]
    verdict: Verdict


# -- building it -------------------------------------------------------------------------


def region_report(
    log: DrillLog, region: str, fault_at: float, heal_at: float | None
) -> RegionReport:
    reads, writes = of_region(log.attempts, region, True), of_region(log.attempts, region, False)
    found: list[OutageReport] = [
        {"kind": kind, "start_s": round(o.start, 2), "end_s": r2(o.end), "failures": o.failures}
        for kind, attempts in (("reads", reads), ("writes", writes))
        for o in outages(attempts, fault_at)
    ]
    return {
        "reads": counts(reads),
        "writes": counts(writes),
        "read_rto_s": r2(recovery_s(reads, fault_at, heal_at)),
        "write_rto_s": r2(recovery_s(writes, fault_at, heal_at)),
        "outages": sorted(found, key=lambda o: o["start_s"]),
        "errors": error_kinds(reads + writes),
    }


def dns_report(log: DrillLog, lost: str | None, fault_at: float) -> DnsReport:
    heal_at = log.marks.heal_at
    answers = Counter(r.region for r in log.resolutions if r.region is not None)
    report: DnsReport = {
        "lost_region": lost,
        "clients_on_lost_region": 0,
        "clients_moved": 0,
        "dns_rto_s": None,
        "moved_median_s": None,
        "client_read_rto_s": None,
        "detect_s": None,
        "restored_s": None,
        "answers": dict(sorted(answers.items())),
        "health_changes": [
            {"t": round(c.t, 2), "region": c.region, "healthy": c.healthy} for c in log.dns_changes
        ],
    }
    if lost is None:
        return report
    recovery = dns_recovery(log.resolutions, lost, fault_at)
    lost_clients = clients_on(log.resolutions, lost, fault_at)
    reads_back = first_ok_read_after(log.attempts, lost_clients, fault_at)
    moved = sorted(recovery.moved)
    report["clients_on_lost_region"] = recovery.clients
    report["clients_moved"] = len(moved)
    report["dns_rto_s"] = r2(recovery.rto_s)
    report["moved_median_s"] = r2(statistics.median(moved)) if moved else None
    if lost_clients and len(reads_back) == len(lost_clients):
        report["client_read_rto_s"] = r2(max(reads_back))
    detect = health_change_after(log.dns_changes, lost, False, fault_at, heal_at)
    report["detect_s"] = r2(detect)
    report["restored_s"] = r2(health_change_after(log.dns_changes, lost, True, heal_at))
    return report


def writes_report(log: DrillLog, check: WriteCheck | None) -> WritesReport:
    outcomes = Counter(w.outcome for w in log.writes)
    return {
        "sent": len(log.writes),
        "acked": outcomes[WriteOutcome.ACKED],
        "acked_by_readback": check.acked_by_readback if check else 0,
        "failed": outcomes[WriteOutcome.FAILED],
        "unknown": outcomes[WriteOutcome.UNKNOWN],
        "verified": check is not None,
        "error": log.check_error,
        "lost": list(check.lost) if check else [],
        "lost_read_back": check.lost_read_back if check else 0,
        "duplicated": list(check.duplicated) if check else [],
        "failed_but_present": list(check.failed_but_present) if check else [],
        "unknown_present": check.unknown_present if check else 0,
    }


def marks_report(marks: Marks) -> MarksReport:
    def between(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else r2(b - a)

    return {
        "fault_issued_s": r2(marks.fault_issued),
        "fault_at_s": r2(marks.fault_at),
        "fault_command_s": between(marks.fault_issued, marks.fault_returned),
        "heal_at_s": r2(marks.heal_at),
        "heal_command_s": between(marks.heal_at, marks.heal_returned),
        "load_end_s": round(marks.load_end, 2),
        "settled_at_s": r2(marks.settled_at),
    }


def warnings(log: DrillLog, check: WriteCheck | None, settings: DrillSettings) -> list[str]:
    found: list[str] = []
    if check is not None and check.lost and not settings.sync:
        found.append(f"{len(check.lost)} acknowledged write(s) lost (asynchronous replication)")
    if check is not None and check.failed_but_present:
        found.append(
            f"{len(check.failed_but_present)} write(s) the clients were told had failed "
            "are stored all the same"
        )
    if check is not None and check.unknown_present:
        found.append(f"{check.unknown_present} write(s) of unknown outcome are stored")
    if log.capped:
        found.append("the request cap stopped the load early")
    if log.stragglers:
        found.append(f"{log.stragglers} client(s) still running when the drill went on")
    return found


def split_brain_report(span: SplitBrain) -> SplitBrainReport:
    return {
        "start_s": round(span.start, 2),
        "end_s": round(span.end, 2),
        "nodes": list(span.nodes),
        "rounds": span.rounds,
        "wal_advanced": list(span.wal_advanced),
        "acked_writes": span.acked_writes,
        "both_acknowledged": span.both_acknowledged,
    }


def write_log_entry(write: WriteRecord) -> WriteLogEntry:
    return {
        "name": write.name,
        "outcome": write.outcome.value,
        "acked_at_s": r2(write.acked_at),
        "by": None if write.acked_by is None else write.acked_by.value,
        "id": write.theme_id,
        "attempts": write.attempts,
    }


def build_report(settings: DrillSettings, log: DrillLog) -> DrillReport:
    marks = log.marks
    fault_at = marks.fault_at if marks.fault_at is not None else marks.load_end
    check = check_writes(log.writes, log.counts) if log.counts is not None else None
    regions = {r: region_report(log, r, fault_at, marks.heal_at) for r in settings.data_regions}
    spans = split_brain(
        log.rounds,
        [w.acked_at for w in log.writes if w.acked_at is not None],
        settings.sample_interval_s,
    )
    moments = sum(s.rounds for s in spans)
    settled = log.settle_error is None
    broken = broken_promises(
        check,
        log.check_error,
        split_moments=moments,
        sync=settings.sync,
        settled_error=log.settle_error,
        heal_error=log.heal_error,
    )
    seconds = math.ceil(max([marks.load_end, *(a.done for a in log.attempts)], default=0.0)) + 1
    dns = dns_report(log, settings.chaos.lost_region, fault_at)
    return {
        "fault": str(settings.fault),
        "chaos": {"inject": " ".join(settings.chaos.inject), "heal": " ".join(settings.chaos.heal)},
        "replication": "sync" if settings.sync else "async",
        "rate": settings.rate,
        "duration_s": settings.duration_s,
        "heal_after_s": settings.heal_after_s,
        "clients": log.clients,
        "seed": settings.seed,
        "tag": settings.tag,
        "marks": marks_report(marks),
        "requests": {"total": len(log.attempts), **counts(log.attempts)},
        "errors": error_kinds(log.attempts),
        "error_examples": error_examples(log.attempts),
        "write_rto_s": {r: regions[r]["write_rto_s"] for r in regions},
        "read_rto_s": {r: regions[r]["read_rto_s"] for r in regions},
        "dns_rto_s": dns["dns_rto_s"],
        "acked_writes": check.acked if check else sum(1 for w in log.writes if w.acked_at),
        "acked_lost": len(check.lost) if check else 0,
        "duplicated": len(check.duplicated) if check else 0,
        "split_brain_moments": moments,
        "regions": regions,
        "dns": dns,
        "writes": writes_report(log, check),
        "split_brain": [split_brain_report(span) for span in spans],
        "role_changes": role_changes(log.rounds),
        "primary": log.primary,
        "settled": settled,
        "timeline": {
            "seconds": seconds,
            "requests": per_second(log.attempts, settings.data_regions, seconds),
            "dns_answers": answers_per_second(log.resolutions, settings.data_regions, seconds),
        },
        "write_log": [write_log_entry(w) for w in log.writes],
        "verdict": {"ok": not broken, "broken": broken, "warnings": warnings(log, check, settings)},
    }


# -- several drills ----------------------------------------------------------------------


def figures(report: DrillReport) -> dict[str, float | None]:
    """The figures the summary of several drills compares, by name."""
    found: dict[str, float | None] = {}
    for region, value in report["write_rto_s"].items():
        found[f"write_rto_s.{region}"] = value
    for region, value in report["read_rto_s"].items():
        found[f"read_rto_s.{region}"] = value
    found["dns_rto_s"] = report["dns_rto_s"]
    found["dns_detect_s"] = report["dns"]["detect_s"]
    found["acked_writes"] = report["acked_writes"]
    found["acked_lost"] = report["acked_lost"]
    found["duplicated"] = report["duplicated"]
    found["split_brain_moments"] = report["split_brain_moments"]
    found["requests_failed"] = report["requests"]["failed"]
    found["writes_unknown"] = report["writes"]["unknown"]
    return found


class Summary(TypedDict):
    fault: str
    drills: int
    failed: list[int]
    """The drills (1-based) whose verdict found a promise broken."""
    figures: dict[str, FigureStats]


def summary(reports: Sequence[DrillReport]) -> Summary:
    return {
        "fault": reports[0]["fault"] if reports else "",
        "drills": len(reports),
        "failed": [i for i, r in enumerate(reports, 1) if not r["verdict"]["ok"]],
        "figures": summarize([figures(r) for r in reports]),
    }


def written_names(report: Mapping[str, object]) -> list[tuple[str, str]]:
    """(name, outcome) of every write a saved report lists (for `geoha drill verify`)."""
    entries = report.get("write_log")
    if not isinstance(entries, list):
        raise ValueError("no write_log in the report")
    return [(str(e["name"]), str(e["outcome"])) for e in entries if isinstance(e, dict)]
