"""Environment of an API instance (`api.env`: KEY=VALUE lines; an EnvironmentFile in the cloud).

No secret: the DSNs name the run directory's pgpass file instead of a password.
"""

from __future__ import annotations

from geoha.db_access import dsn
from geoha.plan import Node, Plan
from geoha.render.files import File


def api_env(plan: Plan, node: Node) -> dict[str, str]:
    app, traffic = plan.spec.app, plan.spec.traffic
    return {
        "GEOHA_REGION": node.region,
        "GEOHA_INSTANCE": node.name,
        "GEOHA_API_LISTEN": f"{node.address}:{node.ports['http']}",
        "GEOHA_WRITE_DSN": dsn(plan, node.region, write=True),
        "GEOHA_READ_DSN": dsn(plan, node.region, write=False),
        "GEOHA_POOL_SIZE": str(app.pool_size),
        "GEOHA_WRITE_TIMEOUT_S": str(app.write_timeout_s),
        "GEOHA_RYW_WAIT_MS": str(app.ryw_wait_ms),
        "GEOHA_CORS_ORIGINS": ",".join(traffic.cors_origins),
    }


def render_api(plan: Plan, node: Node) -> list[File]:
    lines = [f"{key}={value}" for key, value in api_env(plan, node).items()]
    text = "# rendered by geoha; changes are overwritten\n" + "\n".join(lines) + "\n"
    return [File(node.config_path, text, 0o644)]
