"""Node kinds of the traffic path: API instances (granian), HAProxy LBs, Caddy web instances."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from geoha.db_access import Secrets
from geoha.plan import Node, NodeRole, Plan
from geoha.render.api import api_env, render_api
from geoha.render.caddy import render_caddy
from geoha.render.files import File, write_files
from geoha.render.haproxy import TLS_PEM, render_haproxy
from geoha.runtime.kinds import Health, NodeKind, http_probe
from geoha.runtime.process import RunAs
from geoha.traffic.tls import ensure_ca, server_pem


class ConfigCheckError(Exception):
    """A rendered configuration was refused by its program's own checker."""


def run_check(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise ConfigCheckError(f"{what} refused the rendered config: {' | '.join(output)}")


class ApiKind(NodeKind):
    """An API instance: `python -m app.api` (granian, one worker)."""

    stop_timeout_s = 15.0  # in-flight requests finish on SIGTERM

    def render(self, plan: Plan, node: Node, secrets: Secrets) -> list[File]:
        return render_api(plan, node)

    def run_as(self) -> RunAs | None:
        return None

    def env(self, plan: Plan, node: Node) -> dict[str, str]:
        return api_env(plan, node)

    async def probe(self, node: Node, client: httpx.AsyncClient) -> Health:
        return await http_probe(node.health_url, client, "serving")


class HaproxyKind(NodeKind):
    """A frontend or backend LB; the frontend one terminates TLS with the deployment's CA."""

    stop_timeout_s = 10.0

    def render(self, plan: Plan, node: Node, secrets: Secrets) -> list[File]:
        if node.role is NodeRole.FRONTEND_LB:
            ensure_server_certificate(plan, node)
        return render_haproxy(plan, node)

    def run_as(self) -> RunAs | None:
        return None

    def check(self, node: Node, path: Path) -> None:
        run_check([node.command[0], "-c", "-q", "-f", str(path)], "haproxy -c")

    async def probe(self, node: Node, client: httpx.AsyncClient) -> Health:
        return await http_probe(node.health_url, client, "balancing")


class CaddyKind(NodeKind):
    """A web instance: Caddy with its own admin address and storage folder."""

    stop_timeout_s = 10.0

    def render(self, plan: Plan, node: Node, secrets: Secrets) -> list[File]:
        return render_caddy(plan, node)

    def run_as(self) -> RunAs | None:
        return None

    def env(self, plan: Plan, node: Node) -> dict[str, str]:
        return {
            "HOME": str(node.dir),
            "XDG_DATA_HOME": str(node.dir / "data"),
            "XDG_CONFIG_HOME": str(node.dir / "config"),
        }

    def check(self, node: Node, path: Path) -> None:
        run_check(
            [node.command[0], "validate", "--config", str(path), "--adapter", "caddyfile"],
            "caddy validate",
        )

    async def probe(self, node: Node, client: httpx.AsyncClient) -> Health:
        return await http_probe(node.health_url, client, "serving")


def region_names(plan: Plan, region: str) -> list[str]:
    """DNS names a region's frontend LB answers for."""
    zone = plan.spec.dns.zone
    return [f"{region}.{zone}", zone, f"www.{zone}"]


def ensure_server_certificate(plan: Plan, node: Node) -> None:
    pem_path = node.dir / TLS_PEM
    if pem_path.exists():
        return
    ca = ensure_ca(plan.run_dir / "tls", plan.spec.name)
    pem = server_pem(ca, region_names(plan, node.region), [node.address])
    write_files([File(pem_path, pem, 0o600)])
