"""Environment of an API instance (`api.env`: KEY=VALUE lines; an EnvironmentFile in the cloud).

No secret: the DSNs name the run directory's pgpass file instead of a password.
"""

from __future__ import annotations

import json

from geoha.db_access import dsn
from geoha.plan import Node, NodeRole, Plan
from geoha.render.files import File

API_MAX_BODY_BYTES = 65536
"""The largest request body, in bytes, an API instance accepts: rendered into
`api.env` (GEOHA_MAX_BODY_BYTES) and into both load balancers, which answer 413
for a larger body themselves. A theme's `config` is limited to 16 KiB of compact
JSON; the body may be larger (whitespace, escapes, the name)."""


def body_too_large_json(limit: int) -> str:
    """The API's 413 body for `limit`, byte for byte, for a load balancer to answer with."""
    message = f"body must be at most {limit} bytes"
    error = {"error": {"code": "body_too_large", "field": "body", "message": message}}
    return json.dumps(error, separators=(",", ":"))


def api_env(plan: Plan, node: Node) -> dict[str, str]:
    """The instance's GEOHA_* variables (docs/API.md); the DCS fence (app/api/fence.py)
    watches the health of the region's own etcd member; the vantage point
    (app/api/vantage.py) probes every database node."""
    app, traffic = plan.spec.app, plan.spec.traffic
    etcd = plan.only(node.region, NodeRole.ETCD)
    tls = {"GEOHA_PATRONI_CA_FILE": str(plan.ca_path)} if plan.tls else {}
    return {
        "GEOHA_REGION": node.region,
        "GEOHA_INSTANCE": node.name,
        "GEOHA_API_LISTEN": f"{node.address}:{node.ports['http']}",
        "GEOHA_WRITE_DSN": dsn(plan, node.region, write=True),
        "GEOHA_READ_DSN": dsn(plan, node.region, write=False),
        "GEOHA_POOL_SIZE": str(app.pool_size),
        "GEOHA_WRITE_TIMEOUT_S": str(app.write_timeout_s),
        "GEOHA_RYW_WAIT_MS": str(app.ryw_wait_ms),
        "GEOHA_MAX_BODY_BYTES": str(API_MAX_BODY_BYTES),
        "GEOHA_CORS_ORIGINS": ",".join(traffic.cors_origins),
        "GEOHA_ETCD_HEALTH_URL": etcd.url("health", "/health"),
        "GEOHA_VANTAGE": ",".join(
            f"{db.name}={db.address}:{db.ports['postgres']}:{db.ports['patroni']}"
            for db in plan.database_nodes
        ),
        **tls,
    }


def render_api(plan: Plan, node: Node) -> list[File]:
    lines = [f"{key}={value}" for key, value in api_env(plan, node).items()]
    text = "# rendered by geoha; changes are overwritten\n" + "\n".join(lines) + "\n"
    return [File(node.config_path, text, 0o644)]
