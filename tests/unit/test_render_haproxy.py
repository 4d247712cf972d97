"""Both load balancers refuse a body over the API's limit themselves (the full configs
are pinned by the golden files; these tests say what the rules must mean)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from app.api.errors import ApiError
from app.api.http import Request, error_response, read_body
from geoha.plan import Node, NodeRole, Plan, Tools, expand
from geoha.render.api import API_MAX_BODY_BYTES, api_env, body_too_large_json
from geoha.render.haproxy import BODY_HEADROOM, render_haproxy
from geoha.spec import parse_spec

DENY = re.compile(
    r"^    http-request deny deny_status 413 content-type application/json "
    r"string '(?P<body>[^']*)' hdr X-Served-By \"(?P<served_by>[^\"]+)\" "
    r"if (?P<condition>.*)$"
)


def plan(api_route: str = "direct") -> Plan:
    spec = parse_spec({"traffic": {"api_route": api_route}})
    return expand(spec, Path("/r"), Tools("/p", "/e", "/pg"))


def config(p: Plan, region: str, role: NodeRole) -> tuple[Node, list[str]]:
    node = p.only(region, role)
    (file,) = render_haproxy(p, node)
    return node, file.text.splitlines()


def section(lines: list[str], header: str) -> list[str]:
    start = lines.index(header) + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith(" ")), len(lines))
    return lines[start:end]


def test_every_lb_refuses_a_body_over_the_apis_limit_with_the_apis_413() -> None:
    p = plan()
    for region in ("delhi", "chennai"):
        for role, frontend, scope in (
            (NodeRole.FRONTEND_LB, "frontend www", "is_api "),
            (NodeRole.BACKEND_LB, "frontend api_in", ""),
        ):
            node, lines = config(p, region, role)
            rules = section(lines, frontend)
            (deny,) = [m for m in map(DENY.match, rules) if m]
            assert deny["condition"] == f"{scope}{{ req.body_size gt {API_MAX_BODY_BYTES} }}"
            assert deny["body"] == body_too_large_json(API_MAX_BODY_BYTES)
            assert json.loads(deny["body"])["error"]["field"] == "body"
            assert deny["served_by"] == f"{region}/{node.name}"
            # A chunked body is measured first: buffered up to one byte past the limit.
            wait = (
                f"    http-request wait-for-body time 10s at-least {API_MAX_BODY_BYTES + 1} "
                f"if {scope}!{{ req.hdr(content-length) -m found }}"
            )
            assert rules.index(wait) < rules.index(deny.string)
            # ... before any server is chosen.
            routing = [i for i, r in enumerate(rules) if "_backend " in r]
            assert routing and rules.index(deny.string) < min(routing)


def test_the_buffer_holds_a_body_one_byte_past_the_limit_with_its_headers() -> None:
    p = plan()
    for role in (NodeRole.FRONTEND_LB, NodeRole.BACKEND_LB):
        _, lines = config(p, "delhi", role)
        (bufsize,) = [
            int(line.split()[1]) for line in section(lines, "global") if "bufsize" in line
        ]
        assert bufsize == API_MAX_BODY_BYTES + BODY_HEADROOM
        assert BODY_HEADROOM >= 16384 + 1024  # default header room and tune.maxrewrite


def test_the_api_is_told_the_same_limit() -> None:
    p = plan()
    for node in p.in_region("delhi", NodeRole.API):
        assert api_env(p, node)["GEOHA_MAX_BODY_BYTES"] == str(API_MAX_BODY_BYTES)


def test_the_frontend_limits_api_paths_on_either_api_route() -> None:
    for route in ("direct", "via-web"):
        _, lines = config(plan(route), "delhi", NodeRole.FRONTEND_LB)
        assert any(DENY.match(rule) for rule in section(lines, "frontend www")), route


def test_the_frontends_own_answers_carry_the_security_headers() -> None:
    _, lines = config(plan(), "delhi", NodeRole.FRONTEND_LB)
    rules = section(lines, "frontend www")
    headers = [r for r in rules if "set-header" in r and "X-Forwarded-Proto" not in r]
    assert len(headers) == 4
    assert all(r.startswith("    http-after-response set-header ") for r in headers)


def test_the_lbs_413_body_is_the_apis_own_byte_for_byte() -> None:
    async def no_body() -> dict[str, object]:
        raise AssertionError("a declared length over the limit is refused unread")

    headers = {b"content-length": str(API_MAX_BODY_BYTES + 1).encode()}
    request = Request("POST", "/api/v1/themes", b"", headers, no_body)
    with pytest.raises(ApiError) as refused:
        asyncio.run(read_body(request, API_MAX_BODY_BYTES))
    assert error_response(refused.value).body == body_too_large_json(API_MAX_BODY_BYTES).encode()
