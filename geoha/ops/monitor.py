"""The health monitor (the local stand-in for UptimeRobot) and the dashboard it serves.

Run by the controller next to the DNS server. Each round follows a round of the
DNS health checks (every `dns.health_check_interval_s`) and takes, per data
region: that round's entry check (frontend LB -> ... -> the region's database,
the check DNS decides on), a check of the API's `/health/deep` through the
region's backend LB, the database node's role as the controller last saw it,
and its replication lag from the primary's `pg_stat_replication` (bytes and ms,
write and replay). Rounds go to SQLite (geoha.ops.monitor_store); incidents
follow Route 53's threshold rule (geoha.ops.incidents) once the deployment has
been ready, and end with "deployment stopped" when it stops.

On `monitor.local_address:monitor.local_port` it serves the dashboard (`/`),
its state and history as JSON (`/api/state`, `/api/history?minutes=N`) and
Prometheus metrics (`/metrics`, geoha.ops.metrics).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import psycopg

from geoha.data.cluster import REPLICATION_QUERY, Replication, read_replication
from geoha.db_access import SUPERUSER, Secrets
from geoha.health import DbRole, Health, entry_check
from geoha.ops.autoscale import GroupStatus
from geoha.ops.http_server import HttpServer, Request, Response
from geoha.ops.incidents import Incident, Observation, SubjectState, close_all, resume, track
from geoha.ops.metrics import MetricsView, exposition
from geoha.ops.monitor_status import (
    CheckStatus,
    LbServer,
    LbStatus,
    MonitorStatus,
    MonitorSummary,
    RegionStatus,
    expected_shares,
    incident_status,
)
from geoha.ops.monitor_store import MonitorStore, RegionSample
from geoha.plan import Node, NodeRole, Plan
from geoha.render.haproxy import admin_socket
from geoha.traffic.dns import CheckResult
from geoha.traffic.dns_server import DnsState, HealthChecker, Service, timed_check
from geoha.traffic.lb_admin import LbAdminError, server_states

HISTORY_FILE = "monitor.sqlite"
RECENT_INCIDENTS = 20
"""Incidents in the state: the open ones, then the latest ended ones, at most this many."""
SHARE_WINDOW_S = 60.0
"""DNS shares are counted over the answers of this last stretch (seconds)."""
HISTORY_MINUTES_MAX = 60
PRUNE_EVERY_S = 300.0
LAG_TIMEOUT_S = 1.0
"""How long reading pg_stat_replication may take in a round."""
STOPPED = "deployment stopped"

STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
    "/favicon.svg": ("favicon.svg", "image/svg+xml"),
}
"""The dashboard's files (geoha/ops/dashboard/), by path."""


@dataclass(frozen=True)
class _DnsView:
    """The weighted records as the monitor shows them, taken once per request."""

    weights: dict[str, int]
    healthy: dict[str, bool]
    expected: dict[str, float]
    """Each region's share of answers under Route 53's rules."""
    answered: dict[str, float | None]
    """Each region's share of the answers over the last minute."""


@dataclass(frozen=True)
class Sources:
    """What the monitor reads from the controller, each call giving the latest."""

    dns: DnsState
    checker: HealthChecker
    dns_server: str
    """HOST:PORT of the DNS server."""
    entry_urls: Mapping[str, str]
    """Each data region's URL that the DNS health checks probe."""
    node_health: Callable[[], Mapping[str, Health]]
    """Every node's health as the controller last probed it."""
    phase: Callable[[], str]
    """The controller's phase: "starting", "ready", "failed" or "stopping"."""
    secrets: Callable[[], Secrets | None]
    on_incident: Callable[[Incident], None]
    """Told of each incident opened and closed (to log it); must not raise."""
    autoscale: Callable[[], list[GroupStatus]] = list
    """Each web and API group as the autoscaler runs it."""


class Monitor(Service):
    def __init__(self, plan: Plan, sources: Sources) -> None:
        self.plan = plan
        self.sources = sources
        spec = plan.spec
        self.threshold = spec.dns.failure_threshold
        self.timeout_s = spec.dns.health_check_timeout_s
        self.base_url = f"http://{spec.monitor.local_address}:{spec.monitor.local_port}"
        self.http = HttpServer(spec.monitor.local_address, spec.monitor.local_port, self.route)
        self.store: MonitorStore | None = None
        self.client: httpx.AsyncClient | None = None
        self.running = False
        self.error: str | None = None
        """Why the dashboard is not served, if it is not."""
        self.round_error: str | None = None
        self.subjects: dict[str, SubjectState] = {}
        self.watching = False
        self.rounds = 0
        self.incidents_total = 0
        self.latest: dict[str, RegionSample] = {}
        self.entry: dict[str, CheckResult] = {}
        self.api: dict[str, CheckResult] = {}
        self.replication: dict[str, Replication] = {}
        self.primary: str | None = None
        self.answers: deque[tuple[float, Counter[str]]] = deque()
        self._pending: dict[str, CheckResult] | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._db: psycopg.AsyncConnection[Any] | None = None
        self._db_node: str | None = None
        self._pruned_at = 0.0

    @property
    def dashboard_url(self) -> str:
        return self.base_url + "/"

    @property
    def metrics_url(self) -> str:
        return self.base_url + "/metrics"

    # -- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        """Open the history, serve HTTP, follow the DNS checks. A port that cannot be bound
        is reported (`error`), not fatal: the monitor still records."""
        self.store = MonitorStore(self.plan.run_dir / HISTORY_FILE)
        self.subjects = resume(self.store.incidents(1000, open_only=True), self.threshold)
        self.incidents_total = self.store.count_incidents()
        self.client = httpx.AsyncClient(timeout=self.timeout_s)
        try:
            await self.http.start()
        except OSError as exc:
            self.error = f"monitor: cannot serve on {self.base_url}: {exc}"
        else:
            self.running = True
        self.sources.checker.on_round.append(self._on_round)
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        """Stop. When the deployment stops, open incidents end as "deployment stopped";
        otherwise (the controller alone goes) they stay open for the next monitor."""
        with contextlib.suppress(ValueError):
            self.sources.checker.on_round.remove(self._on_round)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.store is not None and self.sources.phase() == "stopping":
            await self._incidents(time.time(), {})
        await self.http.close()
        self.running = False
        await self._close_db()
        if self.client is not None:
            await self.client.aclose()
        if self.store is not None:
            self.store.close()

    def _on_round(self, results: dict[str, CheckResult]) -> None:
        self._pending = results
        self._ready.set()

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            if self._pending is not None:
                entry, self._pending = self._pending, None
                try:
                    await self.round(entry, time.time())
                except Exception as exc:  # one bad round must not end the monitor
                    self.round_error = f"the last monitor round failed: {exc}"
                else:
                    self.round_error = None

    # -- one round --------------------------------------------------------------------
    async def round(self, entry: dict[str, CheckResult], now: float) -> None:
        """Record one round of checks taken at `now`, and the incidents it opens or ends."""
        assert self.store is not None and self.client is not None
        regions = list(self.plan.spec.data_regions)
        api = await asyncio.gather(*(self._api_check(r) for r in regions))
        self.entry, self.api = entry, dict(zip(regions, api, strict=True))
        health = self.sources.node_health()
        self.primary = next(
            (n for n, h in health.items() if h.db_role is DbRole.PRIMARY and h.healthy), None
        )
        self.replication = await self._read_replication()
        self.latest = {r: self._sample(r, now, health) for r in regions}
        self._count_answers(now)
        self.rounds += 1
        await asyncio.to_thread(self.store.add_samples, list(self.latest.values()))
        await self._incidents(now, health)
        if now - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = now
            monitor = self.plan.spec.monitor
            await asyncio.to_thread(
                self.store.prune, now, monitor.history_days * 86400, monitor.history_max_rows
            )

    async def _api_check(self, region: str) -> CheckResult:
        """The API's deep health through the region's backend LB, as DNS checks an entry."""
        client = self.client
        assert client is not None

        async def probe() -> CheckResult:
            return CheckResult(*await entry_check(self.api_url(region), client))

        return await timed_check(probe, self.timeout_s)

    def api_url(self, region: str) -> str:
        lb = self.plan.only(region, NodeRole.BACKEND_LB)
        return f"http://{lb.address}:{lb.ports['http']}/health/deep"

    async def _read_replication(self) -> dict[str, Replication]:
        """pg_stat_replication on the primary through a kept connection; {} when unreadable."""
        if self.primary is None:
            await self._close_db()
            return {}
        try:
            async with asyncio.timeout(LAG_TIMEOUT_S):
                conn = await self._connection(self.plan.node(self.primary))
                if conn is None:
                    return {}
                cursor = await conn.execute(REPLICATION_QUERY)
                return read_replication(await cursor.fetchall())
        except (TimeoutError, psycopg.Error):
            await self._close_db()
            return {}

    async def _connection(self, primary: Node) -> psycopg.AsyncConnection[Any] | None:
        if self._db is not None and self._db_node == primary.name and not self._db.closed:
            return self._db
        await self._close_db()
        secrets = self.sources.secrets()
        if secrets is None:
            return None
        self._db = await psycopg.AsyncConnection.connect(
            host=primary.address,
            port=primary.ports["postgres"],
            user=SUPERUSER,
            password=secrets.superuser,
            dbname="postgres",
            connect_timeout=1,
            autocommit=True,
            application_name="geoha-monitor",
        )
        self._db_node = primary.name
        return self._db

    async def _close_db(self) -> None:
        if self._db is not None:
            with contextlib.suppress(psycopg.Error):
                await self._db.close()
        self._db, self._db_node = None, None

    def _sample(self, region: str, now: float, health: Mapping[str, Health]) -> RegionSample:
        entry, api = self.entry.get(region), self.api.get(region)
        db = self.plan.database_node(region)
        role = health[db.name].db_role if db.name in health else None
        row = self.replication.get(db.name)
        primary = db.name == self.primary
        return RegionSample(
            at=now,
            region=region,
            entry_ok=entry.passed if entry else None,
            entry_ms=_ms(entry.latency_s) if entry else None,
            api_ok=api.passed if api else None,
            api_ms=_ms(api.latency_s) if api else None,
            dns_healthy=self.sources.dns.healthy(region),
            db_node=db.name,
            db_role=role.value if role else None,
            replication_state="primary" if primary else row["replication_state"] if row else None,
            write_lag_bytes=0 if primary else row["write_lag_bytes"] if row else None,
            replay_lag_bytes=0 if primary else row["lag_bytes"] if row else None,
            write_lag_ms=0.0 if primary else row["write_lag_ms"] if row else None,
            replay_lag_ms=0.0 if primary else row["lag_ms"] if row else None,
        )

    def _count_answers(self, now: float) -> None:
        self.answers.append((now, Counter(self.sources.dns.answers)))
        while self.answers and self.answers[0][0] < now - SHARE_WINDOW_S:
            self.answers.popleft()

    def observations(self, health: Mapping[str, Health]) -> list[Observation]:
        """This round's checks of every subject incidents are kept for."""
        seen: list[Observation] = []
        for region in self.latest:
            for what, result in (("entry", self.entry.get(region)), ("api", self.api.get(region))):
                if result is not None:
                    seen.append(
                        Observation(f"{what} {region}", region, result.passed, result.detail)
                    )
        for node in self.plan.database_nodes:
            state = health.get(node.name, Health(False, "not probed yet"))
            seen.append(
                Observation(f"database {node.name}", node.region, state.healthy, state.detail)
            )
        primary = self.primary
        seen.append(
            Observation("primary", None, primary is not None, primary or "no running primary")
        )
        return seen

    async def _incidents(self, now: float, health: Mapping[str, Health]) -> None:
        assert self.store is not None
        phase = self.sources.phase()
        if phase == "stopping":
            result = close_all(self.subjects, now, STOPPED)
            self.watching = False
        elif self.watching or phase == "ready":
            result = track(self.subjects, self.observations(health), now, self.threshold)
            self.watching = True
        else:
            return
        self.subjects = result.states
        for incident in result.opened:
            stored = await asyncio.to_thread(self.store.save_incident, incident)
            subject = self.subjects[incident.subject]
            self.subjects[incident.subject] = replace(subject, incident=stored)
            self.incidents_total += 1
            self.sources.on_incident(stored)
        for incident in result.closed:
            await asyncio.to_thread(self.store.save_incident, incident)
            self.sources.on_incident(incident)

    # -- what it shows -----------------------------------------------------------------
    def shares(self) -> dict[str, float | None]:
        """Each region's share of the weighted answers over the last minute."""
        if len(self.answers) < 2:
            return {r: None for r in self.plan.spec.data_regions}
        delta = self.answers[-1][1] - self.answers[0][1]
        total = sum(delta.values())
        return {r: (delta[r] / total if total else None) for r in self.plan.spec.data_regions}

    def summary(self) -> MonitorSummary:
        return {
            "dashboard_url": self.dashboard_url,
            "metrics_url": self.metrics_url,
            "running": self.running,
            "error": self.error or self.round_error,
            "incidents_open": sum(1 for s in self.subjects.values() if s.incident is not None),
        }

    async def status(self) -> MonitorStatus:
        now = time.time()
        assert self.store is not None
        incidents = await asyncio.to_thread(self.store.incidents, RECENT_INCIDENTS)
        lbs = await asyncio.to_thread(self._lb_states)
        dns, health = self._dns_view(), self.sources.node_health()
        return {
            "dashboard_url": self.dashboard_url,
            "metrics_url": self.metrics_url,
            "at": max((s.at for s in self.latest.values()), default=None),
            "interval_s": self.plan.spec.dns.health_check_interval_s,
            "watching": self.watching or self.sources.phase() == "ready",
            "rounds": self.rounds,
            "dns_server": self.sources.dns_server,
            "name": self.plan.spec.dns.fqdn,
            "primary": self.primary,
            "regions": [
                self._region_status(r, lbs, dns, health) for r in self.plan.spec.data_regions
            ],
            "incidents": [incident_status(i, now) for i in incidents],
            "autoscale": self.sources.autoscale(),
        }

    def _dns_view(self) -> _DnsView:
        dns = self.sources.dns
        weights = {r.region: r.weight for r in dns.records}
        healthy = {r: dns.healthy(r) for r in weights}
        return _DnsView(weights, healthy, expected_shares(weights, healthy), self.shares())

    def _region_status(
        self,
        region: str,
        lbs: dict[str, LbStatus],
        view: _DnsView,
        node_health: Mapping[str, Health],
    ) -> RegionStatus:
        sample = self.latest.get(region)
        db = self.plan.database_node(region)
        health = node_health.get(db.name, Health(False, "not probed yet"))
        row = self.replication.get(db.name)
        return {
            "region": region,
            "up": view.healthy.get(region, False),
            "entry": _check(self.sources.entry_urls[region], self.entry.get(region)),
            "api": _check(self.api_url(region), self.api.get(region)),
            "dns": {
                "healthy": view.healthy.get(region, False),
                "weight": view.weights.get(region, 0),
                "expected_share": round(view.expected.get(region, 0.0), 4),
                "answered_share": _round(view.answered[region]),
                "answers": self.sources.dns.answers[region],
            },
            "database": {
                "node": db.name,
                "role": health.db_role.value if health.db_role else None,
                "healthy": health.healthy,
                "detail": health.detail,
                "replication_state": sample.replication_state if sample else None,
                "sync_state": row["sync_state"] if row else None,
                "write_lag_bytes": sample.write_lag_bytes if sample else None,
                "replay_lag_bytes": sample.replay_lag_bytes if sample else None,
                "write_lag_ms": sample.write_lag_ms if sample else None,
                "replay_lag_ms": sample.replay_lag_ms if sample else None,
            },
            "lbs": [
                lbs[n.name]
                for role in (NodeRole.FRONTEND_LB, NodeRole.BACKEND_LB)
                for n in self.plan.in_region(region, role)
            ],
        }

    def _lb_states(self) -> dict[str, LbStatus]:
        """Each LB's servers and their status, from HAProxy's admin socket."""
        health = self.sources.node_health()
        result: dict[str, LbStatus] = {}
        for node in self.plan.nodes:
            if node.role not in (NodeRole.FRONTEND_LB, NodeRole.BACKEND_LB):
                continue
            servers: list[LbServer] = []
            error = None
            try:
                states = server_states(Path(admin_socket(node)))
            except LbAdminError as exc:
                error = str(exc)
            else:
                servers = [
                    {"backend": backend, "server": server, "status": status}
                    for backend, by_server in states.items()
                    for server, status in by_server.items()
                ]
            node_health = health.get(node.name, Health(False, "not probed yet"))
            result[node.name] = {
                "node": node.name,
                "role": node.role.value,
                "healthy": node_health.healthy,
                "servers": servers,
                "error": error,
            }
        return result

    def metrics_view(self) -> MetricsView:
        view = self._dns_view()
        return MetricsView(
            samples=self.latest,
            dns_healthy=view.healthy,
            weights=view.weights,
            answers=dict(self.sources.dns.answers),
            shares=view.answered,
            primary=self.primary,
            incidents_open=self.summary()["incidents_open"],
            incidents_total=self.incidents_total,
            rounds=self.rounds,
            autoscale=self.sources.autoscale(),
        )

    async def history(self, minutes: int) -> list[dict[str, Any]]:
        assert self.store is not None
        since = time.time() - minutes * 60
        samples = await asyncio.to_thread(self.store.samples_since, since)
        return [s.record() for s in samples]

    # -- HTTP --------------------------------------------------------------------------
    async def route(self, request: Request) -> Response:
        if request.path in STATIC:
            name, content_type = STATIC[request.path]
            body = resources.files("geoha.ops").joinpath("dashboard", name).read_bytes()
            return Response(200, body, content_type)
        if request.path == "/metrics":
            body, content_type = exposition(self.metrics_view())
            return Response(200, body, content_type)
        if request.path == "/api/state":
            return _json(await self.status())
        if request.path == "/api/history":
            values = request.query.get("minutes", ["10"])
            try:
                minutes = int(values[-1])
            except ValueError:
                minutes = 0
            if not 1 <= minutes <= HISTORY_MINUTES_MAX:
                return Response.text(
                    400,
                    f"minutes: a whole number from 1 to {HISTORY_MINUTES_MAX} (got {values[-1]!r})",
                )
            interval = self.plan.spec.dns.health_check_interval_s
            return _json({"interval_s": interval, "samples": await self.history(minutes)})
        return Response.text(404, f"not found: {request.path}")


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _check(url: str, result: CheckResult | None) -> CheckStatus:
    if result is None:
        return {"url": url, "ok": None, "latency_ms": None, "detail": "not checked yet"}
    return {
        "url": url,
        "ok": result.passed,
        "latency_ms": _ms(result.latency_s),
        "detail": result.detail,
    }


def _json(value: Any) -> Response:
    return Response(200, json.dumps(value).encode(), "application/json")
