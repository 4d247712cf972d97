"""`geoha load`, the pure part: its arguments checked, and its report from the clients' attempts.

The load itself is the drill's clients (geoha.ops.drill_clients) through
geoha.commands.load; everything here is plain data in, plain data out, so a
test or a benchmark can build the same report from any list of attempts.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypedDict

from geoha.errors import BadInput
from geoha.ops.drill_model import OK, Attempt

MAX_RATE = 5000.0
"""Operations per second, all clients together."""
MAX_DURATION_S = 3600.0
UNRESOLVED = "unresolved"
"""The `by_region` key of the requests a client could not send: it had no DNS answer."""


@dataclass(frozen=True)
class LoadSettings:
    """One load as asked for."""

    rate: float
    """Operations per second, all clients together."""
    duration_s: float
    """Seconds of load: no new operation after it (writes in flight may still decide)."""
    read_share: float
    """Share of the operations that are reads (0 to 1); the others create themes."""
    region: str | None
    """The data region whose frontend LB takes every request (None: each client follows the
    global DNS)."""


def load_settings(
    rate: float,
    duration_s: float,
    read_share: float,
    region: str | None,
    data_regions: Sequence[str],
) -> LoadSettings:
    """The arguments of `geoha load` checked; BadInput names the first one out of range."""
    if not 0 < rate <= MAX_RATE:  # written so that NaN fails too
        raise BadInput(
            f"--rate: more than 0 and at most {MAX_RATE:g} operations per second (got {rate:g})"
        )
    if not 0 < duration_s <= MAX_DURATION_S:
        raise BadInput(
            f"--duration: more than 0 and at most {MAX_DURATION_S:g} seconds (got {duration_s:g})"
        )
    if not 0 <= read_share <= 1:
        raise BadInput(f"--read-share: a fraction from 0 to 1 (got {read_share:g})")
    if region is not None and region not in data_regions:
        raise BadInput(
            f"--region: one of the data regions {', '.join(data_regions)} (got {region!r})"
        )
    return LoadSettings(rate, duration_s, read_share, region)


class LatencyMs(TypedDict):
    """Milliseconds from a request's sending to its answer or failure (None: no request)."""

    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None


class Tally(TypedDict):
    requests: int
    ok: int
    failed: int
    outcomes: dict[str, int]
    """Requests per outcome: "ok", or the failure ("timeout", "503 no server", ...)."""
    reads: int
    """Reads, the read-backs that decide a write's unknown outcome included."""
    writes: int
    latency_ms: LatencyMs


class LoadReport(Tally):
    """What `geoha load --json` prints: the settings, then the tally of every request, then
    the same tally per region of the entry each request went to."""

    region: str | None
    rate: float
    duration_s: float
    read_share: float
    clients: int
    ran_s: float
    """Seconds the load made new operations: the duration, or less when interrupted or capped."""
    interrupted: bool
    capped: bool
    """The request cap stopped the clients early."""
    achieved_rate: float
    """Requests per second sent while the load ran (retries and read-backs included)."""
    by_region: dict[str, Tally]


def percentile(ordered: Sequence[float], p: float) -> float:
    """The nearest-rank `p`th percentile of non-empty, ascending `ordered`."""
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_ms(attempts: Iterable[Attempt]) -> LatencyMs:
    ordered = sorted((a.done - a.sent) * 1000 for a in attempts)
    if not ordered:
        return {"p50": None, "p90": None, "p99": None, "max": None}
    return {
        "p50": round(percentile(ordered, 50), 1),
        "p90": round(percentile(ordered, 90), 1),
        "p99": round(percentile(ordered, 99), 1),
        "max": round(ordered[-1], 1),
    }


def tally(attempts: Sequence[Attempt]) -> Tally:
    ok = sum(1 for a in attempts if a.ok)
    reads = sum(1 for a in attempts if a.is_read)
    outcomes = Counter(a.outcome for a in attempts)
    return {
        "requests": len(attempts),
        "ok": ok,
        "failed": len(attempts) - ok,
        "outcomes": dict(sorted(outcomes.items(), key=lambda kv: (-kv[1], kv[0]))),
        "reads": reads,
        "writes": len(attempts) - reads,
        "latency_ms": latency_ms(attempts),
    }


def load_report(
    attempts: Sequence[Attempt],
    settings: LoadSettings,
    *,
    clients: int,
    ran_s: float,
    interrupted: bool = False,
    capped: bool = False,
) -> LoadReport:
    """The report of one load from every request its clients made."""
    regions: dict[str, list[Attempt]] = {}
    for a in attempts:
        regions.setdefault(a.region or UNRESOLVED, []).append(a)
    sent_while_running = sum(1 for a in attempts if a.sent <= ran_s)
    return {
        "region": settings.region,
        "rate": settings.rate,
        "duration_s": settings.duration_s,
        "read_share": settings.read_share,
        "clients": clients,
        "ran_s": round(ran_s, 2),
        "interrupted": interrupted,
        "capped": capped,
        **tally(attempts),
        "achieved_rate": round(sent_while_running / ran_s, 1) if ran_s > 0 else 0.0,
        "by_region": {region: tally(regions[region]) for region in sorted(regions)},
    }


def failures(tallied: Tally) -> str:
    """The failed requests by outcome, most first: "timeout 3, 503 no server 1"."""
    return ", ".join(f"{o} {n}" for o, n in tallied["outcomes"].items() if o != OK)
