"""`expand(spec) -> Plan`: every concrete node of a deployment.

The plan is the only place topology is derived from the spec. Each node has a
role, a region, an address (its own loopback address locally, its private
address in the cloud -- same layout `NET.TIER.N`), its ports, its folder under
the run directory, the command that starts it and its health check. Nothing
downstream re-derives topology from the spec. What a role's nodes are called,
their tier, config file, program and health check come from the role table
(geoha.roles); the plan adds what the spec decides (regions, counts, ports).
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from geoha.roles import ROLES, NodeRole, Program, with_config
from geoha.spec import Autoscale, Spec

# NodeRole is defined with the role table (geoha.roles); it is part of the plan's vocabulary.
__all__ = [
    "CLOUD_HTTPS_PORT",
    "CLOUD_HTTP_PORT",
    "LB_STATS_PORT",
    "REPO",
    "SHARED_PATRONI",
    "SHARED_RUN_ROOT",
    "Node",
    "NodeRole",
    "Plan",
    "Tools",
    "app_tier_nodes",
    "expand",
    "make_node",
    "node_address",
    "node_command",
    "reachable_by_others",
    "region_net",
    "resolve_run_dir",
]

SHARED_PATRONI = Path("/opt/geoha/venv/bin/patroni")
SHARED_RUN_ROOT = Path("/var/lib/geoha")


REPO = Path(__file__).resolve().parent.parent


LB_STATS_PORT = 8404
CLOUD_HTTP_PORT = 80
CLOUD_HTTPS_PORT = 443


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

    def executable(self, program: Program) -> str:
        """Where `program` lives on this machine."""
        match program:
            case Program.ETCD:
                return self.etcd
            case Program.PATRONI:
                return self.patroni
            case Program.PYTHON:
                return self.python
            case Program.HAPROXY:
                return self.haproxy
            case Program.CADDY:
                return self.caddy


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
    standby: bool = False
    """Planned but not started by `geoha up`: a free slot the autoscaler may fill."""
    ca: Path | None = None
    """The deployment CA its role's `tls_ports` serve certificates from; None: they
    speak no TLS (internal TLS is off, or the role has none)."""
    host: str | None = None
    """The name other nodes dial it by, where each site resolves that name its own way
    (the cloud's internal names, when an etcd member is across the internet); None: its
    address."""
    listen: str | None = None
    """The address it listens on for the ports others dial by `host`; None: its address."""

    @property
    def tls(self) -> bool:
        return self.ca is not None

    @property
    def config_path(self) -> Path:
        return self.dir / ROLES[self.role].config

    @property
    def cert_path(self) -> Path:
        """Its NODE certificate (role table), issued by the deployment's CA."""
        return self.dir / "tls" / "node.crt"

    @property
    def key_path(self) -> Path:
        """The key of its NODE certificate (0600, owned by the node's user)."""
        return self.dir / "tls" / "node.key"

    def scheme(self, port: str) -> str:
        """`https` for a port that speaks TLS, else `http`."""
        return port_scheme(self.role, port, self.tls)

    def url(self, port: str, path: str = "") -> str:
        return f"{self.scheme(port)}://{self.endpoint(port)}{path}"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def log_path(self) -> Path:
        return self.dir / "node.log"

    def endpoint(self, port: str) -> str:
        return f"{self.address}:{self.ports[port]}"

    def named_endpoint(self, port: str) -> str:
        """`host:port` other nodes dial: by `host` where it has one."""
        return f"{self.host or self.address}:{self.ports[port]}"

    def named_url(self, port: str) -> str:
        return f"{self.scheme(port)}://{self.named_endpoint(port)}"

    def listen_url(self, port: str) -> str:
        """The URL it listens on for a port others dial by `named_url`."""
        return f"{self.scheme(port)}://{self.listen or self.address}:{self.ports[port]}"


@dataclass(frozen=True)
class Plan:
    spec: Spec
    run_dir: Path
    nodes: tuple[Node, ...]
    pg_bin_dir: str = "/usr/lib/postgresql/15/bin"
    web_dist: str = ""
    app_client_addresses: tuple[str, ...] = field(default=())
    """Addresses of every API instance the autoscaler may start (pg_hba for the app user)."""
    cloud: bool = False
    """Laid out for cloud VMs (each region's CIDR), not on this machine's loopback."""

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
    def app_client_networks(self) -> tuple[str, ...]:
        """Every data region's network: where the cloud's API instances, started by
        scaler groups at no fixed address, may connect from."""
        return tuple(region.cidr for region in self.spec.data_regions.values())

    @property
    def tls(self) -> bool:
        """Internal links speak TLS (`security.internal_tls`)."""
        return self.spec.security.internal_tls

    @property
    def tls_dir(self) -> Path:
        """The deployment's CA and the controller's client certificate."""
        return self.ca_path.parent

    @property
    def ca_path(self) -> Path:
        """The deployment's CA certificate: what every client verifies servers against."""
        return ca_path(self.run_dir)

    @property
    def client_cert_path(self) -> Path:
        """geoha's own client certificate (etcd wants one), with `client_key_path`."""
        return self.tls_dir / "client.crt"

    @property
    def client_key_path(self) -> Path:
        return self.tls_dir / "client.key"

    @property
    def secrets_path(self) -> Path:
        return self.run_dir / "secrets.json"

    @property
    def pgpass_path(self) -> Path:
        return self.run_dir / "pgpass"

    @property
    def api_admin_token_path(self) -> Path:
        """The bearer token of the API instances' admin routes (the local runtime's only)."""
        return self.run_dir / "api-admin.token"


def port_scheme(role: NodeRole, port: str, tls: bool) -> str:
    """`https` for a port of `role` that speaks TLS (with internal TLS on), else `http`."""
    return "https" if tls and port in ROLES[role].tls_ports else "http"


def ca_path(run_dir: Path) -> Path:
    """The deployment's CA certificate (its key, 0600, beside it)."""
    return run_dir / "tls" / "ca.pem"


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


def node_command(tools: Tools, role: NodeRole, node_dir: Path) -> tuple[str, ...]:
    """What starts a node of `role` whose folder is `node_dir`."""
    facts = ROLES[role]
    config = node_dir / facts.config
    return (tools.executable(facts.program), *with_config(facts.args, config))


def make_node(
    run_dir: Path,
    region: str,
    net: ipaddress.IPv4Network,
    tools: Tools,
    *,
    role: NodeRole,
    index: int,
    ports: dict[str, int],
    standby: bool = False,
    tls: bool = False,
) -> Node:
    """Node `index` (1-based) of `role` in `region`, at NET.TIER.INDEX; `tls`: its
    role's TLS ports speak TLS, with the run directory's CA."""
    facts = ROLES[role]
    name = f"{region}-{facts.suffix}" + (f"-{index}" if facts.numbered else "")
    node_dir = run_dir / "nodes" / name
    address = node_address(net, facts.tier, index)
    check = facts.health
    tls = tls and bool(facts.tls_ports)
    scheme = port_scheme(role, check.port, tls)
    return Node(
        name=name,
        region=region,
        role=role,
        address=address,
        ports=ports,
        dir=node_dir,
        command=node_command(tools, role, node_dir),
        health_url=f"{scheme}://{address}:{ports[check.port]}{check.path}",
        standby=standby,
        ca=ca_path(run_dir) if tls else None,
    )


def app_tier_nodes(
    spec: Spec, run_dir: Path, tools: Tools, region_name: str, cloud: bool = False
) -> list[Node]:
    """A data region's traffic path: API and web instances (every slot up to max) and LBs."""
    region, traffic = spec.regions[region_name], spec.traffic
    slot = functools.partial(
        make_node, run_dir, region_name, region_net(spec, region_name, cloud), tools
    )
    lb_ports = {"http": traffic.http_port, "stats": LB_STATS_PORT}
    fe_ports = {
        "http": CLOUD_HTTP_PORT if cloud else traffic.frontend_http_port,
        "https": CLOUD_HTTPS_PORT if cloud else traffic.frontend_https_port,
        "stats": LB_STATS_PORT,
    }
    api_ports = {"http": traffic.http_port}
    web_ports = {"http": traffic.http_port}

    def scaled(role: NodeRole, scale: Autoscale, ports: dict[str, int]) -> list[Node]:
        """Every autoscaler slot of a tier; those beyond `desired` start as standby."""
        return [
            slot(role=role, index=i, ports=ports, standby=i > scale.desired)
            for i in range(1, scale.max + 1)
        ]

    return [
        *scaled(NodeRole.API, region.api.autoscale, api_ports),
        slot(role=NodeRole.BACKEND_LB, index=1, ports=lb_ports),
        *scaled(NodeRole.WEB, region.web.autoscale, web_ports),
        slot(role=NodeRole.FRONTEND_LB, index=1, ports=fe_ports),
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
    etcd_ports = {
        "client": spec.etcd.client_port,
        "peer": spec.etcd.peer_port,
        "health": spec.etcd.health_port,
    }
    db_ports = {"postgres": spec.database.port, "patroni": spec.database.patroni_port}
    tls = spec.security.internal_tls
    for region_name in spec.regions:
        net = region_net(spec, region_name, cloud)
        nodes.append(
            make_node(
                run_dir,
                region_name,
                net,
                tools,
                role=NodeRole.ETCD,
                index=1,
                ports=etcd_ports,
                tls=tls,
            )
        )
    for region_name in spec.data_regions:
        net = region_net(spec, region_name, cloud)
        nodes.append(
            make_node(
                run_dir,
                region_name,
                net,
                tools,
                role=NodeRole.DATABASE,
                index=1,
                ports=db_ports,
                tls=tls,
            )
        )
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
        cloud=cloud,
    )
