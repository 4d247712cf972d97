"""Monthly cost of a deployment, from its cloud plan and the price table.

`estimate_cost(plan, table)` lists what is bought, in INR: per data region its web and API
VMs, frontend and backend load balancers and database node; the deployment-wide DNS and
monitoring services; and each witness region's etcd node, kept apart because the seed's
estimate (₹30,500 / $366 for the reference topology) does not include it. Counts are the
plan's nodes: `desired` instances for the estimate, every slot up to `autoscale.max` for the
cost at max scale. In the cloud a data region's etcd member runs on its database node, so
only witness regions' etcd nodes are priced.

`in_currency(estimate, currency, inr_per_usd)` converts and rounds: every line's amount
(count x unit price) is converted, then rounded half up to a whole rupee or dollar; subtotals
and totals are sums of the rounded lines, so a printed table always adds up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from geoha.cloud.choices import Currency
from geoha.cloud.prices import DNS_AND_MONITORING, PriceTable
from geoha.cloud.terraform_aws import WITNESS_DISK_GB
from geoha.cloud.vms import cloud_plan
from geoha.plan import NodeRole, Plan
from geoha.spec import Spec

GLOBAL_SCOPE = "global"
WITNESS_ITEM = "witness (not in the seed estimate)"
BANDWIDTH_NOTE = "Bandwidth (data transfer in and out of the cloud) is excluded."
HOURS_PER_MONTH = Decimal(730)
"""How AWS turns an hourly price into a monthly one."""


# Items of a data region, in the order the seed lists them: (role, item, RegionCloud field).
REGION_ITEMS: tuple[tuple[NodeRole, str, str], ...] = (
    (NodeRole.WEB, "web VMs", "web_plan"),
    (NodeRole.API, "API VMs", "api_plan"),
    (NodeRole.FRONTEND_LB, "frontend LB", "frontend_lb_plan"),
    (NodeRole.BACKEND_LB, "backend LB", "backend_lb_plan"),
    (NodeRole.DATABASE, "database", "database_plan"),
)


@dataclass(frozen=True)
class CostLine:
    """One thing bought: `count` of `plan` at `unit_inr` a month (`max_count` at max scale)."""

    scope: str  # a region name, or "global"
    item: str
    plan: str | None  # None for a service
    count: int
    max_count: int
    unit_inr: Decimal
    source: str
    witness: bool = False  # a witness region's etcd node: outside the seed's estimate


@dataclass(frozen=True)
class CostEstimate:
    """Every line of a deployment's monthly bill, in INR, before rounding."""

    deployment: str
    lines: tuple[CostLine, ...]
    prices_date: str
    data_regions: tuple[str, ...]
    witness_regions: tuple[str, ...]
    """Witness regions priced here (on E2E)."""
    external_witnesses: tuple[str, ...] = ()
    """Witness regions run outside E2E (`cloud.external`): not priced."""
    aws_witnesses: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Witness regions on AWS: their AWS region and the dates of their prices."""


def estimate_cost(plan: Plan, table: PriceTable) -> CostEstimate:
    """The monthly bill of `plan` at the prices of `table` (plans already validated)."""
    spec = plan.spec
    lines: list[CostLine] = []
    for region_name in spec.data_regions:
        lines += _region_lines(plan, table, region_name)
    service = table.services[DNS_AND_MONITORING]
    lines.append(
        CostLine(
            GLOBAL_SCOPE, service.description, None, 1, 1, service.inr_per_month, service.source
        )
    )
    # A witness run outside E2E (`cloud.external`) is not on E2E's price list.
    witnesses = tuple(
        name
        for name, region in spec.regions.items()
        if not region.is_data and not region.cloud.external
    )
    aws_witnesses: dict[str, tuple[str, str]] = {}
    for region_name in witnesses:
        if spec.regions[region_name].cloud.on_aws:
            aws_lines, aws_witnesses[region_name] = _aws_witness(spec, table, region_name)
            lines += aws_lines
            continue
        count = len(plan.in_region(region_name, NodeRole.ETCD))
        price = table.plan(spec.regions[region_name].cloud.etcd_plan)
        lines.append(
            CostLine(
                scope=region_name,
                item=WITNESS_ITEM,
                plan=price.name,
                count=count,
                max_count=count,
                unit_inr=price.inr_per_month,
                source=price.source,
                witness=True,
            )
        )
    return CostEstimate(
        deployment=spec.name,
        lines=tuple(lines),
        prices_date=table.date,
        data_regions=tuple(spec.data_regions),
        witness_regions=witnesses,
        external_witnesses=tuple(n for n, r in spec.regions.items() if r.cloud.external),
        aws_witnesses=aws_witnesses,
    )


def _aws_witness(
    spec: Spec, table: PriceTable, region_name: str
) -> tuple[list[CostLine], tuple[str, str]]:
    """A witness on AWS: its instance, its Elastic IP (AWS charges every public IPv4
    address by the hour) and its disk, each from its dated USD price, at
    `cloud.inr_per_usd`; a month is AWS's 730 hours. With them, its AWS region and the
    dates of those prices."""
    cloud = spec.regions[region_name].cloud
    prices = table.aws[cloud.location or ""]
    rate = Decimal(str(spec.cloud.inr_per_usd))
    instance = prices.instances[cloud.aws_instance_type]
    ipv4, storage = prices.public_ipv4, prices.storage
    parts = (
        (f"{WITNESS_ITEM}: instance", instance.name, instance.usd * HOURS_PER_MONTH, instance),
        (f"{WITNESS_ITEM}: Elastic IP", ipv4.name, ipv4.usd * HOURS_PER_MONTH, ipv4),
        (
            f"{WITNESS_ITEM}: disk",
            f"{WITNESS_DISK_GB} GB {storage.name}",
            storage.usd * WITNESS_DISK_GB,
            storage,
        ),
    )
    dates = ", ".join(sorted({price.date for *_, price in parts}))
    lines = [
        CostLine(
            scope=region_name,
            item=item,
            plan=name,
            count=1,
            max_count=1,
            unit_inr=usd_a_month * rate,
            source=f"AWS {prices.region}, {price.date}: {price.source}",
            witness=True,
        )
        for item, name, usd_a_month, price in parts
    ]
    return lines, (prices.region, dates)


def _region_lines(plan: Plan, table: PriceTable, region_name: str) -> list[CostLine]:
    cloud = plan.spec.regions[region_name].cloud
    lines = []
    for role, item, field_name in REGION_ITEMS:
        nodes = plan.in_region(region_name, role)
        price = table.plan(getattr(cloud, field_name))
        lines.append(
            CostLine(
                scope=region_name,
                item=item,
                plan=price.name,
                count=sum(1 for n in nodes if not n.standby),
                max_count=len(nodes),
                unit_inr=price.inr_per_month,
                source=price.source,
            )
        )
    return lines


# -- currency and rounding ---------------------------------------------------------------
@dataclass(frozen=True)
class Amount:
    """A monthly amount at the estimate's counts and at max scale, in whole currency units."""

    monthly: int
    at_max: int

    def __add__(self, other: Amount) -> Amount:
        return Amount(self.monthly + other.monthly, self.at_max + other.at_max)


ZERO = Amount(0, 0)


@dataclass(frozen=True)
class PricedLine:
    line: CostLine
    unit: Decimal  # unit price in the report's currency, to the cent / paisa
    amount: Amount


@dataclass(frozen=True)
class CostReport:
    """An estimate in one currency, rounded, with its subtotals and totals."""

    estimate: CostEstimate
    currency: Currency
    inr_per_usd: Decimal
    lines: tuple[PricedLine, ...]
    regions: dict[str, Amount]  # per data region
    data_regions: Amount
    global_services: Amount
    total: Amount  # what the seed's estimate covers: data regions + global services
    witness: Amount
    total_with_witness: Amount


def to_currency(inr: Decimal, currency: Currency, inr_per_usd: Decimal) -> Decimal:
    return inr if currency is Currency.INR else inr / inr_per_usd


def whole(amount: Decimal) -> int:
    """Round half up to a whole unit (₹0.50 -> ₹1, $17.50 -> $18)."""
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _sum(amounts: Iterable[Amount]) -> Amount:
    total = ZERO
    for amount in amounts:
        total = total + amount
    return total


def in_currency(estimate: CostEstimate, currency: Currency, inr_per_usd: float) -> CostReport:
    """Convert every line, round it to a whole unit, and add the rounded lines up."""
    rate = Decimal(str(inr_per_usd))
    priced = []
    for line in estimate.lines:
        unit = to_currency(line.unit_inr, currency, rate)
        amount = Amount(
            whole(to_currency(line.unit_inr * line.count, currency, rate)),
            whole(to_currency(line.unit_inr * line.max_count, currency, rate)),
        )
        priced.append(PricedLine(line, unit.quantize(Decimal("0.01"), ROUND_HALF_UP), amount))
    regions = {
        name: _sum(p.amount for p in priced if p.line.scope == name)
        for name in estimate.data_regions
    }
    data_regions = _sum(regions.values())
    global_services = _sum(p.amount for p in priced if p.line.scope == GLOBAL_SCOPE)
    witness = _sum(p.amount for p in priced if p.line.witness)
    total = data_regions + global_services
    return CostReport(
        estimate=estimate,
        currency=currency,
        inr_per_usd=rate,
        lines=tuple(priced),
        regions=regions,
        data_regions=data_regions,
        global_services=global_services,
        total=total,
        witness=witness,
        total_with_witness=total + witness,
    )


def cost_report(spec: Spec, table: PriceTable, currency: Currency) -> CostReport:
    """The whole computation behind `geoha cost`: plan, price, convert, round."""
    estimate = estimate_cost(cloud_plan(spec), table)
    return in_currency(estimate, currency, spec.cloud.inr_per_usd)
