"""HAProxy configuration of a region's frontend LB (public entry) and backend LB (internal).

Every server slot the autoscaler may fill is declared; slots that `geoha up`
does not start are `disabled`, and the autoscaler enables, drains and disables
them at runtime through the admin socket, without a reload.

Both LBs answer 413 themselves for a request body over the API's limit
(`_body_limit`), so an oversized upload is refused before any server sees it.
"""

from __future__ import annotations

from geoha.plan import Node, NodeRole, Plan
from geoha.render.api import API_MAX_BODY_BYTES, body_too_large_json
from geoha.render.files import File
from geoha.render.headers import API_CSP, SECURITY_HEADERS
from geoha.spec import ApiRoute

ADMIN_SOCKET = "admin.sock"
TLS_PEM = "tls.pem"
HTTP_REQUEST_TIMEOUT = "10s"
"""How long a client may take to send a request's headers, and a chunked body
the LB waits for to measure it (408 after that)."""
BODY_HEADROOM = 32768
"""Buffer room, in bytes, beyond the largest accepted body: the request line and
headers, HAProxy's rewrite reserve (tune.maxrewrite, 1 KiB) and its framing. With
it a chunked body one byte over the limit fits in the buffer and can be measured."""


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
        # Room for a whole body one byte past the API's limit (see _body_limit).
        # Buffers are taken per request in flight, not per idle connection.
        f"    tune.bufsize {API_MAX_BODY_BYTES + BODY_HEADROOM}",
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
        f"    timeout http-request {HTTP_REQUEST_TIMEOUT}",
        "    timeout http-keep-alive 30s",
        "    timeout queue 5s",
        # A request that never reached a server is retried on another one;
        # other retries only for idempotent methods (see disable-l7-retry). Not
        # a 503: the API answers it when the database tier cannot, which every
        # instance of the region shares, so a retry only multiplies the wait.
        "    retries 2",
        "    option redispatch 1",
        "    retry-on conn-failure empty-response response-timeout 502 504",
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


def _body_limit(node: Node, scope: str = "") -> list[str]:
    """Answer the API's own 413 at the LB for a body over the API's limit.

    A declared Content-Length is compared at once. A body without one (chunked)
    is first buffered until it is complete or one byte past the limit, which
    tune.bufsize leaves room for. HAProxy then reads and discards the rest of
    the upload after answering, so the client gets the 413 instead of a reset.
    `scope` is an ACL the rules are limited to ("" for every request).
    """
    when = f"{scope} " if scope else ""
    body = body_too_large_json(API_MAX_BODY_BYTES)
    return [
        f"    http-request wait-for-body time {HTTP_REQUEST_TIMEOUT} "
        f"at-least {API_MAX_BODY_BYTES + 1} if {when}!{{ req.hdr(content-length) -m found }}",
        "    http-request deny deny_status 413 content-type application/json "
        f"string '{body}' hdr X-Served-By \"{node.region}/{node.name}\" "
        f"if {when}{{ req.body_size gt {API_MAX_BODY_BYTES} }}",
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
        *_body_limit(node),
        "    default_backend api",
        "",
        "backend api",
        *_servers(apis, "/health"),
    ]
    return "\n".join(lines) + "\n"


def _https_redirect(plan: Plan, node: Node) -> list[str]:
    """Plain HTTP answered with a redirect to the same URL over HTTPS (the host without its
    port, then this LB's HTTPS port), except the DNS health path: the local checks are
    plain HTTP, and a redirect would pass them whatever the region's state."""
    if not plan.spec.traffic.redirects(plan.cloud):
        return []
    https = node.ports["https"]
    port = "" if https == 443 else f":{https}"
    return [
        f"    acl is_dns_health path {plan.spec.dns.health_check_path}",
        f"    http-request redirect location https://%[req.hdr(host),field(1,:)]{port}%[url] "
        "code 308 if !{ ssl_fc } !is_dns_health",
    ]


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
        *_https_redirect(plan, node),
        *_body_limit(node, "is_api"),
    ]
    # http-after-response: on the LB's own answers (413, 503) as on the servers'.
    for name, value in SECURITY_HEADERS.items():
        lines.append(f'    http-after-response set-header {name} "{value}"')
    lines.append(
        f'    http-after-response set-header Content-Security-Policy "{API_CSP}" '
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
