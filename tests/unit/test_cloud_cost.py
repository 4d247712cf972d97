"""`geoha cost`: the price table, the seed's estimate reproduced exactly, rounding, the CLI."""

from __future__ import annotations

import json
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest

from geoha.cloud.choices import Currency
from geoha.cloud.commands import group_digits, money
from geoha.cloud.cost import (
    WITNESS_ITEM,
    Amount,
    CostReport,
    cost_report,
    whole,
)
from geoha.cloud.prices import (
    PlanKind,
    PriceTableError,
    load_price_table,
    parse_price_table,
    plan_errors,
)
from geoha.spec import SpecError, load_spec, parse_spec
from geoha.topology import load_topology, parse_topology
from tests.geoha_cli import geoha
from tests.unit.cloud_specs import E2E_WITNESS, witness_on

REPO = Path(__file__).resolve().parents[2]

THREE_REGIONS = {
    "regions": {
        "delhi": {"role": "primary", "cidr": "10.10.0.0/16"},
        "chennai": {"role": "replica", "cidr": "10.20.0.0/16"},
        "hyderabad": {"role": "replica", "cidr": "10.40.0.0/16"},
        "mumbai": {"role": "witness", "cidr": "10.30.0.0/16"},
    }
}

# The seed's table, per data region: (item, plan, count, INR, USD).
SEED_REGION = [
    ("web VMs", "C3.8GB", 2, 3000, 36),
    ("API VMs", "C3.8GB", 2, 3000, 36),
    ("frontend LB", "E2E-LB-2", 1, 1500, 18),
    ("backend LB", "E2E-LB-2", 1, 1500, 18),
    ("database", "C3.16GB", 1, 6000, 72),
]


def three_regions_with(region: str, table: dict[str, object]) -> dict[str, object]:
    """The three-data-region spec with `table` merged into one region."""
    regions = {name: dict(r) for name, r in THREE_REGIONS["regions"].items()}
    regions[region].update(table)
    return {"regions": regions}


def report(data: dict[str, object] | None = None, currency: Currency = Currency.INR) -> CostReport:
    return cost_report(parse_spec(data or {}), load_price_table(), currency)


def region_lines(rep: CostReport, region: str) -> list[tuple[str, str | None, int, int]]:
    return [
        (p.line.item, p.line.plan, p.line.count, p.amount.monthly)
        for p in rep.lines
        if p.line.scope == region
    ]


# -- the seed's numbers ----------------------------------------------------------------------
@pytest.mark.parametrize(("currency", "column"), [(Currency.INR, 3), (Currency.USD, 4)])
def test_reference_reproduces_the_seed_lines(currency: Currency, column: int) -> None:
    rep = report(currency=currency)
    expected = [(r[0], r[1], r[2], r[column]) for r in SEED_REGION]
    assert region_lines(rep, "delhi") == expected
    assert region_lines(rep, "chennai") == expected


def test_reference_totals_in_rupees() -> None:
    rep = report()
    assert rep.regions == {"delhi": Amount(15000, 24000), "chennai": Amount(15000, 24000)}
    assert rep.data_regions.monthly == 30000
    assert rep.global_services.monthly == 500
    assert rep.total.monthly == 30500


def test_reference_totals_in_dollars_add_up_as_the_seed_shows() -> None:
    rep = report(currency=Currency.USD)
    assert rep.inr_per_usd == Decimal("83.33")
    assert {name: a.monthly for name, a in rep.regions.items()} == {"delhi": 180, "chennai": 180}
    assert rep.data_regions.monthly == 360
    assert rep.global_services.monthly == 6
    assert rep.total.monthly == 366
    in_total = [p.amount.monthly for p in rep.lines if not p.line.witness]
    assert sum(in_total) == rep.total.monthly


def test_global_line_is_route53_and_uptimerobot() -> None:
    (line,) = [p for p in report().lines if p.line.scope == "global"]
    assert line.line.item == "Route 53 + UptimeRobot"
    assert (line.line.count, line.amount.monthly) == (1, 500)


# -- max scale and witness -----------------------------------------------------------------------
def test_max_scale_prices_every_tier_at_autoscale_max() -> None:
    rep = report()
    web = next(p for p in rep.lines if p.line.scope == "delhi" and p.line.item == "web VMs")
    assert (web.line.max_count, web.amount.at_max) == (5, 7500)
    assert rep.regions["delhi"].at_max == 5 * 1500 + 5 * 1500 + 1500 + 1500 + 6000
    assert rep.total.at_max == 48500
    assert report(currency=Currency.USD).total.at_max == 2 * (90 + 90 + 18 + 18 + 72) + 6


def test_max_scale_follows_the_spec() -> None:
    rep = report(three_regions_with("delhi", {"api": {"autoscale": {"desired": 3, "max": 8}}}))
    api = next(p for p in rep.lines if p.line.scope == "delhi" and p.line.item == "API VMs")
    assert (api.line.count, api.line.max_count) == (3, 8)
    assert (api.amount.monthly, api.amount.at_max) == (4500, 12000)


def test_witness_is_priced_apart_from_the_seed_total() -> None:
    for currency, witness, with_witness in [(Currency.INR, 750, 31250), (Currency.USD, 9, 375)]:
        rep = report(E2E_WITNESS, currency=currency)
        (line,) = [p for p in rep.lines if p.line.witness]
        assert (line.line.scope, line.line.item, line.line.plan) == (
            "mumbai",
            WITNESS_ITEM,
            "C3.4GB",
        )
        assert rep.witness.monthly == witness
        assert rep.total.monthly == (30500 if currency is Currency.INR else 366)
        assert rep.total_with_witness.monthly == with_witness


def test_the_reference_witness_on_aws_is_priced_from_dated_dollar_prices() -> None:
    """t4g.nano 0.0028 USD/h, the Elastic IP 0.005 USD/h (730 h), 8 GB of gp3 at 0.0912."""
    for currency, lines, witness in [
        (Currency.INR, [170, 304, 61], 535),
        (Currency.USD, [2, 4, 1], 7),
    ]:
        rep = report(currency=currency)
        priced = [p for p in rep.lines if p.line.witness]
        assert [(p.line.scope, p.line.plan) for p in priced] == [
            ("mumbai", "t4g.nano"),
            ("mumbai", "public IPv4"),
            ("mumbai", "8 GB gp3"),
        ]
        assert [p.amount.monthly for p in priced] == lines
        assert all(p.line.source.startswith("AWS ap-south-1, 2026-") for p in priced)
        assert rep.witness.monthly == witness
        assert rep.total_with_witness.monthly == rep.total.monthly + witness
    assert report().estimate.aws_witnesses == {"mumbai": ("ap-south-1", "2026-09-17, 2026-09-25")}
    # Another priced instance type, at another exchange rate.
    rep = report(
        {
            **witness_on(
                {"provider": "aws", "location": "ap-south-1", "instance_type": "t3.micro"}
            ),
            "cloud": {"inr_per_usd": 90.0},
        }
    )
    instance = next(p for p in rep.lines if p.line.plan == "t3.micro")
    assert instance.line.unit_inr == Decimal("0.0112") * 730 * Decimal("90.0")


def test_an_aws_witness_must_be_priced(tmp_path: Path) -> None:
    for cloud, error in [
        (
            {"provider": "aws", "location": "ap-south-1", "instance_type": "m5.24xlarge"},
            "regions.mumbai.cloud.instance_type: one of t4g.nano, t4g.micro, t3.micro (priced "
            "for ap-south-1) (got 'm5.24xlarge')",
        ),
        (
            {"provider": "aws", "location": "us-east-1"},
            "regions.mumbai.cloud.location: an AWS region geoha has prices for: ap-south-1 "
            "(got 'us-east-1')",
        ),
    ]:
        with pytest.raises(SpecError) as caught:
            parse_topology(witness_on(cloud))
        assert caught.value.errors == [error]


def test_witness_plan_comes_from_the_spec() -> None:
    rep = report(three_regions_with("mumbai", {"cloud": {"etcd_plan": "C3.8GB"}}))  # on E2E
    assert rep.witness.monthly == 1500


def test_a_witness_outside_e2e_is_not_priced_and_says_so(tmp_path: Path) -> None:
    rep = report(three_regions_with("mumbai", {"cloud": {"external": True}}))
    assert [p for p in rep.lines if p.line.witness] == []
    assert rep.witness.monthly == 0
    assert rep.total_with_witness.monthly == rep.total.monthly
    topology = tmp_path / "geoha.toml"
    lines = ["[regions.delhi]", 'role = "primary"', "[regions.chennai]", 'role = "replica"']
    lines += ['cidr = "10.20.0.0/16"', "[regions.mumbai]", 'role = "witness"']
    lines += ['cidr = "10.30.0.0/16"', "[regions.mumbai.cloud]", "external = true"]
    topology.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = geoha(tmp_path, "cost", "-f", str(topology))
    assert result.returncode == 0, result.stderr
    assert "Not priced: the witness run outside E2E (mumbai)." in result.stdout
    assert "No witness region." not in result.stdout


def test_three_data_regions_give_three_regions_lines() -> None:
    rep = report(THREE_REGIONS)
    assert rep.estimate.data_regions == ("delhi", "chennai", "hyderabad")
    for region in ("delhi", "chennai", "hyderabad"):
        assert [line[0] for line in region_lines(rep, region)] == [r[0] for r in SEED_REGION]
        assert rep.regions[region].monthly == 15000
    assert rep.total.monthly == 45500
    assert rep.total_with_witness.monthly == 46250
    usd = report(THREE_REGIONS, Currency.USD)
    assert (usd.total.monthly, usd.total_with_witness.monthly) == (546, 555)


# -- rounding ----------------------------------------------------------------------------------
def test_rounding_is_half_up_to_whole_units() -> None:
    assert whole(Decimal("17.5")) == 18
    assert whole(Decimal("17.49")) == 17
    assert whole(Decimal("18.0007")) == 18


def test_each_line_is_rounded_then_added() -> None:
    # 1500 / 80 = 18.75 a VM: two VMs are $37.50 -> $38; the LB $18.75 -> $19.
    rep = report({"cloud": {"inr_per_usd": 80.0}}, Currency.USD)
    web = next(p for p in rep.lines if p.line.item == "web VMs")
    assert (web.unit, web.amount.monthly) == (Decimal("18.75"), 38)
    delhi = [p.amount.monthly for p in rep.lines if p.line.scope == "delhi"]
    assert rep.regions["delhi"].monthly == sum(delhi) == 38 + 38 + 19 + 19 + 75


def test_money_formats() -> None:
    assert group_digits(30500, Currency.INR) == "30,500"
    assert group_digits(150000, Currency.INR) == "1,50,000"
    assert group_digits(12345678, Currency.INR) == "1,23,45,678"
    assert group_digits(1234567, Currency.USD) == "1,234,567"
    assert money(Decimal("18.75"), Currency.USD) == "$18.75"
    assert money(366, Currency.USD) == "$366"
    assert money(30500, Currency.INR) == "₹30,500"


# -- the price table and plan validation ------------------------------------------------------
def test_price_table_has_a_date_and_a_source_for_every_price() -> None:
    table = load_price_table()
    assert table.date
    for price in [*table.plans.values(), *table.services.values()]:
        assert price.source.strip(), price.name
    assert table.names(PlanKind.LOAD_BALANCER) == ["E2E-LB-2"]
    assert {"C3.4GB", "C3.8GB", "C3.16GB"} <= set(table.names(PlanKind.NODE))


def test_price_table_without_a_source_is_refused() -> None:
    text = (REPO / "geoha" / "cloud" / "prices.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    assert data["plans"]["C3.8GB"]["source"]
    broken = text.replace('source = "seed estimate (database: ₹6,000)"\n', "")
    with pytest.raises(PriceTableError):
        parse_price_table(broken)


def test_unknown_plan_rejected_with_its_dotted_path(tmp_path: Path) -> None:
    path = tmp_path / "geoha.toml"
    path.write_text(
        '[regions.delhi]\nrole = "primary"\n[regions.delhi.cloud]\nweb_plan = "C9.1TB"\n',
        encoding="utf-8",
    )
    with pytest.raises(SpecError) as caught:
        load_topology(path)
    assert "regions.delhi.cloud.web_plan: one of C3.4GB, C3.8GB, C3.16GB (got 'C9.1TB')" in (
        caught.value.errors
    )


@pytest.mark.parametrize(
    ("region", "field", "value", "expected"),
    [
        ("chennai", "database_plan", "DBS.16GB", "one of C3.4GB, C3.8GB, C3.16GB"),
        ("delhi", "backend_lb_plan", "C3.8GB", "one of E2E-LB-2"),
        ("delhi", "api_plan", "E2E-LB-2", "one of C3.4GB, C3.8GB, C3.16GB"),
        ("mumbai", "etcd_plan", "c3.4gb", "one of C3.4GB, C3.8GB, C3.16GB"),
    ],
)
def test_plan_of_the_wrong_name_or_kind_is_rejected(
    region: str, field: str, value: str, expected: str
) -> None:
    with pytest.raises(SpecError) as caught:
        parse_topology(three_regions_with(region, {"cloud": {field: value}}))
    assert caught.value.errors == [f"regions.{region}.cloud.{field}: {expected} (got {value!r})"]


def test_reference_plans_are_valid() -> None:
    assert plan_errors(load_spec(None)) == []


# -- the command line, as a user runs it --------------------------------------------------------


def test_cli_cost_in_dollars(tmp_path: Path) -> None:
    result = geoha(tmp_path, "cost", "--currency", "USD")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any("region total" in line and "$180" in line for line in lines)
    assert any("as in the seed estimate" in line and "$366" in line for line in lines)
    assert any(
        "witness (not in the seed estimate): instance" in line and "$2" in line for line in lines
    )
    assert any("with the witness" in line and "$373" in line for line in lines)
    assert "The witness mumbai is an AWS instance in ap-south-1" in result.stdout
    assert "Bandwidth" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_cli_cost_in_rupees(tmp_path: Path) -> None:
    result = geoha(tmp_path, "cost")
    assert result.returncode == 0, result.stderr
    assert any("₹30,500" in line for line in result.stdout.splitlines())


def test_cli_cost_json(tmp_path: Path) -> None:
    result = geoha(tmp_path, "cost", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["currency"] == "INR"
    assert data["totals"]["total"] == {"monthly": 30500, "monthly_at_max": 48500}
    assert data["totals"]["total_with_witness"]["monthly"] == 31035
    assert data["regions"]["delhi"]["monthly"] == 15000
    assert all(line["source"] for line in data["lines"])
    assert any("andwidth" in note for note in data["notes"])


def test_cli_cost_bad_file_exits_2_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "geoha.toml"
    path.write_text('[regions.delhi.cloud]\ndatabase_plan = "C9.1TB"\n', encoding="utf-8")
    result = geoha(tmp_path, "cost", "-f", str(path), "--currency", "USD")
    assert result.returncode == 2
    assert "regions.delhi.cloud.database_plan: one of" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_cli_cost_unknown_currency_exits_2(tmp_path: Path) -> None:
    result = geoha(tmp_path, "cost", "--currency", "EUR")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
