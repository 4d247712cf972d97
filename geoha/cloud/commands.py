"""`geoha cost` and `geoha availability`: estimates for a topology file, no cloud account needed."""

from __future__ import annotations

import argparse
import json
from decimal import Decimal
from typing import Any

from geoha.cloud.availability import (
    AvailabilityReport,
    Estimate,
    availability_report,
    format_minutes,
    format_percent,
    load_availability_table,
)
from geoha.cloud.choices import Currency
from geoha.cloud.cost import (
    BANDWIDTH_NOTE,
    GLOBAL_SCOPE,
    Amount,
    CostReport,
    PricedLine,
    cost_report,
)
from geoha.cloud.prices import load_price_table
from geoha.commands.common import print_table, read_topology
from geoha.errors import EXIT_OK


# -- geoha cost ----------------------------------------------------------------------------
def group_digits(value: int, currency: Currency) -> str:
    """Thousands separators: Indian grouping for rupees (₹1,50,000), Western for dollars."""
    digits = str(abs(value))
    if currency is Currency.INR and len(digits) > 3:
        head, tail = digits[:-3], digits[-3:]
        pairs = [head[max(0, i - 2) : i] for i in range(len(head), 0, -2)][::-1]
        grouped = ",".join([*pairs, tail])
    else:
        grouped = f"{abs(value):,}"
    return ("-" if value < 0 else "") + grouped


def money(value: int | Decimal, currency: Currency) -> str:
    symbol = "₹" if currency is Currency.INR else "$"
    if isinstance(value, Decimal) and value != value.to_integral_value():
        cents = f"{value:.2f}".split(".")[1]
        return f"{symbol}{group_digits(int(value), currency)}.{cents}"
    return f"{symbol}{group_digits(int(value), currency)}"


def cost_rows(report: CostReport) -> list[list[Any]]:
    cur = report.currency

    def total_row(scope: str, label: str, amount: Amount) -> list[Any]:
        return [scope, label, "", "", "", money(amount.monthly, cur), "", money(amount.at_max, cur)]

    rows: list[list[Any]] = []
    for region in report.estimate.data_regions:
        for p in report.lines:
            if p.line.scope == region:
                rows.append(line_row(p.line.scope, p.line.item, p, cur))
        rows.append(total_row(region, "region total", report.regions[region]))
    count = len(report.estimate.data_regions)
    rows.append(total_row("all", f"data regions ({count})", report.data_regions))
    rows += [
        line_row(GLOBAL_SCOPE, p.line.item, p, cur)
        for p in report.lines
        if p.line.scope == GLOBAL_SCOPE
    ]
    rows.append(total_row("total", "as in the seed estimate", report.total))
    witnesses = [p for p in report.lines if p.line.witness]
    rows += [line_row(p.line.scope, p.line.item, p, cur) for p in witnesses]
    if witnesses:
        rows.append(total_row("total", "with the witness", report.total_with_witness))
    return rows


def line_row(scope: str, item: str, p: PricedLine, cur: Currency) -> list[Any]:
    return [
        scope,
        item,
        p.line.plan,
        p.line.count,
        money(p.unit, cur),
        money(p.amount.monthly, cur),
        p.line.max_count,
        money(p.amount.at_max, cur),
    ]


def cost_notes(report: CostReport) -> list[str]:
    notes = [
        BANDWIDTH_NOTE,
        f"Prices of {report.estimate.prices_date}, GST not added; each price's source is in "
        "geoha/cloud/prices.toml (most are the seed's estimates: check them against E2E's).",
        "Counts: autoscale.desired instances; AT MAX: every tier at autoscale.max.",
    ]
    if report.currency is Currency.USD:
        notes.append(
            f"Dollars at {report.inr_per_usd} INR/USD (cloud.inr_per_usd): each line is "
            "converted, then rounded half up to a whole dollar; totals add the rounded lines."
        )
    else:
        notes.append("Each line is rounded half up to a whole rupee; totals add the lines.")
    external = report.estimate.external_witnesses
    on_aws = report.estimate.aws_witnesses
    if any(r not in on_aws for r in report.estimate.witness_regions):
        notes.append("The witness is a witness region's etcd node (cloud.etcd_plan).")
    for region, (location, dates) in on_aws.items():
        notes.append(
            f"The witness {region} is an AWS instance in {location} (cloud.instance_type) "
            f"with its Elastic IP and disk: AWS's USD prices of {dates}, at "
            f"{report.inr_per_usd} INR/USD (cloud.inr_per_usd), 730 hours a month."
        )
    if not report.estimate.witness_regions and not external:
        notes.append("No witness region.")
    if external:
        notes.append(f"Not priced: the witness run outside E2E ({', '.join(external)}).")
    return notes


def amount_json(amount: Amount) -> dict[str, int]:
    return {"monthly": amount.monthly, "monthly_at_max": amount.at_max}


def number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def cost_json(report: CostReport) -> dict[str, Any]:
    return {
        "deployment": report.estimate.deployment,
        "currency": report.currency.value,
        "inr_per_usd": number(report.inr_per_usd),
        "prices_date": report.estimate.prices_date,
        "lines": [
            {
                "scope": p.line.scope,
                "item": p.line.item,
                "plan": p.line.plan,
                "count": p.line.count,
                "max_count": p.line.max_count,
                "unit_price": number(p.unit),
                "unit_price_inr": number(p.line.unit_inr),
                "in_seed_estimate": not p.line.witness,
                "source": p.line.source,
                **amount_json(p.amount),
            }
            for p in report.lines
        ],
        "regions": {name: amount_json(a) for name, a in report.regions.items()},
        "totals": {
            "data_regions": amount_json(report.data_regions),
            "global": amount_json(report.global_services),
            "total": amount_json(report.total),
            "witness": amount_json(report.witness),
            "total_with_witness": amount_json(report.total_with_witness),
        },
        "notes": cost_notes(report),
    }


def cmd_cost(args: argparse.Namespace) -> int:
    spec = read_topology(args)
    report = cost_report(spec, load_price_table(), Currency(args.currency))
    if args.json:
        print(json.dumps(cost_json(report), indent=2, ensure_ascii=False))
        return EXIT_OK
    print(f"Monthly cost of deployment '{spec.name}' in {report.currency.value}:")
    print_table(
        ["REGION", "ITEM", "PLAN", "COUNT", "EACH", "MONTHLY", "MAX", "AT MAX"],
        cost_rows(report),
    )
    for note in cost_notes(report):
        print(note)
    return EXIT_OK


# -- geoha availability ----------------------------------------------------------------------
def estimate_json(est: Estimate, report: AvailabilityReport) -> dict[str, Any]:
    table = report.table
    return {
        "availability": est.availability,
        "availability_text": format_percent(est.availability),
        "downtime_min_per_month": est.downtime_min(table),
        "contributions": [
            {
                "name": c.name,
                "unavailability": c.unavailability,
                "downtime_min_per_month": c.unavailability * table.month_min,
            }
            for c in est.contributions
        ],
    }


def availability_json(report: AvailabilityReport) -> dict[str, Any]:
    table, topo = report.table, report.topology
    return {
        "deployment": report.deployment,
        "month_days": table.month_days,
        "month_min": table.month_min,
        "table_date": table.date,
        "components": {
            name: {"availability": c.availability, "description": c.description, "source": c.source}
            for name, c in table.components.items()
        },
        "mean_outage_min": table.mean_outage_min,
        "common_cause_fraction": table.common_cause_fraction,
        "windows_s": {
            "dns_failover": topo.dns_failover_s,
            "write_failover": topo.write_failover_s,
            "sync_stall": topo.sync_stall_s if topo.synchronous else None,
        },
        "regions": {
            r.name: {
                "web": r.web,
                "api": r.api,
                "dns_weight": r.dns_weight,
                "primary": r.primary,
                **estimate_json(report.regions[r.name], report),
            }
            for r in topo.regions
        },
        "single_region": {
            "region": topo.primary.name,
            **estimate_json(report.single_region, report),
        },
        "deployment_estimate": estimate_json(report.deployment_estimate, report),
        "at_autoscale_min": estimate_json(report.at_min, report),
    }


def availability_rows(report: AvailabilityReport) -> list[list[str]]:
    table, topo = report.table, report.topology

    def row(label: str, est: Estimate) -> list[str]:
        return [label, format_percent(est.availability), format_minutes(est.downtime_min(table))]

    rows = [
        row(f"region {r.name} alone ({r.web} web, {r.api} API VMs)", report.regions[r.name])
        for r in topo.regions
    ]
    count = len(topo.regions)
    scope = "active/active" if count > 1 else "single region"
    regions = f"{count} data region" + ("s" if count > 1 else "")
    rows.append(row(f"this spec: {scope}, {regions}", report.deployment_estimate))
    if count > 1:
        rows += [
            ["  " + c.name, "", format_minutes(c.unavailability * table.month_min)]
            for c in report.deployment_estimate.contributions
        ]
    rows.append(row("this spec, every tier at autoscale.min", report.at_min))
    return rows


def availability_notes(report: AvailabilityReport) -> list[str]:
    table, topo = report.table, report.topology
    notes = [f"A month is {table.month_days} days ({table.month_min:,.1f} min), the average month."]
    if len(topo.regions) > 1:
        writes = (
            f"{topo.write_failover_s:g} s (Patroni ttl)"
            if topo.automatic_failover
            else "until the primary is repaired (automatic failover is off)"
        )
        notes.append(
            f"Failover: DNS {topo.dns_failover_s:g} s (health checks x failure threshold + TTL), "
            f"writes {writes}"
            + (f", synchronous standby lost {topo.sync_stall_s:g} s." if topo.synchronous else ".")
        )
    notes.append(
        f"Component figures of {table.date} and their sources: geoha/cloud/availability.toml; "
        "the model: docs/CLOUD.md."
    )
    return notes


def cmd_availability(args: argparse.Namespace) -> int:
    spec = read_topology(args)
    report = availability_report(spec, load_availability_table())
    if args.json:
        print(json.dumps(availability_json(report), indent=2))
        return EXIT_OK
    print(f"Availability of deployment '{spec.name}' per month:")
    print_table(["SCOPE", "AVAILABILITY", "DOWNTIME/MONTH"], availability_rows(report))
    for note in availability_notes(report):
        print(note)
    return EXIT_OK
