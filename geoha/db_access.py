"""How clients reach the deployment's database: its users and schema, their
passwords and the libpq URIs applications use.

Pure: renderers read it. Generating and storing the passwords is
geoha.data.secrets' job; the pgpass file is rendered by geoha.render.pgpass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from geoha.plan import Plan

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


def dsn(plan: Plan, region: str, write: bool) -> str:
    """The libpq URI an application in data region `region` uses.

    write: every database node, `target_session_attrs=read-write`, so writes
    reach the current primary wherever it is. read: the region's own node
    first, then the others. The password comes from the run directory's
    pgpass file, never from the URI. KeyError for a region without a database.
    """
    local = plan.database_node(region)
    ordered = [local] + [n for n in plan.database_nodes if n is not local]
    hosts = ",".join(n.endpoint("postgres") for n in ordered)
    params = {
        "target_session_attrs": "read-write" if write else "any",
        "connect_timeout": "2",
        "passfile": str(plan.pgpass_path),
        "application_name": f"geoha-{region}",
    }
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
    return f"postgresql://{APP_USER}@{hosts}/{plan.spec.database.name}?{query}"
