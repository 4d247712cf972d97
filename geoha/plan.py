"""`expand(spec) -> Plan`: every concrete node of a deployment.

The plan is the only place topology is derived from the spec. Each node has a
role, a region, an address (its own loopback address locally, its private
address in the cloud -- same layout `NET.TIER.N`), its ports, its folder under
the run directory, the command that starts it and its health check. Nothing
downstream re-derives topology from the spec.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from geoha.spec import Autoscale, Spec

SHARED_PATRONI = Path("/opt/geoha/venv/bin/patroni")
SHARED_RUN_ROOT = Path("/var/lib/geoha")


REPO = Path(__file__).resolve().parent.parent


class NodeRole(StrEnum):
    ETCD = "etcd"
    DATABASE = "database"
    API = "api"
    BACKEND_LB = "backend-lb"
    WEB = "web"
    FRONTEND_LB = "frontend-lb"


ROLE_SUFFIX = {
    NodeRole.ETCD: "etcd",
    NodeRole.DATABASE: "db",
    NodeRole.API: "api",
    NodeRole.BACKEND_LB: "be",
    NodeRole.WEB: "web",
    NodeRole.FRONTEND_LB: "fe",
}
NUMBERED_ROLES = frozenset({NodeRole.API, NodeRole.WEB})
"""Roles with several instances per region, named REGION-ROLE-N."""
CONFIG_FILE = {
    NodeRole.ETCD: "etcd.yml",
    NodeRole.DATABASE: "patroni.yml",
    NodeRole.API: "api.env",
    NodeRole.BACKEND_LB: "haproxy.cfg",
    NodeRole.WEB: "Caddyfile",
    NodeRole.FRONTEND_LB: "haproxy.cfg",
}
LB_STATS_PORT = 8404
CLOUD_HTTP_PORT = 80
CLOUD_HTTPS_PORT = 443
CADDY_ADMIN_PORT = 2019


# Layout inside a region NET.T.N (DESIGN "Local runtime").
TIER_FRONTEND_LB = 1
TIER_WEB = 2
TIER_BACKEND_LB = 3
TIER_API = 4
TIER_DATABASE = 5
TIER_ETCD = 6


@dataclass(frozen=True)
class Tools:
    """Where the executables a plan starts live on this machine."""

    patroni: str
    etcd: str
    pg_bin_dir: str
    haproxy: str = "/usr/sbin/haproxy"
    caddy: str = "/usr/bin/caddy"
    python: str = "/usr/bin/python3"
    web_dist: str = str(REPO / "app" / "web" / "dist")

    @staticmethod
    def discover() -> Tools:
        patroni = Path(sys.executable).parent / "patroni"
        if os.geteuid() == 0 and not reachable_by_others(patroni):
            # The database user cannot reach this checkout (e.g. under /root):
            # scripts/setup.sh then builds a Patroni virtualenv it can reach.
            patroni = SHARED_PATRONI
        pg_bin = Path("/usr/lib/postgresql/15/bin")
        return Tools(
            patroni=str(patroni),
            etcd=shutil.which("etcd") or "/usr/bin/etcd",
            pg_bin_dir=str(pg_bin),
            haproxy=shutil.which("haproxy") or "/usr/sbin/haproxy",
            caddy=shutil.which("caddy") or "/usr/bin/caddy",
            python=sys.executable,
        )


@dataclass(frozen=True)
class Node:
    """One "VM" of the deployment."""

    name: str
    region: str
    role: NodeRole
    address: str
    ports: dict[str, int]
    dir: Path
    command: tuple[str, ...]
    health_url: str
    db_user: bool = False
    """True when the node must run as the unprivileged database user."""
    standby: bool = False
    """Planned but not started by `geoha up`: a free slot the autoscaler may fill."""

    @property
    def config_path(self) -> Path:
        return self.dir / CONFIG_FILE[self.role]

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def log_path(self) -> Path:
        return self.dir / "node.log"

    def endpoint(self, port: str) -> str:
        return f"{self.address}:{self.ports[port]}"


@dataclass(frozen=True)
class Plan:
    spec: Spec
    run_dir: Path
    nodes: tuple[Node, ...]
    pg_bin_dir: str = "/usr/lib/postgresql/15/bin"
    web_dist: str = ""
    app_client_addresses: tuple[str, ...] = field(default=())
    """Addresses of every API instance the autoscaler may start (pg_hba for the app user)."""

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def by_role(self, role: NodeRole) -> list[Node]:
        return [n for n in self.nodes if n.role is role]

    @property
    def etcd_nodes(self) -> list[Node]:
        return self.by_role(NodeRole.ETCD)

    @property
    def database_nodes(self) -> list[Node]:
        return self.by_role(NodeRole.DATABASE)

    def in_region(self, region: str, role: NodeRole) -> list[Node]:
        return [n for n in self.nodes if n.region == region and n.role is role]

    def only(self, region: str, role: NodeRole) -> Node:
        """The single node of `role` in `region` (a load balancer, the database)."""
        (node,) = self.in_region(region, role)
        return node

    def database_node(self, region: str) -> Node:
        for node in self.database_nodes:
            if node.region == region:
                return node
        raise KeyError(region)

    @property
    def secrets_path(self) -> Path:
        return self.run_dir / "secrets.json"

    @property
    def pgpass_path(self) -> Path:
        return self.run_dir / "pgpass"


def node_address(net: ipaddress.IPv4Network, tier: int, index: int) -> str:
    """Address of node `index` (1-based) of `tier` inside a region network."""
    return str(net.network_address + tier * 256 + index)


def reachable_by_others(path: Path) -> bool:
    """Whether every folder above `path` lets other users through (o+x)."""
    return all(os.stat(p).st_mode & 0o001 for p in path.absolute().parents if p.exists())


def resolve_run_dir(spec: Spec, cwd: Path | None = None) -> Path:
    """The run directory: `run_dir` under the current directory unless absolute.

    As root, the database runs as an unprivileged user that must reach its data;
    when the current directory is private (e.g. under /root), the default run
    directory moves to /var/lib/geoha/<hash of the directory>.
    """
    base = cwd or Path.cwd()
    run_dir = Path(os.path.expanduser(spec.run_dir))
    if run_dir.is_absolute():
        return run_dir
    default = spec.run_dir == Spec.model_fields["run_dir"].default
    if default and os.geteuid() == 0 and not reachable_by_others(base / run_dir):
        digest = hashlib.sha256(str(base).encode()).hexdigest()[:10]
        return SHARED_RUN_ROOT / f"{spec.name}-{digest}"
    return base / run_dir


def make_node(
    run_dir: Path,
    region: str,
    net: ipaddress.IPv4Network,
    *,
    role: NodeRole,
    position: tuple[int, int],
    ports: dict[str, int],
    command: Callable[[Path], tuple[str, ...]],
    health: tuple[str, str],
    db_user: bool = False,
    standby: bool = False,
) -> Node:
    """One node at NET.TIER.INDEX (`position`); `health` is (port name, URL path)."""
    tier, index = position
    name = f"{region}-{ROLE_SUFFIX[role]}" + (f"-{index}" if role in NUMBERED_ROLES else "")
    node_dir = run_dir / "nodes" / name
    address = node_address(net, tier, index)
    port_name, path = health
    return Node(
        name=name,
        region=region,
        role=role,
        address=address,
        ports=ports,
        dir=node_dir,
        command=command(node_dir),
        health_url=f"http://{address}:{ports[port_name]}{path}",
        db_user=db_user,
        standby=standby,
    )


def haproxy_command(tools: Tools) -> Callable[[Path], tuple[str, ...]]:
    return lambda d: (tools.haproxy, "-W", "-db", "-f", str(d / "haproxy.cfg"))


def caddy_command(tools: Tools) -> Callable[[Path], tuple[str, ...]]:
    return lambda d: (
        tools.caddy,
        "run",
        "--config",
        str(d / "Caddyfile"),
        "--adapter",
        "caddyfile",
    )


def api_command(tools: Tools) -> Callable[[Path], tuple[str, ...]]:
    return lambda _: (tools.python, "-m", "app.api")


def app_tier_nodes(
    spec: Spec, run_dir: Path, tools: Tools, region_name: str, cloud: bool = False
) -> list[Node]:
    """A data region's traffic path: API and web instances (every slot up to max) and LBs."""
    region, traffic = spec.regions[region_name], spec.traffic
    slot = functools.partial(make_node, run_dir, region_name, region_net(spec, region_name, cloud))
    lb_ports = {"http": traffic.http_port, "stats": LB_STATS_PORT}
    fe_ports = {
        "http": CLOUD_HTTP_PORT if cloud else traffic.frontend_http_port,
        "https": CLOUD_HTTPS_PORT if cloud else traffic.frontend_https_port,
        "stats": LB_STATS_PORT,
    }
    api_ports = {"http": traffic.http_port}
    web_ports = {"http": traffic.http_port, "admin": CADDY_ADMIN_PORT}
    haproxy, lb_health = haproxy_command(tools), ("stats", "/lb-health")

    def scaled(
        role: NodeRole,
        tier: int,
        scale: Autoscale,
        *,
        ports: dict[str, int],
        command: Callable[[Path], tuple[str, ...]],
        health: tuple[str, str],
    ) -> list[Node]:
        """Every autoscaler slot of a tier; those beyond `desired` start as standby."""
        return [
            slot(
                role=role,
                position=(tier, i),
                ports=ports,
                command=command,
                health=health,
                standby=i > scale.desired,
            )
            for i in range(1, scale.max + 1)
        ]

    return [
        *scaled(
            NodeRole.API,
            TIER_API,
            region.api.autoscale,
            ports=api_ports,
            command=api_command(tools),
            health=("http", "/health"),
        ),
        slot(
            role=NodeRole.BACKEND_LB,
            position=(TIER_BACKEND_LB, 1),
            ports=lb_ports,
            command=haproxy,
            health=lb_health,
        ),
        *scaled(
            NodeRole.WEB,
            TIER_WEB,
            region.web.autoscale,
            ports=web_ports,
            command=caddy_command(tools),
            health=("http", "/health/"),
        ),
        slot(
            role=NodeRole.FRONTEND_LB,
            position=(TIER_FRONTEND_LB, 1),
            ports=fe_ports,
            command=haproxy,
            health=lb_health,
        ),
    ]


def region_net(spec: Spec, region: str, cloud: bool) -> ipaddress.IPv4Network:
    """The network a region's nodes are laid out in: its loopback /16, or its cloud CIDR."""
    r = spec.regions[region]
    return ipaddress.IPv4Network(r.cidr) if cloud else r.loopback_net


def expand(spec: Spec, run_dir: Path, tools: Tools, cloud: bool = False) -> Plan:
    """Every node of `spec`: local loopback addresses under `run_dir`, or (`cloud`)
    private addresses in each region's CIDR with the cloud's public ports."""
    nodes: list[Node] = []
    app_clients: list[str] = []
    etcd_ports = {"client": spec.etcd.client_port, "peer": spec.etcd.peer_port}
    db_ports = {"postgres": spec.database.port, "patroni": spec.database.patroni_port}
    for region_name in spec.regions:
        etcd = make_node(
            run_dir,
            region_name,
            region_net(spec, region_name, cloud),
            role=NodeRole.ETCD,
            position=(TIER_ETCD, 1),
            ports=etcd_ports,
            command=lambda d: (tools.etcd, "--config-file", str(d / "etcd.yml")),
            health=("client", "/health"),
        )
        nodes.append(etcd)
    for region_name in spec.data_regions:
        database = make_node(
            run_dir,
            region_name,
            region_net(spec, region_name, cloud),
            role=NodeRole.DATABASE,
            position=(TIER_DATABASE, 1),
            ports=db_ports,
            command=lambda d: (tools.patroni, str(d / "patroni.yml")),
            health=("patroni", "/health"),
            db_user=True,
        )
        nodes.append(database)
        tier_nodes = app_tier_nodes(spec, run_dir, tools, region_name, cloud)
        nodes += tier_nodes
        app_clients += [n.address for n in tier_nodes if n.role is NodeRole.API]
    return Plan(
        spec=spec,
        run_dir=run_dir,
        nodes=tuple(nodes),
        pg_bin_dir=tools.pg_bin_dir,
        web_dist=tools.web_dist,
        app_client_addresses=tuple(app_clients),
    )
