"""Availability and downtime per month of a deployment: a pure function of the spec and the
component table (`availability.toml` next to this module).

The model (docs/CLOUD.md, "Cost and availability", says why each term is there):

- A data region serves a user when every element of its request path is up, in series: its
  site (power, network, hosts), frontend LB, web tier, backend LB, API tier and database node
  (the region's health check reads from its local database, so DNS drops a region whose
  database is down). A tier of N VMs is down only when all N are (parallel).
- Global DNS (Route 53) is in series with everything.
- Regions are in parallel (active/active), but not independent: a fraction beta of a region's
  downtime is common cause and takes every region down at once (beta-factor model).
- Failover is not free. Each outage of a region costs its users the DNS failover window
  (health checks x failure threshold + TTL); each outage of the primary's database (its node or
  its site) stops writes for the Patroni failover window (the leader key's ttl), or until the
  primary is repaired when no failover can happen (automatic failover off, or no etcd quorum
  without the primary's member); in synchronous mode each outage of the synchronous standby
  stalls commits until the primary drops it. How often outages happen follows from each
  element's downtime and the mean outage length.

Downtime is counted as conservatively as the terms are simple: a write stall counts as
downtime for every user, including those the DNS failover term already counts.
"""

from __future__ import annotations

import functools
import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from geoha.cloud.terraform_route53 import route53_interval

if TYPE_CHECKING:
    from geoha.spec import Spec

AVAILABILITY_FILE = "availability.toml"
MINUTES_PER_DAY = 1440
SECONDS_PER_MINUTE = 60.0


# -- the component table -------------------------------------------------------------------
class _Component(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    availability: float = Field(gt=0, le=1)
    description: str
    source: str = Field(min_length=1)


class _Components(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dns: _Component
    site: _Component
    load_balancer: _Component
    vm: _Component


class _Outages(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mean_minutes: float = Field(gt=0)
    source: str = Field(min_length=1)


class _CommonCause(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fraction: float = Field(ge=0, le=1)
    source: str = Field(min_length=1)


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    date: str
    month_days: float = Field(gt=0)
    components: _Components
    outages: _Outages
    common_cause: _CommonCause


@dataclass(frozen=True)
class Component:
    availability: float
    description: str
    source: str

    @property
    def unavailability(self) -> float:
        return 1.0 - self.availability


@dataclass(frozen=True)
class AvailabilityTable:
    """Component availabilities, outage length and common-cause fraction, with sources."""

    date: str
    month_days: float
    dns: Component
    site: Component
    load_balancer: Component
    vm: Component
    mean_outage_min: float
    outage_source: str
    common_cause_fraction: float
    common_cause_source: str

    @property
    def month_min(self) -> float:
        return self.month_days * MINUTES_PER_DAY

    @property
    def components(self) -> dict[str, Component]:
        return {
            "dns": self.dns,
            "site": self.site,
            "load_balancer": self.load_balancer,
            "vm": self.vm,
        }


class AvailabilityTableError(Exception):
    """The packaged component table is broken (a bug in geoha, not in the user's file)."""


def parse_availability_table(text: str) -> AvailabilityTable:
    try:
        raw = _Table.model_validate(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise AvailabilityTableError(f"{AVAILABILITY_FILE}: {exc}") from None
    c = raw.components

    def component(entry: _Component) -> Component:
        return Component(entry.availability, entry.description, entry.source)

    return AvailabilityTable(
        date=raw.date,
        month_days=raw.month_days,
        dns=component(c.dns),
        site=component(c.site),
        load_balancer=component(c.load_balancer),
        vm=component(c.vm),
        mean_outage_min=raw.outages.mean_minutes,
        outage_source=raw.outages.source,
        common_cause_fraction=raw.common_cause.fraction,
        common_cause_source=raw.common_cause.source,
    )


@functools.cache
def load_availability_table() -> AvailabilityTable:
    """The component table shipped with geoha (read once)."""
    text = resources.files("geoha.cloud").joinpath(AVAILABILITY_FILE).read_text(encoding="utf-8")
    return parse_availability_table(text)


# -- the topology, as plain data -------------------------------------------------------------
@dataclass(frozen=True)
class RegionShape:
    """What the model needs of a data region."""

    name: str
    web: int  # web VMs
    api: int  # API VMs
    dns_weight: int
    primary: bool = False


@dataclass(frozen=True)
class Topology:
    """What the model needs of a deployment."""

    regions: tuple[RegionShape, ...]  # data regions; exactly one is primary
    etcd_members: int  # one per region, witnesses included
    automatic_failover: bool = True
    synchronous: bool = True
    dns_failover_s: float = 60.0  # health check interval x failure threshold + TTL
    write_failover_s: float = 20.0  # Patroni's leader key ttl
    sync_stall_s: float = 6.0  # wal_sender_timeout + loop_wait

    @property
    def primary(self) -> RegionShape:
        primaries = [r for r in self.regions if r.primary]
        if len(primaries) != 1:
            raise ValueError(f"exactly one primary region (got {len(primaries)})")
        return primaries[0]


def topology_of(spec: Spec, counts: Literal["desired", "min"] = "desired") -> Topology:
    """The spec's data regions with their `desired` (or `min`) instance counts and timings."""
    from geoha.spec import RegionRole, ReplicationMode

    regions = tuple(
        RegionShape(
            name=name,
            web=getattr(region.web.autoscale, counts),
            api=getattr(region.api.autoscale, counts),
            dns_weight=region.dns.weight,
            primary=region.role is RegionRole.PRIMARY,
        )
        for name, region in spec.data_regions.items()
    )
    return Topology(
        regions=regions,
        etcd_members=len(spec.regions),
        automatic_failover=spec.automatic_failover,
        synchronous=spec.replication is ReplicationMode.SYNC,
        # Route 53 checks every 10 or 30 s whatever the local interval is
        dns_failover_s=route53_interval(spec.dns.health_check_interval_s)
        * spec.dns.failure_threshold
        + spec.dns.ttl_s,
        write_failover_s=float(spec.patroni.ttl_s),
        sync_stall_s=float(spec.database.wal_sender_timeout_s + spec.patroni.loop_wait_s),
    )


# -- the model ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Element:
    """One element of a region's serial path: its downtime fraction and mean outage length."""

    name: str
    unavailability: float
    mean_outage_min: float

    def exposure(self, window_min: float) -> float:
        """Fraction of the month spent in the first `window_min` of this element's outages:
        (unavailability / mean) outages a minute, each exposing on average
        E[min(window, outage)] = mean x (1 - e^(-window / mean)) for exponential lengths."""
        return self.unavailability * (1.0 - math.exp(-window_min / self.mean_outage_min))


def tier(name: str, count: int, table: AvailabilityTable) -> Element:
    """`count` VMs in parallel: down when all are; an all-down spell ends when any one returns."""
    return Element(name, table.vm.unavailability**count, table.mean_outage_min / count)


def database_elements(table: AvailabilityTable) -> list[Element]:
    """What takes a region's database node down: its site or its VM."""
    return [
        Element("site", table.site.unavailability, table.mean_outage_min),
        Element("database", table.vm.unavailability, table.mean_outage_min),
    ]


def region_elements(region: RegionShape, table: AvailabilityTable) -> list[Element]:
    """A data region's request path, in series."""
    lb = table.load_balancer.unavailability
    site, database = database_elements(table)
    return [
        site,
        Element("frontend LB", lb, table.mean_outage_min),
        tier("web tier", region.web, table),
        Element("backend LB", lb, table.mean_outage_min),
        tier("API tier", region.api, table),
        database,
    ]


def series(unavailabilities: list[float]) -> float:
    """Unavailability of elements in series."""
    return 1.0 - math.prod(1.0 - u for u in unavailabilities)


def region_unavailability(region: RegionShape, table: AvailabilityTable) -> float:
    return series([e.unavailability for e in region_elements(region, table)])


def at_least(needed: int, members: int, p_up: float) -> float:
    """Probability that at least `needed` of `members` independent members are up."""
    return sum(
        math.comb(members, k) * p_up**k * (1.0 - p_up) ** (members - k)
        for k in range(max(needed, 0), members + 1)
    )


def failover_possible(topology: Topology, table: AvailabilityTable) -> float:
    """Probability that Patroni can promote when the primary's etcd member is gone: automatic
    failover is on and the other members still hold a majority of the whole etcd cluster."""
    if not topology.automatic_failover:
        return 0.0
    member_up = table.site.availability * table.vm.availability
    majority = topology.etcd_members // 2 + 1
    return at_least(majority, topology.etcd_members - 1, member_up)


@dataclass(frozen=True)
class Contribution:
    """One term of the downtime, as a fraction of the month."""

    name: str
    unavailability: float


@dataclass(frozen=True)
class Estimate:
    availability: float
    contributions: tuple[Contribution, ...]

    @property
    def unavailability(self) -> float:
        return 1.0 - self.availability

    def downtime_min(self, table: AvailabilityTable) -> float:
        return self.unavailability * table.month_min


def _all_down(unavailabilities: list[float], beta: float) -> float:
    """Every region down at once: the common-cause share of the most available region's
    downtime, plus the regions' remaining (independent) downtime coinciding."""
    common = beta * min(unavailabilities)
    return common + math.prod(u - common for u in unavailabilities)


def _dns_failover(topology: Topology, table: AvailabilityTable) -> float:
    weights = [r.dns_weight for r in topology.regions]
    if not any(weights):  # Route 53 splits traffic evenly when every weight is 0
        weights = [1] * len(weights)
    window = topology.dns_failover_s / SECONDS_PER_MINUTE
    return sum(
        weight / sum(weights) * e.exposure(window)
        for r, weight in zip(topology.regions, weights, strict=True)
        for e in region_elements(r, table)
    )


def _write_failover(topology: Topology, table: AvailabilityTable) -> float:
    promoted = failover_possible(topology, table)
    window = topology.write_failover_s / SECONDS_PER_MINUTE
    # Without a failover, writes wait for the whole outage: its exposure to an endless window.
    return sum(
        promoted * e.exposure(window) + (1.0 - promoted) * e.unavailability
        for e in database_elements(table)
    )


def _sync_stall(topology: Topology, table: AvailabilityTable) -> float:
    if not topology.synchronous or len(topology.regions) < 2:
        return 0.0
    window = topology.sync_stall_s / SECONDS_PER_MINUTE
    # Patroni keeps one synchronous standby; every replica's database fails alike.
    return sum(e.exposure(window) for e in database_elements(table))


def estimate(topology: Topology, table: AvailabilityTable) -> Estimate:
    """Availability of `topology` over a month, with the terms of its downtime."""
    dns = Contribution("global DNS", table.dns.unavailability)
    regional = [region_unavailability(r, table) for r in topology.regions]
    if len(topology.regions) == 1:
        terms = [dns, Contribution(f"region {topology.regions[0].name}", regional[0])]
        return Estimate(1.0 - series([t.unavailability for t in terms]), tuple(terms))
    rest = [
        Contribution("every region down at once", _all_down(regional, table.common_cause_fraction)),
        Contribution("DNS failover", _dns_failover(topology, table)),
        Contribution("write failover", _write_failover(topology, table)),
        Contribution("synchronous standby lost", _sync_stall(topology, table)),
    ]
    inside = min(1.0, sum(t.unavailability for t in rest))
    availability = (1.0 - dns.unavailability) * (1.0 - inside)
    return Estimate(availability, (dns, *rest))


def region_alone(region: RegionShape, table: AvailabilityTable) -> Estimate:
    """One data region serving on its own (the seed's "single region" figure)."""
    alone = RegionShape(region.name, region.web, region.api, region.dns_weight, primary=True)
    return estimate(Topology(regions=(alone,), etcd_members=1), table)


# -- the report behind `geoha availability` ------------------------------------------------
@dataclass(frozen=True)
class AvailabilityReport:
    deployment: str
    table: AvailabilityTable
    topology: Topology  # at `desired` instance counts
    regions: dict[str, Estimate]  # each data region on its own
    single_region: Estimate  # the primary region on its own
    deployment_estimate: Estimate  # the whole spec, `desired` instances
    at_min: Estimate  # the whole spec once every tier is scaled in to `autoscale.min`


def availability_report(spec: Spec, table: AvailabilityTable) -> AvailabilityReport:
    topology = topology_of(spec)
    regions = {r.name: region_alone(r, table) for r in topology.regions}
    return AvailabilityReport(
        deployment=spec.name,
        table=table,
        topology=topology,
        regions=regions,
        single_region=regions[topology.primary.name],
        deployment_estimate=estimate(topology, table),
        at_min=estimate(topology_of(spec, "min"), table),
    )


def format_percent(availability: float) -> str:
    """As the seed writes it: enough decimals to show the first digit that is not a 9
    (0.999 -> '99.9 %', 0.9999 -> '99.99 %', 0.99977 -> '99.98 %')."""
    down_percent = (1.0 - availability) * 100.0
    if down_percent <= 0.0:
        return "100 %"
    leading = float(f"{down_percent:.1g}")  # the downtime's first significant digit
    decimals = max(1, -math.floor(math.log10(leading)))
    return f"{availability * 100.0:.{decimals}f} %"


def format_minutes(minutes: float) -> str:
    """Three significant figures (43.8, 4.38, 0.0440), whole minutes from 100 on."""
    if minutes >= 100:
        return f"{minutes:,.0f} min"
    return f"{minutes:#.3g} min"
