"""What the health monitor shows: `geoha monitor --json`, the dashboard's `/api/state`
and the monitor's line in the controller's status. Types and pure helpers only, so
the commands that show them import nothing heavy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict

from geoha.ops.autoscale import GroupStatus
from geoha.ops.incidents import Incident


class CheckStatus(TypedDict):
    url: str
    ok: bool | None
    latency_ms: float | None
    detail: str


class RegionDnsStatus(TypedDict):
    healthy: bool
    weight: int
    expected_share: float
    """The share of answers its weight and the regions' health call for."""
    answered_share: float | None
    """The share of weighted answers it got over the last minute (None: no answers)."""
    answers: int


class RegionDatabaseStatus(TypedDict):
    node: str
    role: str | None
    healthy: bool
    detail: str
    replication_state: str | None
    sync_state: str | None
    write_lag_bytes: int | None
    replay_lag_bytes: int | None
    write_lag_ms: float | None
    replay_lag_ms: float | None


class LbServer(TypedDict):
    backend: str
    server: str
    status: str


class LbStatus(TypedDict):
    node: str
    role: str
    healthy: bool
    servers: list[LbServer]
    error: str | None


class RegionStatus(TypedDict):
    region: str
    up: bool
    """Its entry passes DNS's health check (with the threshold applied)."""
    entry: CheckStatus
    api: CheckStatus
    dns: RegionDnsStatus
    database: RegionDatabaseStatus
    lbs: list[LbStatus]


class IncidentStatus(TypedDict):
    id: int | None
    subject: str
    region: str | None
    cause: str
    started_at: float
    ended_at: float | None
    duration_s: float
    resolution: str | None
    open: bool


class MonitorSummary(TypedDict):
    """The monitor in the controller's status."""

    dashboard_url: str
    metrics_url: str
    running: bool
    error: str | None
    incidents_open: int


class MonitorStatus(TypedDict):
    dashboard_url: str
    metrics_url: str
    at: float | None
    """When the latest round was taken (None before the first)."""
    interval_s: int
    watching: bool
    """Incidents are being opened (the deployment has been ready and is not stopping)."""
    rounds: int
    dns_server: str
    name: str
    primary: str | None
    regions: list[RegionStatus]
    incidents: list[IncidentStatus]
    autoscale: list[GroupStatus]
    """Each web and API group: serving, desired, min, max, CPU and the last changes."""


def incident_status(incident: Incident, now: float) -> IncidentStatus:
    return {
        "id": incident.id,
        "subject": incident.subject,
        "region": incident.region,
        "cause": incident.cause,
        "started_at": incident.started_at,
        "ended_at": incident.ended_at,
        "duration_s": round(incident.duration_s(now), 3),
        "resolution": incident.resolution,
        "open": incident.open,
    }


def expected_shares(weights: Mapping[str, int], healthy: Mapping[str, bool]) -> dict[str, float]:
    """Each region's share of answers under Route 53's rules: weight over the healthy
    regions' total weight (all zero: equal), every region when none is healthy."""
    pool = [r for r in weights if healthy[r]] or list(weights)
    total = sum(weights[r] for r in pool)
    return {
        r: (0.0 if r not in pool else weights[r] / total if total else 1 / len(pool))
        for r in weights
    }
