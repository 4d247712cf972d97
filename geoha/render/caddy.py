"""Caddyfile of a web instance: the React build, /health/, and /api/* to the region's backend LB.

`/health/full` is the API's `/health/deep` asked through this instance, so the
DNS health check (`dns.health_check_path`) crosses the web tier too.

The same renderer serves the local runtime and the cloud's cloud-init; only
addresses differ. Each instance binds only its own address and keeps its own
storage folder and admin socket (`NODE_DIR/admin.sock`: no TCP admin port).
"""

from __future__ import annotations

from geoha.plan import Node, NodeRole, Plan
from geoha.render.files import File
from geoha.render.headers import PAGE_CSP, SECURITY_HEADERS

CADDY_ADMIN_SOCKET = "admin.sock"


def caddyfile(plan: Plan, node: Node, web_root: str) -> str:
    backend = plan.only(node.region, NodeRole.BACKEND_LB)
    upstream = f"{backend.address}:{backend.ports['http']}"
    headers = [f'\t\t{name} "{value}"' for name, value in SECURITY_HEADERS.items()]
    lines = [
        "# rendered by geoha; changes are overwritten",
        "{",
        # No TCP admin port: its API (which can rewrite the config) is on a Unix socket in
        # the node's folder, which only the node's user can enter (mode 0700).
        f"\tadmin unix/{node.dir / CADDY_ADMIN_SOCKET}",
        "\tauto_https off",
        f"\tstorage file_system {node.dir / 'storage'}",
        "\tlog {",
        "\t\toutput stderr",
        "\t\tlevel WARN",
        "\t}",
        "}",
        "",
        # A bare :port binds every interface: `bind` keeps the instance on its address.
        f":{node.ports['http']} {{",
        f"\tbind {node.address}",
        "\tencode gzip",
        "\theader {",
        f'\t\tContent-Security-Policy "{PAGE_CSP}"',
        *headers,
        "\t\t-Server",
        "\t}",
        "\thandle /health/ {",
        '\t\trespond "ok" 200',
        "\t}",
        "\thandle /health/full {",
        "\t\trewrite * /health/deep",
        f"\t\treverse_proxy {upstream}",
        "\t}",
        "\t@api path /api/* /health/deep",
        "\thandle @api {",
        f"\t\treverse_proxy {upstream}",
        "\t}",
        "\thandle {",
        f"\t\troot * {web_root}",
        "\t\t@hashed path /assets/*",
        '\t\theader @hashed Cache-Control "public, max-age=31536000, immutable"',
        "\t\t@page not path /assets/*",
        '\t\theader @page Cache-Control "no-cache"',
        "\t\ttry_files {path} /index.html",
        "\t\tfile_server",
        "\t}",
        "}",
    ]
    return "\n".join(lines) + "\n"


def render_caddy(plan: Plan, node: Node) -> list[File]:
    return [File(node.config_path, caddyfile(plan, node, plan.web_dist), 0o644)]
