"""The topology file (`geoha.toml`) as validated pydantic models.

Every field has a default taken from the reference topology (Delhi primary,
Chennai replica, Mumbai witness), so an empty file -- or no file at all -- is
the reference deployment. Units are in the field names (`ttl_s`, `_percent`).
Unknown keys are rejected. Cross-field rules live on the models; errors are
reported as `dotted.path: what was expected (got VALUE)`, in two passes:
every field error at once, then -- once every field is valid -- every
cross-field error at once. Types are strict: "30" is not a number.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from geoha.errors import BadInput

DNS_LABEL = re.compile(r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")
ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(:[0-9]{1,5})?$")
MAX_INSTANCES = 20
MIN_PASSWORD_CHARS = 16


def _dns_label(value: str) -> str:
    if not DNS_LABEL.match(value):
        raise ValueError(
            "a DNS-safe name: lowercase letters, digits and '-', starting with a letter, "
            "at most 32 characters"
        )
    return value


RegionName = Annotated[str, AfterValidator(_dns_label)]


class SpecError(BadInput):
    """The topology file is unusable; `errors` holds one line per problem, each starting
    with the dotted path (or the file) it is about, printed as it is."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors

    def lines(self) -> list[str]:
        return list(self.errors)


class RegionRole(StrEnum):
    """What a region holds at bootstrap."""

    PRIMARY = "primary"  # data region whose database is the preferred primary
    REPLICA = "replica"  # data region whose database starts as a replica
    WITNESS = "witness"  # etcd member only: a third vote, no data, no traffic


class ReplicationMode(StrEnum):
    SYNC = "sync"  # Patroni synchronous_mode: an acknowledged write is in two regions
    ASYNC = "async"  # lower write latency; the last writes can be lost on failover


class Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, use_attribute_docstrings=True, strict=True
    )


Password = Annotated[str | None, Field(min_length=MIN_PASSWORD_CHARS)]


class Autoscale(Strict):
    """Instance counts and CPU thresholds of one autoscaled tier."""

    min: int = Field(default=1, ge=1, le=MAX_INSTANCES)
    """Fewest instances the autoscaler keeps (count, default 1)."""
    desired: int = Field(default=2, ge=1, le=MAX_INSTANCES)
    """Instances started by `geoha up` (count, default 2)."""
    max: int = Field(default=5, ge=1, le=MAX_INSTANCES)
    """Most instances the autoscaler starts (count, default 5, at most 20)."""
    scale_up_cpu_percent: float = Field(default=70.0, gt=0, le=100)
    """Average CPU above which the tier grows (percent, default 70)."""
    scale_down_cpu_percent: float = Field(default=30.0, ge=0, lt=100)
    """Average CPU below which the tier shrinks (percent, default 30)."""
    cooldown_s: float = Field(default=30.0, ge=0)
    """Quiet time after a scaling action of the cloud's scaler group, whose instances
    take minutes to boot (seconds, default 30)."""
    scale_in_stabilization_s: float = Field(default=60.0, ge=0)
    """How long load must stay low before an instance is removed (seconds, default 60)."""
    window_s: float = Field(default=10.0, ge=1, le=600)
    """Local runtime: CPU of each instance is averaged over this window (seconds, default
    10)."""
    scale_out_cooldown_s: float = Field(default=5.0, ge=0, le=3600)
    """Local runtime: quiet time after a change before the tier grows again; a local
    instance is serving about a second after its start (seconds, default 5)."""
    step: int = Field(default=1, ge=1, le=MAX_INSTANCES)
    """Local runtime: most instances added or removed by one decision (count, default 1)."""
    tolerance_percent: float = Field(default=10.0, ge=0, le=100)
    """Local runtime: how far above the scale-up threshold average CPU must be to grow,
    in percent of the threshold (percent, default 10: 77 % for 70 %)."""
    drain_timeout_s: float = Field(default=30.0, gt=0, le=600)
    """Local runtime: longest wait for a removed instance's requests in flight to end
    before it is stopped (seconds, default 30)."""
    replace_unhealthy_after_s: float = Field(default=30.0, gt=0, le=3600)
    """Local runtime: an instance running but unhealthy this long is replaced (seconds,
    default 30)."""


class Tier(Strict):
    """One autoscaled tier (web or api) of a data region."""

    autoscale: Autoscale = Autoscale()
    """Instance counts and thresholds of the tier."""


class RegionDns(Strict):
    """How global DNS sends traffic to a region."""

    weight: int = Field(default=50, ge=0, le=255)
    """Route 53 weighted-routing weight (0-255, default 50)."""


class CloudProvider(StrEnum):
    """Whose cloud a region's VMs run in."""

    E2E = "e2e"  # E2E Networks: every data region, and a witness by default
    AWS = "aws"  # Amazon EC2: a witness region only (one small instance)


DEFAULT_AWS_INSTANCE_TYPE = "t4g.nano"
AWS_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]$")
"""An AWS region code (`ap-south-1`)."""


class RegionCloud(Strict):
    """Where and on what a region runs in the cloud (E2E Networks, or AWS for a witness)."""

    provider: CloudProvider = Field(default=CloudProvider.E2E, strict=False)
    """`e2e` (default) or `aws`: witness regions only, one EC2 instance (`instance_type`)
    in the AWS region `location`, its etcd reached over the internet with mutual TLS, so
    no VPN is needed (docs/CLOUD.md)."""
    location: str | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z0-9-]{0,39}$")
    """E2E location of the region, letters, digits and hyphens (default: the region name
    capitalised, e.g. `Delhi`); with `provider = "aws"`, the AWS region (required, e.g.
    `ap-south-1`)."""
    instance_type: str | None = None
    """With `provider = "aws"`: the EC2 instance type of the witness (default `t4g.nano`);
    `geoha cost` must have a price for it in that AWS region."""
    web_plan: str = "C3.8GB"
    """Instance plan of each web VM (default `C3.8GB`)."""
    api_plan: str = "C3.8GB"
    """Instance plan of each API VM (default `C3.8GB`)."""
    database_plan: str = "C3.16GB"
    """Plan of the database node (PostgreSQL, Patroni, etcd member; default `C3.16GB`)."""
    etcd_plan: str = "C3.4GB"
    """Instance plan of a witness region's etcd node (default `C3.4GB`)."""
    frontend_lb_plan: str = "E2E-LB-2"
    """Plan of the external (frontend) load balancer (default `E2E-LB-2`)."""
    backend_lb_plan: str = "E2E-LB-2"
    """Plan of the internal (backend) load balancer (default `E2E-LB-2`)."""
    external: bool = False
    """Witness regions only: run the witness's VM outside E2E (default `false`). geoha then
    renders its cloud-init but no E2E resource for it; you run it with an address inside
    `cidr`, reachable from the data regions' networks, and pass that address as the
    Terraform variable `witness_address_REGION` (docs/CLOUD.md)."""

    @property
    def on_aws(self) -> bool:
        return self.provider is CloudProvider.AWS

    @property
    def on_e2e(self) -> bool:
        """Whether E2E runs the region's VMs (not AWS, not a VM of your own)."""
        return self.provider is CloudProvider.E2E and not self.external

    @property
    def aws_instance_type(self) -> str:
        return self.instance_type or DEFAULT_AWS_INSTANCE_TYPE


class Region(Strict):
    """One cloud region. The table key (`regions.NAME`) is its DNS-safe name."""

    role: RegionRole = Field(default=RegionRole.REPLICA, strict=False)
    """`primary` (preferred primary), `replica`, or `witness` (etcd only)."""
    cidr: str = "10.10.0.0/16"
    """Private network of the region in the cloud (IPv4 CIDR, /16 or larger)."""
    local_net: str | None = None
    """Loopback /16 standing for the region locally (default 127.<cidr's 2nd octet>.0.0/16)."""
    web: Tier = Tier()
    """The web tier (Caddy + React build); data regions only."""
    api: Tier = Tier()
    """The API tier; data regions only."""
    dns: RegionDns = RegionDns()
    """Weighted DNS settings; data regions only."""
    cloud: RegionCloud = RegionCloud()
    """Cloud location and instance plans of the region."""

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            net = ipaddress.IPv4Network(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"an IPv4 network such as 10.10.0.0/16 ({exc})") from None
        if net.prefixlen > 16:
            raise ValueError("a network of /16 or larger (a region lays out nodes as X.Y.TIER.N)")
        return value

    @field_validator("local_net")
    @classmethod
    def _local_net(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            net = ipaddress.IPv4Network(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"a loopback /16 such as 127.10.0.0/16 ({exc})") from None
        if net.prefixlen != 16 or not net.subnet_of(ipaddress.IPv4Network("127.0.0.0/8")):
            raise ValueError("a /16 inside 127.0.0.0/8, such as 127.10.0.0/16")
        if net.network_address.packed[1] == 0:
            raise ValueError("a /16 other than 127.0.0.0/16 (kept for global services)")
        return value

    @property
    def is_data(self) -> bool:
        return self.role is not RegionRole.WITNESS

    @property
    def loopback_net(self) -> ipaddress.IPv4Network:
        if self.local_net is not None:
            return ipaddress.IPv4Network(self.local_net)
        second = ipaddress.IPv4Network(self.cidr).network_address.packed[1]
        return ipaddress.IPv4Network(f"127.{second}.0.0/16")


class Patroni(Strict):
    """Patroni's HA timings (Patroni refuses ttl < 20, loop_wait < 1, retry_timeout < 3)."""

    ttl_s: int = Field(default=20, ge=20, le=300)
    """Leader key lifetime: how long a dead primary holds the lock (seconds, default 20)."""
    loop_wait_s: int = Field(default=1, ge=1, le=60)
    """Sleep between HA loop runs (seconds, default 1)."""
    retry_timeout_s: int = Field(default=3, ge=3, le=60)
    """Timeout of DCS and PostgreSQL operations before demotion (seconds, default 3)."""
    maximum_lag_on_failover_bytes: int = Field(default=1_048_576, ge=0)
    """A replica further behind than this may not be promoted (bytes, default 1 MiB)."""


class Failover(Strict):
    """geoha's fast failover: a primary that no region reaches is fenced, then its leader
    lease revoked, so Patroni promotes the synchronous standby without waiting `ttl_s`."""

    fast: bool | None = None
    """On or off (default: on in sync mode; in async mode only with `fast_async`)."""
    fence_after_s: float = Field(default=2.5, ge=1.0, le=30.0)
    """How long every region must fail to reach the primary first (seconds, default 2.5)."""
    fast_async: bool = False
    """Allow it in async mode, where the promoted replica may lack the last acknowledged
    writes (default false)."""


class Database(Strict):
    """PostgreSQL settings shared by every database node."""

    name: str = Field(default="geoha", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    """Application database name (default `geoha`)."""
    port: int = Field(default=5432, ge=1024, le=65535)
    """PostgreSQL port on every database node (default 5432)."""
    patroni_port: int = Field(default=8008, ge=1024, le=65535)
    """Patroni REST API port on every database node (default 8008)."""
    wal_sender_timeout_s: int = Field(default=5, ge=1, le=600)
    """How fast a primary drops a silent replica connection (seconds, default 5)."""
    superuser_password: Password = None
    """Superuser password (at least 16 characters; default: generated, 32 characters)."""
    replication_password: Password = None
    """Replication user password (at least 16 characters; default: generated)."""
    app_password: Password = None
    """Application user password (at least 16 characters; default: generated)."""


class Etcd(Strict):
    """The DCS: one etcd member per region, the witness included."""

    client_port: int = Field(default=2379, ge=1024, le=65535)
    """etcd client port on every member (default 2379)."""
    peer_port: int = Field(default=2380, ge=1024, le=65535)
    """etcd peer port on every member (default 2380)."""
    health_port: int = Field(default=2381, ge=1024, le=65535)
    """etcd metrics listener on every member: /health and /metrics, no key-value API
    (default 2381). The API reads its region's member's /health (the DCS fence)."""


class Dns(Strict):
    """Global DNS (Route 53 semantics: weighted records with health checks)."""

    zone: str = Field(
        default="geoha.test", pattern=r"^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$"
    )
    """Zone the application's name lives in (default `geoha.test`)."""
    name: str = Field(default="app", pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
    """The application's name in the zone, answered with the weighted records
    (`NAME.ZONE`; default `app`, i.e. `app.geoha.test`)."""
    ttl_s: int = Field(default=30, ge=1, le=86400)
    """TTL of the weighted answers (seconds, default 30)."""
    health_check_interval_s: int = Field(default=1, ge=1, le=30)
    """Time between health checks of a region (seconds, default 1). The local DNS
    checks at this interval; Route 53 allows only 10 or 30, so the cloud render
    takes the nearer of the two (a tie goes to 10)."""
    health_check_timeout_s: float = Field(default=0.8, gt=0, le=29)
    """How long one health check may take before it counts as failed (seconds,
    default 0.8; shorter than the interval)."""
    health_check_path: str = Field(default="/health/full", pattern=r"^/[A-Za-z0-9._~/-]*$")
    """Path checked on each region's frontend LB (default `/health/full`: frontend
    LB -> a web instance -> backend LB -> API -> the region's own database, so a
    region whose web tier, API tier or database is gone is unhealthy; `/health/deep`
    skips the web tier with the direct API route)."""
    failure_threshold: int = Field(default=3, ge=1, le=10)
    """Consecutive failed checks before a region is unhealthy, and consecutive
    passed checks before it is healthy again (count, default 3)."""
    local_address: str = Field(default="127.0.0.10", pattern=r"^127\.0\.0\.[0-9]{1,3}$")
    """Loopback address of the local DNS server, in the control range 127.0.0.0/24
    (default 127.0.0.10)."""
    local_port: int | None = Field(default=None, ge=1, le=65535)
    """Port of the local DNS server (default: 53 when the controller runs as root,
    5353 otherwise: an ordinary user cannot bind port 53)."""

    @property
    def fqdn(self) -> str:
        """The application's full name: NAME.ZONE."""
        return f"{self.name}.{self.zone}"


class Monitor(Strict):
    """The health monitor and the operator dashboard (the local stand-in for UptimeRobot).

    The monitor checks every `dns.health_check_interval_s`, with the DNS health
    checks' own results, and opens an incident after `dns.failure_threshold`
    failed checks in a row."""

    local_address: str = Field(default="127.0.0.10", pattern=r"^127\.0\.0\.[0-9]{1,3}$")
    """Loopback address of the dashboard and of `/metrics`, in the control range
    127.0.0.0/24 (default 127.0.0.10)."""
    local_port: int = Field(default=9300, ge=1, le=65535)
    """HTTP port of the dashboard and of `/metrics` (default 9300)."""
    history_days: int = Field(default=7, ge=1, le=90)
    """How long check history and closed incidents are kept (days, default 7)."""
    history_max_rows: int = Field(default=1_000_000, ge=1_000, le=100_000_000)
    """At most this many check rows are kept, the oldest dropped first (count, default
    1,000,000: about 6 days of two regions checked every second)."""


class ApiRoute(StrEnum):
    """Which hops an API request takes inside a region."""

    DIRECT = "direct"  # frontend LB -> backend LB -> api
    VIA_WEB = "via-web"  # the seed's path: frontend LB -> Caddy -> backend LB -> api


class Traffic(Strict):
    """Load balancers and the request path inside each data region."""

    api_route: ApiRoute = Field(default=ApiRoute.DIRECT, strict=False)
    """`direct` (frontend LB sends /api/* to the backend LB, the default: see
    docs/BENCHMARKS.md) or `via-web` (through a Caddy instance, as the seed drew it)."""
    http_port: int = Field(default=8080, ge=1024, le=65535)
    """Port of every web instance, API instance and backend LB (default 8080)."""
    frontend_http_port: int = Field(default=8080, ge=1, le=65535)
    """Local HTTP port of each region's frontend LB (default 8080; 80 in the cloud)."""
    frontend_https_port: int = Field(default=8443, ge=1, le=65535)
    """Local HTTPS port of each region's frontend LB (default 8443; 443 in the cloud)."""
    check_interval_s: float = Field(default=1.0, gt=0, le=60)
    """Time between LB health checks of each server (seconds, default 1)."""
    check_rise: int = Field(default=2, ge=1, le=10)
    """Consecutive passed checks before a server takes traffic (count, default 2)."""
    check_fall: int = Field(default=3, ge=1, le=10)
    """Consecutive failed checks before a server is taken out (count, default 3)."""
    cors_origins: list[str] = Field(default_factory=list)
    """Origins allowed to call the API from a browser (default: none; same origin needs none)."""
    redirect_to_https: bool | None = None
    """Whether each frontend LB answers plain HTTP with a redirect to HTTPS (default: on
    in the cloud render, off locally, so the `http://` URLs `geoha up` prints keep
    working; `true` or `false` sets both). Locally the DNS health path is exempt (the
    local checks are plain HTTP); Route 53 checks over HTTPS."""

    def redirects(self, cloud: bool) -> bool:
        """Whether the frontend LB redirects HTTP to HTTPS in the local or the cloud plan."""
        return cloud if self.redirect_to_https is None else self.redirect_to_https

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        bad = [v for v in values if not ORIGIN.match(v)]
        if bad:
            raise ValueError(f"origins such as https://app.example.in, without a path (got {bad})")
        return values


class App(Strict):
    """The API's behaviour towards the database."""

    pool_size: int = Field(default=10, ge=1, le=100)
    """Connections per pool (read and write) of each API instance (count, default 10)."""
    write_timeout_s: float = Field(default=3.0, gt=0, le=60)
    """A write that cannot reach a primary within this answers 503 (seconds, default 3)."""
    ryw_wait_ms: int = Field(default=500, ge=0, le=10_000)
    """How long a replica may take to reach a client's LSN before the primary answers
    (milliseconds, default 500)."""


class Cloud(Strict):
    """Deployment-wide cloud settings (E2E Networks for machines, Route 53 for DNS)."""

    image: str = "Ubuntu-24.04"
    """E2E OS image of every node and scaler group (default `Ubuntu-24.04`)."""
    ssh_key_name: str = "geoha"
    """Name of the SSH key registered with E2E (the key itself is a Terraform variable)."""
    inr_per_usd: float = Field(default=83.33, gt=0)
    """Exchange rate for `geoha cost --currency USD` (INR per USD, default 83.33)."""


class Security(Strict):
    """Encryption of the deployment's internal links."""

    internal_tls: bool = True
    """PostgreSQL, etcd (client and peer) and Patroni's REST API speak TLS with
    certificates from the deployment's CA, and etcd wants a client certificate
    (default true). Off only to measure what TLS costs (bench/tls_overhead.py):
    every internal link is then in clear text."""


def _reference_regions() -> dict[str, Region]:
    return {
        "delhi": Region(role=RegionRole.PRIMARY, cidr="10.10.0.0/16"),
        "chennai": Region(role=RegionRole.REPLICA, cidr="10.20.0.0/16"),
        # Mumbai is no E2E location any more: the witness is one small AWS instance there.
        "mumbai": Region(
            role=RegionRole.WITNESS,
            cidr="10.30.0.0/16",
            cloud=RegionCloud(provider=CloudProvider.AWS, location="ap-south-1"),
        ),
    }


class Spec(Strict):
    """A whole geoha deployment."""

    name: RegionName = "geoha"
    """Deployment name: Patroni scope and prefix of cloud resources (DNS-safe, default `geoha`)."""
    run_dir: str = ".geoha"
    """Folder of state, data and logs of `geoha up`, relative to the current directory
    (default `.geoha`)."""
    replication: ReplicationMode = Field(default=ReplicationMode.SYNC, strict=False)
    """`sync` (no acknowledged write lost on failover, the default) or `async`."""
    automatic_failover: bool = True
    """Promote a replica by itself when the primary region is lost (default true)."""
    regions: dict[RegionName, Region] = Field(default_factory=_reference_regions)
    """Regions by name; the reference is delhi (primary), chennai (replica), mumbai (witness)."""
    patroni: Patroni = Patroni()
    """Patroni HA timings."""
    failover: Failover = Failover()
    """geoha's fast failover."""
    database: Database = Database()
    """PostgreSQL settings."""
    etcd: Etcd = Etcd()
    """etcd ports."""
    dns: Dns = Dns()
    """Global DNS settings."""
    monitor: Monitor = Monitor()
    """Health monitor and dashboard settings."""
    traffic: Traffic = Traffic()
    """Load balancers and the request path."""
    app: App = App()
    """API settings."""
    cloud: Cloud = Cloud()
    """Cloud rendering and pricing settings."""
    security: Security = Security()
    """Internal TLS."""

    @field_validator("run_dir")
    @classmethod
    def _run_dir(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a folder path")
        return value

    @property
    def data_regions(self) -> dict[str, Region]:
        return {name: r for name, r in self.regions.items() if r.is_data}

    @property
    def primary_region(self) -> str:
        return next(n for n, r in self.regions.items() if r.role is RegionRole.PRIMARY)

    @property
    def fast_failover(self) -> bool:
        """Whether geoha's fast failover runs: `failover.fast`, by default on in sync mode;
        never without automatic failover or a witness region (it observes from every region)."""
        has_witness = any(r.role is RegionRole.WITNESS for r in self.regions.values())
        if not self.automatic_failover or not has_witness:
            return False
        if self.failover.fast is not None:
            return self.failover.fast
        return self.replication is ReplicationMode.SYNC

    def cross_field_errors(self) -> list[str]:
        """Rules spanning several fields, as `dotted.path: expected (got VALUE)` lines."""
        errors: list[str] = []
        primaries = [n for n, r in self.regions.items() if r.role is RegionRole.PRIMARY]
        if len(primaries) != 1:
            errors.append(
                'regions: exactly one region with role = "primary" '
                f"(got {len(primaries)}: {primaries})"
            )
        data = list(self.data_regions)
        witnesses = [n for n, r in self.regions.items() if r.role is RegionRole.WITNESS]
        if self.automatic_failover and len(data) == 2 and not witnesses:
            errors.append(
                'regions: a witness region (role = "witness") when two data regions fail over '
                "automatically -- without a third vote neither side can tell a dead region "
                f"from a cut link (got data regions {data} and no witness)"
            )
        errors += self._tier_errors()
        errors += self._port_errors()
        errors += self._network_errors()
        errors += self._witness_errors()
        errors += self._dns_errors()
        errors += self._weight_errors()
        if (
            self.failover.fast
            and self.replication is ReplicationMode.ASYNC
            and not self.failover.fast_async
        ):
            errors.append(
                "failover.fast_async: true to run the fast failover in async mode, where the "
                "promoted replica may lack the last acknowledged writes (got false)"
            )
        return errors

    def _tier_errors(self) -> list[str]:
        errors: list[str] = []
        for name, region in self.data_regions.items():
            for tier_name in ("web", "api"):
                scale: Autoscale = getattr(region, tier_name).autoscale
                path = f"regions.{name}.{tier_name}.autoscale"
                if scale.desired < scale.min:
                    errors.append(
                        f"{path}.desired: at least min ({scale.min}) (got {scale.desired})"
                    )
                if scale.max < max(scale.min, scale.desired):
                    errors.append(
                        f"{path}.max: at least min and desired ({max(scale.min, scale.desired)}) "
                        f"(got {scale.max})"
                    )
                if scale.scale_up_cpu_percent <= scale.scale_down_cpu_percent:
                    errors.append(
                        f"{path}.scale_up_cpu_percent: above scale_down_cpu_percent "
                        f"({scale.scale_down_cpu_percent}) (got {scale.scale_up_cpu_percent})"
                    )
        return errors

    def _port_errors(self) -> list[str]:
        errors: list[str] = []
        timing = self.patroni
        if timing.loop_wait_s + 2 * timing.retry_timeout_s > timing.ttl_s:
            errors.append(
                "patroni.ttl_s: at least loop_wait_s + 2 * retry_timeout_s "
                f"({timing.loop_wait_s + 2 * timing.retry_timeout_s}) (got {timing.ttl_s})"
            )
        if self.database.port == self.database.patroni_port:
            errors.append(
                f"database.patroni_port: a port other than database.port (got {self.database.port})"
            )
        traffic = self.traffic
        if traffic.frontend_http_port == traffic.frontend_https_port:
            errors.append(
                "traffic.frontend_https_port: a port other than traffic.frontend_http_port "
                f"(got {traffic.frontend_https_port})"
            )
        if self.etcd.client_port == self.etcd.peer_port:
            errors.append(
                f"etcd.peer_port: a port other than etcd.client_port (got {self.etcd.peer_port})"
            )
        # A data region's etcd member shares the database VM in the cloud.
        taken = {
            self.etcd.client_port,
            self.etcd.peer_port,
            self.database.port,
            self.database.patroni_port,
        }
        if self.etcd.health_port in taken:
            errors.append(
                "etcd.health_port: a port other than etcd.client_port, etcd.peer_port, "
                f"database.port and database.patroni_port (got {self.etcd.health_port})"
            )
        return errors

    def _network_errors(self) -> list[str]:
        errors: list[str] = []
        names = list(self.regions)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                net_a = ipaddress.IPv4Network(self.regions[a].cidr)
                net_b = ipaddress.IPv4Network(self.regions[b].cidr)
                if net_a.overlaps(net_b):
                    errors.append(
                        f"regions.{b}.cidr: a network not overlapping regions.{a}.cidr "
                        f"(got {self.regions[b].cidr}, overlaps {self.regions[a].cidr})"
                    )
                if self.regions[a].loopback_net == self.regions[b].loopback_net:
                    errors.append(
                        f"regions.{b}.local_net: a loopback /16 not used by region {a} "
                        f"(got {self.regions[b].loopback_net}; set local_net)"
                    )
        for name, region in self.regions.items():
            if region.local_net is None and region.loopback_net.network_address.packed[1] == 0:
                errors.append(
                    f"regions.{name}.local_net: a loopback /16 other than 127.0.0.0/16, "
                    f"needed because cidr {region.cidr} has 0 as its second octet (got none)"
                )
        return errors

    def _witness_errors(self) -> list[str]:
        errors: list[str] = []
        for name, region in self.regions.items():
            if region.is_data:
                continue
            for tier in ("web", "api", "dns"):
                if tier in region.model_fields_set:
                    errors.append(
                        f"regions.{name}.{tier}: nothing -- a witness region runs etcd only, "
                        "no data and no traffic (got a table)"
                    )
        errors += self._provider_errors()
        for name, region in self.data_regions.items():
            if region.cloud.external:
                errors.append(
                    f"regions.{name}.cloud.external: false -- only a witness region runs "
                    "outside E2E; a data region's load balancers and scaler groups are E2E's "
                    "(got true)"
                )
        return errors

    def _provider_errors(self) -> list[str]:
        errors: list[str] = []
        for name, region in self.regions.items():
            cloud, where = region.cloud, f"regions.{name}.cloud"
            if not cloud.on_aws:
                if cloud.instance_type is not None:
                    errors.append(
                        f'{where}.instance_type: nothing -- only with provider = "aws" '
                        f"(got {cloud.instance_type!r})"
                    )
                continue
            if region.is_data:
                errors.append(
                    f'{where}.provider: "e2e" -- only a witness region runs on AWS; a data '
                    "region's load balancers and scaler groups are E2E's (got 'aws')"
                )
            if cloud.external:
                errors.append(
                    f'{where}.external: false with provider = "aws" -- geoha runs the '
                    "witness's AWS instance itself (got true)"
                )
            if cloud.location is None or not AWS_REGION.match(cloud.location):
                got = "none" if cloud.location is None else repr(cloud.location)
                errors.append(
                    f'{where}.location: an AWS region such as "ap-south-1" with provider = '
                    f'"aws" (got {got})'
                )
            if "etcd_plan" in cloud.model_fields_set:
                errors.append(
                    f'{where}.etcd_plan: nothing with provider = "aws" -- the instance is '
                    f"instance_type (got {cloud.etcd_plan!r})"
                )
        return errors

    def _dns_errors(self) -> list[str]:
        dns, monitor = self.dns, self.monitor
        errors = []
        if dns.health_check_timeout_s >= dns.health_check_interval_s:
            errors.append(
                "dns.health_check_timeout_s: shorter than dns.health_check_interval_s "
                f"({dns.health_check_interval_s} s) (got {dns.health_check_timeout_s})"
            )
        dns_ports = {dns.local_port} if dns.local_port is not None else {53, 5353}
        if monitor.local_address == dns.local_address and monitor.local_port in dns_ports:
            errors.append(
                "monitor.local_port: a port other than the DNS server's on "
                f"{dns.local_address} ({', '.join(map(str, sorted(dns_ports)))}) "
                f"(got {monitor.local_port})"
            )
        return errors

    def _weight_errors(self) -> list[str]:
        weights = {n: r.dns.weight for n, r in self.data_regions.items()}
        if weights and not any(weights.values()):
            return [f"regions: at least one data region with dns.weight above 0 (got {weights})"]
        return []


def _error_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc if str(part) != "[key]")


def _error_message(err: Any) -> str:
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    if err["type"] == "extra_forbidden":
        msg = "no such key (unknown keys are rejected)"
    return msg


def format_validation_error(exc: ValidationError) -> list[str]:
    """One `dotted.path: expected (got VALUE)` line per pydantic error."""
    lines = []
    for err in exc.errors():
        path = _error_path(err["loc"]) or "(top level)"
        got = err.get("input")
        if err["type"] == "extra_forbidden" or "password" in path or "secret" in path:
            # Never echo what may be a secret, even under a misspelled key.
            shown = f"{len(got)} characters" if isinstance(got, str) else f"a {type(got).__name__}"
        elif isinstance(got, dict):
            shown = "a table"
        else:
            shown = repr(got)
        message = _error_message(err)
        if "(got" in message:
            lines.append(f"{path}: {message}")
        else:
            lines.append(f"{path}: {message} (got {shown})")
    return lines


SpecRule = Callable[[Spec], list[str]]
"""A rule beyond the spec's own, over a spec whose every field is valid: one
`dotted.path: expected (got VALUE)` line per problem (the cloud's price table
contributes one: geoha.topology)."""


def parse_spec(data: dict[str, Any], rules: Sequence[SpecRule] = ()) -> Spec:
    """Validate parsed TOML data into a Spec, or raise SpecError listing every problem.

    `rules` run with the cross-field rules, once every field is valid; their
    errors follow the spec's own.
    """
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc)) from None
    errors = spec.cross_field_errors() + [line for rule in rules for line in rule(spec)]
    if errors:
        raise SpecError(errors)
    return spec


def load_spec(path: Path | None, rules: Sequence[SpecRule] = ()) -> Spec:
    """Read a topology file, or the reference topology when `path` is None (see parse_spec)."""
    if path is None:
        return parse_spec({}, rules)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([f"{path}: a readable topology file (got: no such file)"]) from None
    except IsADirectoryError:
        raise SpecError([f"{path}: a topology file (got: a directory)"]) from None
    except PermissionError:
        raise SpecError([f"{path}: a readable topology file (got: permission denied)"]) from None
    except UnicodeDecodeError as exc:
        raise SpecError(
            [f"{path}: UTF-8 text (got undecodable byte at offset {exc.start})"]
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError([f"{path}: valid TOML ({exc})"]) from None
    return parse_spec(data, rules)
