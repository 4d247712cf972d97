"""The local stand-in for Route 53: the DNS server and its health checks, run by the controller.

One weighted A record per data region (set identifier = region, address = the
region's frontend LB, weight from `regions.R.dns.weight`), answered for
`dns.name`.`dns.zone`; one health check per region on the frontend LB's
`dns.health_check_path`, every `dns.health_check_interval_s`, with Route 53's
threshold rules (geoha.traffic.dns). The server listens on `dns.local_address`,
port `dns.local_port` (default 53 as root, 5353 otherwise).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypedDict

import httpx

from geoha.health import entry_check
from geoha.plan import NodeRole, Plan
from geoha.traffic.dns import CheckResult, HealthChange, WeightedRecord, ZoneConfig
from geoha.traffic.dns_server import DnsServer, DnsState, HealthChecker

PRIVILEGED_PORT = 53
UNPRIVILEGED_PORT = 5353


class DnsRecordStatus(TypedDict):
    region: str
    set_id: str
    address: str
    weight: int
    healthy: bool
    consecutive_failures: int
    consecutive_successes: int
    last_check: str | None
    """The latest check's outcome in words ("answered 200", "connection refused")."""
    answers: int
    """Weighted answers that named this region since the controller started."""


class DnsAnswerStatus(TypedDict):
    at: float
    client: str
    qname: str
    qtype: str
    rcode: str
    region: str | None
    address: str | None


class DnsStatus(TypedDict):
    server: str
    """HOST:PORT of the DNS server."""
    running: bool
    error: str | None
    zone: str
    name: str
    ttl: int
    interval_s: int
    failure_threshold: int
    records: list[DnsRecordStatus]
    recent: list[DnsAnswerStatus]
    dropped: int


def dns_port(plan: Plan) -> int:
    """The spec's port, or 53 as root and 5353 for an ordinary user (who cannot bind 53)."""
    configured = plan.spec.dns.local_port
    if configured is not None:
        return configured
    return PRIVILEGED_PORT if os.geteuid() == 0 else UNPRIVILEGED_PORT


def entry_addresses(plan: Plan) -> dict[str, str]:
    """Each data region's entry, the address its DNS record answers: its frontend LB."""
    return {
        region: plan.only(region, NodeRole.FRONTEND_LB).address for region in plan.spec.data_regions
    }


def weighted_records(plan: Plan) -> list[WeightedRecord]:
    return [
        WeightedRecord(
            set_id=region,
            region=region,
            address=address,
            weight=plan.spec.regions[region].dns.weight,
        )
        for region, address in entry_addresses(plan).items()
    ]


def check_url(plan: Plan, region: str) -> str:
    fe = plan.only(region, NodeRole.FRONTEND_LB)
    return f"http://{fe.address}:{fe.ports['http']}{plan.spec.dns.health_check_path}"


class GlobalDns:
    """The DNS server and the health checker over one DnsState."""

    def __init__(self, plan: Plan, on_change: Callable[[HealthChange], None]) -> None:
        dns = plan.spec.dns
        self.plan = plan
        self.address = dns.local_address
        self.port = dns_port(plan)
        self.state = DnsState()
        self.state.set_records(weighted_records(plan))
        self.zone = ZoneConfig(
            zone=dns.zone, name=dns.fqdn, ttl_s=dns.ttl_s, ns_address=self.address
        )
        self.server = DnsServer(self.address, self.port, self.zone, self.state)
        self.client = httpx.AsyncClient(timeout=dns.health_check_timeout_s)
        self.checker = HealthChecker(
            self.state,
            self.probe,
            interval_s=dns.health_check_interval_s,
            timeout_s=dns.health_check_timeout_s,
            failure_threshold=dns.failure_threshold,
            on_change=on_change,
        )
        self.running = False
        self.error: str | None = None

    async def probe(self, region: str) -> CheckResult:
        passed, detail = await entry_check(check_url(self.plan, region), self.client)
        return CheckResult(passed, detail)

    async def start(self) -> None:
        """Bind the server and start checking; a server that cannot bind is reported, not fatal."""
        try:
            await self.server.start()
        except Exception as exc:
            self.error = str(exc)
        else:
            self.running = True
        await self.checker.start()

    async def close(self) -> None:
        await self.checker.close()
        if self.running:
            await self.server.close()
            self.running = False
        await self.client.aclose()

    def status(self) -> DnsStatus:
        state, dns = self.state, self.plan.spec.dns
        records: list[DnsRecordStatus] = []
        for record in state.records:
            check = state.health.get(record.region)
            last = state.last_check.get(record.region)
            records.append(
                {
                    "region": record.region,
                    "set_id": record.set_id,
                    "address": record.address,
                    "weight": record.weight,
                    "healthy": state.healthy(record.region),
                    "consecutive_failures": check.consecutive_failures if check else 0,
                    "consecutive_successes": check.consecutive_successes if check else 0,
                    "last_check": last.detail if last else None,
                    "answers": state.answers[record.region],
                }
            )
        recent: list[DnsAnswerStatus] = [
            {
                "at": a.at,
                "client": a.client,
                "qname": a.qname,
                "qtype": a.qtype,
                "rcode": a.rcode,
                "region": a.region,
                "address": a.address,
            }
            for a in list(state.recent)[-20:]
        ]
        return {
            "server": f"{self.address}:{self.port}",
            "running": self.running,
            "error": self.error,
            "zone": dns.zone,
            "name": dns.fqdn,
            "ttl": dns.ttl_s,
            "interval_s": dns.health_check_interval_s,
            "failure_threshold": dns.failure_threshold,
            "records": records,
            "recent": recent,
            "dropped": sum(state.dropped.values()),
        }
