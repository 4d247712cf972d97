"""HAProxy configuration of a region's frontend LB (public entry) and backend LB (internal).

Every server slot the autoscaler may fill is declared; slots that `geoha up`
does not start are `disabled`, and the autoscaler enables, drains and disables
them at runtime through the admin socket, without a reload.
"""

from __future__ import annotations

from geoha.plan import Node, NodeRole, Plan
from geoha.render.files import File
from geoha.render.headers import API_CSP, SECURITY_HEADERS
from geoha.spec import ApiRoute

ADMIN_SOCKET = "admin.sock"
TLS_PEM = "tls.pem"


def admin_socket(node: Node) -> str:
    return str(node.dir / ADMIN_SOCKET)


def _global_and_defaults(plan: Plan, node: Node) -> list[str]:
    traffic = plan.spec.traffic
    inter_ms = round(traffic.check_interval_s * 1000)
    return [
        "# rendered by geoha; changes are overwritten",
        "global",
        "    log stderr format raw local0 notice",
        f"    stats socket {admin_socket(node)} mode 600 level admin",
        "    maxconn 4096",
        "    hard-stop-after 30s",
        "    ssl-default-bind-options ssl-min-ver TLSv1.2",
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option dontlognull",
        "    option dontlog-normal",
        "    option http-keep-alive",
        "    timeout connect 2s",
        "    timeout client 30s",
        "    timeout server 30s",
        "    timeout http-request 10s",
        "    timeout http-keep-alive 30s",
        "    timeout queue 5s",
        # A request that never reached a server is retried on another one;
        # other retries only for idempotent methods (see disable-l7-retry).
        "    retries 2",
        "    option redispatch 1",
        "    retry-on conn-failure empty-response response-timeout 502 503 504",
        f"    default-server inter {inter_ms} rise {traffic.check_rise} fall {traffic.check_fall}",
        "",
        "frontend stats",
        f"    bind {node.address}:{node.ports['stats']}",
        "    monitor-uri /lb-health",
        "    stats enable",
        "    stats uri /stats",
        "    stats refresh 5s",
        "",
    ]


def _servers(nodes: list[Node], check_path: str) -> list[str]:
    lines = [
        "    balance roundrobin",
        "    option httpchk",
        f"    http-check send meth GET uri {check_path}",
        "    http-check expect status 200",
        "    http-request disable-l7-retry unless METH_GET || METH_HEAD || METH_OPTIONS",
    ]
    for n in nodes:
        disabled = " disabled" if n.standby else ""
        lines.append(f"    server {n.name} {n.address}:{n.ports['http']} check{disabled}")
    return lines


def backend_lb_config(plan: Plan, node: Node) -> str:
    apis = plan.in_region(node.region, NodeRole.API)
    lines = [
        *_global_and_defaults(plan, node),
        "frontend api_in",
        f"    bind {node.address}:{node.ports['http']}",
        "    default_backend api",
        "",
        "backend api",
        *_servers(apis, "/health"),
    ]
    return "\n".join(lines) + "\n"


def frontend_lb_config(plan: Plan, node: Node) -> str:
    webs = plan.in_region(node.region, NodeRole.WEB)
    backend = plan.only(node.region, NodeRole.BACKEND_LB)
    direct = plan.spec.traffic.api_route is ApiRoute.DIRECT
    lines = [
        *_global_and_defaults(plan, node),
        "frontend www",
        f"    bind {node.address}:{node.ports['http']}",
        f"    bind {node.address}:{node.ports['https']} ssl crt {node.dir / TLS_PEM}",
        "    http-request set-header X-Forwarded-Proto https if { ssl_fc }",
        "    http-request set-header X-Forwarded-Proto http if !{ ssl_fc }",
        "    acl is_api path_beg /api/",
        "    acl is_deep_health path /health/deep",
    ]
    for name, value in SECURITY_HEADERS.items():
        lines.append(f'    http-response set-header {name} "{value}"')
    lines.append(
        f'    http-response set-header Content-Security-Policy "{API_CSP}" '
        "unless { res.hdr(Content-Security-Policy) -m found }"
    )
    if direct:
        lines += ["    use_backend api if is_api || is_deep_health"]
    lines += ["    default_backend web", "", "backend web", *_servers(webs, "/health/")]
    if direct:
        lines += [
            "",
            "backend api",
            "    option httpchk",
            "    http-check send meth GET uri /health",
            "    http-check expect status 200",
            "    http-request disable-l7-retry unless METH_GET || METH_HEAD || METH_OPTIONS",
            f"    server {backend.name} {backend.address}:{backend.ports['http']} check",
        ]
    return "\n".join(lines) + "\n"


def render_haproxy(plan: Plan, node: Node) -> list[File]:
    if node.role is NodeRole.FRONTEND_LB:
        return [File(node.config_path, frontend_lb_config(plan, node), 0o644)]
    return [File(node.config_path, backend_lb_config(plan, node), 0o644)]
