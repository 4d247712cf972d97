"""The price table (`prices.toml` next to this module): monthly prices in INR, as data.

Each plan has a kind (a node or a load balancer), a price and the source of that price;
the table has a date. `plan_errors(spec)` checks the plans a topology file names against
it: a rule the command line's loader (geoha.topology) adds to the spec's own, so the core
validator knows no price table.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from geoha.spec import RegionCloud, Spec

PRICES_FILE = "prices.toml"
DNS_AND_MONITORING = "dns_and_monitoring"


class PlanKind(StrEnum):
    NODE = "node"  # a VM: web, API, database or etcd witness
    LOAD_BALANCER = "load_balancer"  # an E2E load balancer appliance


def plan_kind(field_name: str) -> PlanKind:
    """The kind of plan a `RegionCloud` field names (`frontend_lb_plan` -> load balancer)."""
    return PlanKind.LOAD_BALANCER if field_name.endswith("_lb_plan") else PlanKind.NODE


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    inr_per_month: Decimal = Field(ge=0)
    description: str
    source: str = Field(min_length=1)


class _Plan(_Entry):
    kind: PlanKind


class _Dated(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    date: str = Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
    source: str = Field(min_length=1)


class _Instance(_Dated):
    usd_per_hour: Decimal = Field(gt=0)
    description: str


class _AwsRegion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    instances: dict[str, _Instance]
    public_ipv4: _Dated
    public_ipv4_usd_per_hour: Decimal = Field(gt=0)
    storage: _Dated
    storage_usd_per_gb_month: Decimal = Field(gt=0)


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    date: str
    currency: str = Field(pattern="^INR$")
    plans: dict[str, _Plan]
    services: dict[str, _Entry]
    aws: dict[str, _AwsRegion] = {}


@dataclass(frozen=True)
class Price:
    """One priced item: a plan (with its kind) or a deployment-wide service."""

    name: str
    inr_per_month: Decimal
    description: str
    source: str
    kind: PlanKind | None = None  # None for a service


@dataclass(frozen=True)
class UsdPrice:
    """One AWS price, in US dollars as AWS lists it, with its own date and source."""

    name: str
    usd: Decimal  # an hour; storage: a GB-month
    date: str
    source: str


@dataclass(frozen=True)
class AwsPrices:
    """What a witness on AWS costs in one AWS region: its instance, its public IPv4
    address (an Elastic IP, charged by the hour) and its disk."""

    region: str
    instances: dict[str, UsdPrice]
    public_ipv4: UsdPrice
    storage: UsdPrice


@dataclass(frozen=True)
class PriceTable:
    date: str
    plans: dict[str, Price]
    services: dict[str, Price]
    aws: dict[str, AwsPrices] = field(default_factory=dict)

    def names(self, kind: PlanKind) -> list[str]:
        """Plan names of `kind`, in the table's order."""
        return [name for name, price in self.plans.items() if price.kind is kind]

    def plan(self, name: str) -> Price:
        return self.plans[name]


class PriceTableError(Exception):
    """The packaged price table itself is broken (a bug in geoha, not in the user's file)."""


def parse_price_table(text: str) -> PriceTable:
    """Parse and validate the TOML text of a price table."""
    try:
        raw = _Table.model_validate(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise PriceTableError(f"{PRICES_FILE}: {exc}") from None
    if DNS_AND_MONITORING not in raw.services:
        raise PriceTableError(f"{PRICES_FILE}: services.{DNS_AND_MONITORING} is missing")
    return PriceTable(
        date=raw.date,
        plans={
            name: Price(name, p.inr_per_month, p.description, p.source, p.kind)
            for name, p in raw.plans.items()
        },
        services={
            name: Price(name, s.inr_per_month, s.description, s.source)
            for name, s in raw.services.items()
        },
        aws={region: _aws_prices(region, entry) for region, entry in raw.aws.items()},
    )


def _aws_prices(region: str, entry: _AwsRegion) -> AwsPrices:
    return AwsPrices(
        region=region,
        instances={
            name: UsdPrice(name, i.usd_per_hour, i.date, i.source)
            for name, i in entry.instances.items()
        },
        public_ipv4=UsdPrice(
            "public IPv4",
            entry.public_ipv4_usd_per_hour,
            entry.public_ipv4.date,
            entry.public_ipv4.source,
        ),
        storage=UsdPrice(
            "gp3",
            entry.storage_usd_per_gb_month,
            entry.storage.date,
            entry.storage.source,
        ),
    )


@functools.cache
def load_price_table() -> PriceTable:
    """The price table shipped with geoha (read once)."""
    text = resources.files("geoha.cloud").joinpath(PRICES_FILE).read_text(encoding="utf-8")
    return parse_price_table(text)


def plan_errors(spec: Spec, table: PriceTable | None = None) -> list[str]:
    """One `regions.R.cloud.F_plan: one of ... (got 'X')` line per plan not in the table
    (or of the wrong kind: a load balancer plan for a VM, or the reverse)."""
    table = table or load_price_table()
    errors: list[str] = []
    for region_name, region in spec.regions.items():
        if region.cloud.on_aws:
            errors += _aws_errors(region_name, region.cloud, table)
            continue
        for field_name, value in region.cloud.model_dump().items():
            if not field_name.endswith("_plan"):
                continue
            allowed = table.names(plan_kind(field_name))
            if value not in allowed:
                errors.append(
                    f"regions.{region_name}.cloud.{field_name}: one of {', '.join(allowed)} "
                    f"(got {value!r})"
                )
    return errors


def _aws_errors(region_name: str, cloud: RegionCloud, table: PriceTable) -> list[str]:
    """The AWS region and instance type of a witness on AWS, against the AWS prices."""
    where = f"regions.{region_name}.cloud"
    prices = table.aws.get(cloud.location or "")
    if prices is None:
        return [
            f"{where}.location: an AWS region geoha has prices for: {', '.join(table.aws)} "
            f"(got {cloud.location!r})"
        ]
    if cloud.aws_instance_type not in prices.instances:
        return [
            f"{where}.instance_type: one of {', '.join(prices.instances)} (priced for "
            f"{prices.region}) (got {cloud.aws_instance_type!r})"
        ]
    return []
