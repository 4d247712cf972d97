"""How clients reach the deployment's database: its users and schema, their
passwords and the libpq URIs applications use.

Pure: renderers read it. Generating and storing the passwords is
geoha.data.secrets' job; the pgpass file is rendered by geoha.render.pgpass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from geoha.plan import Node, Plan

SUPERUSER = "geoha_admin"
"""Superuser of Patroni and the controller."""
REPLICATION_USER = "geoha_replicator"
APP_USER = "geoha_app"
"""The application's login: owns only APP_SCHEMA of the application database."""
APP_SCHEMA = "app"


REST_USER = "geoha"
"""User of Patroni's REST API basic auth (its unsafe endpoints: POST, PATCH, ...)."""


@dataclass(frozen=True)
class Secrets:
    """The deployment's passwords: one per database user, and Patroni's REST API's.
    Never in a repr (a traceback or an assertion message would print them)."""

    superuser: str = field(repr=False)
    replication: str = field(repr=False)
    app: str = field(repr=False)
    rest: str = field(repr=False)
    """Basic auth of Patroni's unsafe REST endpoints (POST /switchover, /restart, ...)."""


def libpq_tls(ca: Path | None) -> dict[str, str]:
    """libpq's TLS parameters towards the deployment's servers: the certificate checked
    against the CA `ca` and the name connected to (verify-full); None (internal TLS
    off): no TLS at all."""
    if ca is None:
        return {"sslmode": "disable"}
    return {"sslmode": "verify-full", "sslrootcert": str(ca)}


def dsn(plan: Plan, region: str, write: bool) -> str:
    """The libpq URI an application in data region `region` uses.

    write: every database node, `target_session_attrs=read-write`, so writes
    reach the current primary wherever it is. read: the region's own node
    first, then the others. The password comes from the run directory's
    pgpass file, never from the URI; TLS as `libpq_tls` says. KeyError for a
    region without a database.
    """
    local = plan.database_node(region)
    ordered = [local] + [n for n in plan.database_nodes if n is not local]
    params = {
        "target_session_attrs": "read-write" if write else "any",
        "connect_timeout": "2",
        "application_name": f"geoha-{region}",
    }
    return app_uri(plan, ordered, params)


def node_dsn(plan: Plan, node: Node) -> str:
    """The application user's libpq URI for `node` alone, whatever its role."""
    return app_uri(plan, [node], {})


def app_uri(plan: Plan, nodes: list[Node], params: dict[str, str]) -> str:
    """The application user's URI for `nodes` with `params`, the pgpass file and TLS."""
    hosts = ",".join(n.endpoint("postgres") for n in nodes)
    params = {**params, "passfile": str(plan.pgpass_path), **libpq_tls(nodes[0].ca)}
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
    return f"postgresql://{APP_USER}@{hosts}/{plan.spec.database.name}?{query}"
