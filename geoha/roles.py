"""The role table: every fact about a kind of node, in one place.

For each `NodeRole`: how its nodes are named and laid out, the config file it
runs from (and so which renderer writes it), the program and arguments that
start it, the environment it gets, the user it runs as (locally and on a
cloud VM), its systemd unit, how it is stopped, how its health is checked and
how its rendered config is checked before it goes live.

The plan, the local runtime (geoha.runtime.kinds) and the cloud render
(geoha.cloud.cloudinit) all read these rows; none of them writes a role fact
of its own. The module is pure data: it imports nothing from geoha, so every
layer may read it.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class NodeRole(StrEnum):
    ETCD = "etcd"
    DATABASE = "database"
    API = "api"
    BACKEND_LB = "backend-lb"
    WEB = "web"
    FRONTEND_LB = "frontend-lb"


class ConfigFile(StrEnum):
    """The config a node runs from, named as it is in the node's folder.

    Each kind of file has one renderer (geoha.render.configs).
    """

    ETCD = "etcd.yml"
    PATRONI = "patroni.yml"
    API_ENV = "api.env"
    CADDYFILE = "Caddyfile"
    HAPROXY = "haproxy.cfg"


class Program(StrEnum):
    """An executable a node runs; where it lives on a machine is `geoha.plan.Tools`' business."""

    ETCD = "etcd"
    PATRONI = "patroni"
    PYTHON = "python"
    HAPROXY = "haproxy"
    CADDY = "caddy"


CONFIG = "{config}"
"""Stands for the node's config file path in an argument list."""


class Environment(StrEnum):
    """What a node's process gets in its environment on top of its supervisor's."""

    INHERITED = "inherited"
    """Nothing more."""
    CONFIG_FILE = "config-file"
    """Its rendered config is a KEY=VALUE file: its variables (systemd: EnvironmentFile=)."""
    NODE_HOME = "node-home"
    """HOME and the XDG folders inside the node's folder (Caddy's storage and autosave)."""


class LocalUser(StrEnum):
    """Who a node runs as on one machine."""

    INVOKER = "invoker"
    """The user who runs geoha."""
    DATABASE = "database"
    """The unprivileged database user: PostgreSQL refuses root (`postgres` when run as root)."""


class HealthAnswer(StrEnum):
    """How a health check's answer is read (geoha.health)."""

    HTTP_OK = "http-ok"
    """Healthy when it answers 200."""
    ETCD = "etcd"
    """etcd's /health: 200 with `"health": "true"`."""
    PATRONI = "patroni"
    """Patroni's /patroni: PostgreSQL running, as primary or as a streaming replica."""


@dataclass(frozen=True)
class HealthCheck:
    """An HTTP GET on one of the node's ports."""

    port: str
    """Name of the port in the node's `ports`."""
    path: str
    answer: HealthAnswer = HealthAnswer.HTTP_OK
    healthy_detail: str = "serving"
    """What a healthy answer is reported as (HTTP_OK checks)."""


@dataclass(frozen=True)
class Stop:
    """How a node is stopped: `signal` to its process group, then SIGKILL after `timeout_s`."""

    timeout_s: float
    signal: signal.Signals = signal.SIGTERM
    in_unit: bool = True
    """Whether a cloud unit sets the same TimeoutStopSec (otherwise systemd's default, 90 s)."""


@dataclass(frozen=True)
class ConfigChecker:
    """The program's own check of a config file; `args` follow the node's executable."""

    name: str
    """How the checker is named in its error messages ("haproxy -c")."""
    args: tuple[str, ...]


class Certificate(StrEnum):
    """The certificate from the deployment's CA a node holds."""

    NONE = "none"
    NODE = "node"
    """Its own, naming its address, for server and client use: the `tls_ports` serve
    with it, and it is the node's client certificate towards etcd."""
    PUBLIC = "public"
    """Its region's public names (a frontend LB's HTTPS), with the key in one PEM."""


@dataclass(frozen=True)
class Role:
    """Every fact about one kind of node."""

    suffix: str
    """Node names are REGION-SUFFIX, or REGION-SUFFIX-N when `numbered`."""
    tier: int
    """The third octet of its nodes' addresses: NET.TIER.N (the same in the cloud CIDR)."""
    config: ConfigFile
    program: Program
    args: tuple[str, ...]
    """The program's arguments; CONFIG stands for the config file's path."""
    health: HealthCheck
    stop: Stop
    local_user: LocalUser
    numbered: bool = False
    """Several instances per region (an autoscaled tier)."""
    environment: Environment = Environment.INHERITED
    checker: ConfigChecker | None = None
    """Run on a rendered config before it replaces the live one; None: no checker."""
    cloud_user: str | None = None
    """The VM user that runs it and owns its folder; None: not run on a VM."""
    service: str | None = None
    """Its systemd unit on a cloud VM (without .service); None: not run on a VM."""
    certificate: Certificate = Certificate.NONE
    tls_ports: tuple[str, ...] = ()
    """Ports (names in the node's `ports`) that speak TLS with its NODE certificate
    while the deployment's internal TLS is on (`security.internal_tls`)."""


SERVICE_USER = "geoha"
"""The system user of a cloud VM that runs the API and web instances."""

_HAPROXY_ARGS = ("-W", "-db", "-f", CONFIG)
_HAPROXY_CHECK = ConfigChecker("haproxy -c", ("-c", "-q", "-f", CONFIG))
_LB_HEALTH = HealthCheck("stats", "/lb-health", healthy_detail="balancing")


def haproxy_role(suffix: str, tier: int, certificate: Certificate = Certificate.NONE) -> Role:
    """A load balancer: HAProxy, locally only (no VM in the cloud, no service)."""
    return Role(
        suffix=suffix,
        tier=tier,
        config=ConfigFile.HAPROXY,
        program=Program.HAPROXY,
        args=_HAPROXY_ARGS,
        health=_LB_HEALTH,
        stop=Stop(10.0),
        local_user=LocalUser.INVOKER,
        checker=_HAPROXY_CHECK,
        certificate=certificate,
    )


ROLES: Mapping[NodeRole, Role] = {
    NodeRole.ETCD: Role(
        suffix="etcd",
        tier=6,
        config=ConfigFile.ETCD,
        program=Program.ETCD,
        args=("--config-file", CONFIG),
        # The metrics listener: plain HTTP, /health and /metrics only (the client
        # port wants a client certificate).
        health=HealthCheck("health", "/health", HealthAnswer.ETCD),
        # etcd is crash-safe. Locally every member stops at the end, together; a leader
        # stopping last waits for a leadership transfer to members already gone, so it
        # is not given long. A VM's member stops alone: its unit keeps systemd's default.
        stop=Stop(3.0, in_unit=False),
        local_user=LocalUser.INVOKER,
        cloud_user="etcd",
        service="geoha-etcd",
        certificate=Certificate.NODE,
        tls_ports=("client", "peer"),
    ),
    NodeRole.DATABASE: Role(
        suffix="db",
        tier=5,
        config=ConfigFile.PATRONI,
        program=Program.PATRONI,
        args=(CONFIG,),
        health=HealthCheck("patroni", "/patroni", HealthAnswer.PATRONI),
        stop=Stop(30.0),
        local_user=LocalUser.DATABASE,
        cloud_user="postgres",
        service="geoha-patroni",
        certificate=Certificate.NODE,
        tls_ports=("postgres", "patroni"),
    ),
    NodeRole.API: Role(
        suffix="api",
        tier=4,
        numbered=True,
        config=ConfigFile.API_ENV,
        program=Program.PYTHON,
        args=("-m", "app.api"),
        health=HealthCheck("http", "/health"),
        stop=Stop(15.0),  # in-flight requests finish on SIGTERM
        local_user=LocalUser.INVOKER,
        environment=Environment.CONFIG_FILE,
        cloud_user=SERVICE_USER,
        service="geoha-api",
    ),
    # In the cloud, E2E's managed load balancers play both LB roles.
    NodeRole.BACKEND_LB: haproxy_role("be", tier=3),
    NodeRole.WEB: Role(
        suffix="web",
        tier=2,
        numbered=True,
        config=ConfigFile.CADDYFILE,
        program=Program.CADDY,
        args=("run", "--config", CONFIG, "--adapter", "caddyfile"),
        health=HealthCheck("http", "/health/"),
        stop=Stop(10.0, in_unit=False),
        local_user=LocalUser.INVOKER,
        environment=Environment.NODE_HOME,
        checker=ConfigChecker(
            "caddy validate", ("validate", "--config", CONFIG, "--adapter", "caddyfile")
        ),
        cloud_user=SERVICE_USER,
        service="geoha-caddy",
    ),
    NodeRole.FRONTEND_LB: haproxy_role("fe", tier=1, certificate=Certificate.PUBLIC),
}


def with_config(args: tuple[str, ...], config: Path) -> tuple[str, ...]:
    """`args` with CONFIG replaced by the config file's path."""
    return tuple(str(config) if arg == CONFIG else arg for arg in args)


def home_environment(node_dir: Path) -> dict[str, str]:
    """Environment.NODE_HOME: HOME and the XDG folders inside the node's folder."""
    return {
        "HOME": str(node_dir),
        "XDG_DATA_HOME": str(node_dir / "data"),
        "XDG_CONFIG_HOME": str(node_dir / "config"),
    }
