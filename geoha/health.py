"""Node health: the one place nodes are probed and their answers read.

A node's health check is its role's (geoha.roles): an HTTP GET of the node's
`health_url`, read as the role says -- a 200, etcd's /health, or Patroni's
/patroni. The controller probes asynchronously (`probe`); the data tier's
status and switchover read synchronously (`probe_now`, `patroni_state`).
Either way the same readers interpret the answer.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from geoha.plan import Node
from geoha.roles import ROLES, HealthAnswer
from geoha.traffic.tls import ca_only, verify

HTTP_TIMEOUT_S = 2.0
"""How long a synchronous read waits for an answer."""


class DbRole(StrEnum):
    """A database node's role as Patroni reports it."""

    PRIMARY = "primary"
    REPLICA = "replica"


@dataclass(frozen=True)
class Health:
    """Whether a node serves, with a short human detail ("replica, streaming")."""

    healthy: bool
    detail: str
    db_role: DbRole | None = None
    """For a database node whose PostgreSQL runs: its role; None for other nodes."""


@dataclass(frozen=True)
class PatroniState:
    """What a database node's Patroni says of itself (GET /patroni)."""

    role: str | None
    """Patroni's role: "primary" (also for Patroni 3's "master"), "replica", ..."""
    state: str | None
    """PostgreSQL's state: "running", "starting", "stopped", ..."""
    timeline: int | None = None
    replication_state: str | None = None
    """A replica's WAL receiver: "streaming", ..."""

    @property
    def db_role(self) -> DbRole | None:
        if self.role == "primary":
            return DbRole.PRIMARY
        if self.role == "replica":
            return DbRole.REPLICA
        return None

    @property
    def running_primary(self) -> bool:
        """Holds the leader lock and runs as primary."""
        return self.db_role is DbRole.PRIMARY and self.state == "running"

    def health(self) -> Health:
        """Healthy when PostgreSQL runs as the primary, or as a streaming replica."""
        if self.state != "running":  # no role to speak of until PostgreSQL runs
            return Health(False, f"PostgreSQL {self.state or 'unknown'}")
        if self.db_role is DbRole.PRIMARY:
            return Health(True, "primary", DbRole.PRIMARY)
        replication = self.replication_state or "not streaming"
        return Health(replication == "streaming", f"replica, {replication}", DbRole.REPLICA)


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValueError(f"expected a JSON object, got {type(body).__name__}")
    return body


def read_patroni(body: Any) -> PatroniState:
    """Patroni's /patroni answer (JSON); ValueError when it is not one."""
    fields = _object(body)
    role = fields.get("role")
    timeline = fields.get("timeline")
    replication = fields.get("replication_state")
    return PatroniState(
        role="primary" if role == "master" else None if role is None else str(role),
        state=None if fields.get("state") is None else str(fields["state"]),
        timeline=timeline if isinstance(timeline, int) else None,
        replication_state=None if replication is None else str(replication),
    )


def read_etcd(status_code: int, body: Any) -> Health:
    """etcd's /health answer (JSON); ValueError when it is not one."""
    fields = _object(body)
    if status_code == 200 and str(fields.get("health")) == "true":
        return Health(True, "healthy member")
    return Health(False, f"unhealthy: {fields.get('reason') or status_code}")


def read_answer(node: Node, response: httpx.Response) -> Health:
    """What the answer to `node`'s health check says, read as its role's check is."""
    check = ROLES[node.role].health
    try:
        match check.answer:
            case HealthAnswer.HTTP_OK:
                if response.status_code == 200:
                    return Health(True, check.healthy_detail)
                return Health(False, f"health check answered {response.status_code}")
            case HealthAnswer.ETCD:
                return read_etcd(response.status_code, response.json())
            case HealthAnswer.PATRONI:
                return read_patroni(response.json()).health()
    except ValueError as exc:
        return not_answering(node, exc)


def not_answering(node: Node, exc: Exception) -> Health:
    who = "Patroni " if ROLES[node.role].health.answer is HealthAnswer.PATRONI else ""
    return Health(False, f"{who}not answering ({type(exc).__name__})")


async def probe(node: Node, client: httpx.AsyncClient) -> Health:
    """Whether `node` serves, by its role's health check."""
    try:
        response = await client.get(node.health_url)
    except httpx.HTTPError as exc:
        return not_answering(node, exc)
    return read_answer(node, response)


def trust(node: Node) -> ssl.SSLContext | bool:
    """httpx's `verify` for the node's HTTPS listeners (the deployment's CA)."""
    return verify(ca_only(node.ca))


def probe_now(node: Node, timeout_s: float = HTTP_TIMEOUT_S) -> Health:
    """`probe`, for callers without an event loop."""
    try:
        response = httpx.get(node.health_url, timeout=timeout_s, verify=trust(node))
    except httpx.HTTPError as exc:
        return not_answering(node, exc)
    return read_answer(node, response)


def patroni_state(node: Node, timeout_s: float = HTTP_TIMEOUT_S) -> PatroniState | None:
    """A database node's Patroni state (its health check's answer); None when it does not answer."""
    try:
        answer = httpx.get(node.health_url, timeout=timeout_s, verify=trust(node))
        return read_patroni(answer.json())
    except (httpx.HTTPError, ValueError):
        return None


def read_sync_standbys(body: Any) -> frozenset[str]:
    """The members Patroni's /cluster answer names synchronous standbys (its /sync key)."""
    members = _object(body).get("members")
    if not isinstance(members, list):
        raise ValueError("expected a list of members")
    return frozenset(
        str(m.get("name"))
        for m in members
        if isinstance(m, dict) and m.get("role") in ("sync_standby", "synchronous_standby")
    )


def patroni_sync_standbys(node: Node, timeout_s: float = HTTP_TIMEOUT_S) -> frozenset[str] | None:
    """Whom Patroni counts as synchronous standby, asked of `node`; None when it does not answer.

    PostgreSQL names a rejoined replica `sync` about two seconds before Patroni
    records it in its /sync key; until then Patroni neither promotes it on a
    failover nor accepts it as a switchover candidate.
    """
    try:
        answer = httpx.get(node.url("patroni", "/cluster"), timeout=timeout_s, verify=trust(node))
        return read_sync_standbys(answer.json())
    except (httpx.HTTPError, ValueError):
        return None


async def entry_check(url: str, client: httpx.AsyncClient) -> tuple[bool, str]:
    """A region's public entry as the DNS health checks see it: passed when `url` answers
    200 within the client's timeout; an error that reaches no answer propagates."""
    response = await client.get(url)
    return response.status_code == 200, f"answered {response.status_code}"
