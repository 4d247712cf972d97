"""`geoha availability`: the seed's two figures, monotonic behaviour, the model's terms."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from geoha.cloud.availability import (
    AvailabilityTable,
    AvailabilityTableError,
    Component,
    Estimate,
    RegionShape,
    Topology,
    at_least,
    availability_report,
    estimate,
    failover_possible,
    format_minutes,
    format_percent,
    load_availability_table,
    parse_availability_table,
    region_alone,
    topology_of,
)
from geoha.spec import load_spec, parse_spec
from tests.geoha_cli import geoha

REPO = Path(__file__).resolve().parents[2]

TABLE = load_availability_table()
DELHI = RegionShape("delhi", web=2, api=2, dns_weight=50, primary=True)
CHENNAI = RegionShape("chennai", web=2, api=2, dns_weight=50)
REFERENCE = Topology(regions=(DELHI, CHENNAI), etcd_members=3)


def downtime(est: Estimate, table: AvailabilityTable = TABLE) -> float:
    return est.downtime_min(table)


# -- the seed's figures ------------------------------------------------------------------------
def test_month_is_the_average_month() -> None:
    assert TABLE.month_days == 30.44
    assert TABLE.month_min == pytest.approx(43833.6)


def test_seed_single_region_figure() -> None:
    single = region_alone(DELHI, TABLE)
    assert format_percent(single.availability) == "99.9 %"
    assert round(downtime(single), 1) == 43.8


def test_seed_active_active_figure() -> None:
    both = estimate(REFERENCE, TABLE)
    assert format_percent(both.availability) == "99.99 %"
    assert round(downtime(both), 2) == 4.38


def test_reference_spec_gives_the_seed_figures() -> None:
    report = availability_report(load_spec(None), TABLE)
    assert report.topology == REFERENCE
    assert round(downtime(report.single_region), 1) == 43.8
    assert round(downtime(report.deployment_estimate), 2) == 4.38


def test_every_figure_has_a_source() -> None:
    for component in TABLE.components.values():
        assert component.source.strip()
    assert TABLE.outage_source.strip()
    assert TABLE.common_cause_source.strip()
    assert TABLE.dns.availability == 1.0  # Route 53's SLA


# -- monotonic: more never lowers availability ----------------------------------------------------
@pytest.mark.parametrize("tier", ["web", "api"])
def test_more_instances_never_lower_availability(tier: str) -> None:
    previous = 0.0
    for count in range(1, 11):
        delhi = dataclasses.replace(DELHI, **{tier: count})
        now = estimate(dataclasses.replace(REFERENCE, regions=(delhi, CHENNAI)), TABLE)
        assert now.availability >= previous
        assert (
            region_alone(delhi, TABLE).availability
            >= region_alone(
                dataclasses.replace(DELHI, **{tier: max(1, count - 1)}), TABLE
            ).availability
        )
        previous = now.availability


def regions(count: int) -> tuple[RegionShape, ...]:
    return (DELHI, *(dataclasses.replace(CHENNAI, name=f"r{i}") for i in range(1, count)))


def test_more_regions_never_lower_availability() -> None:
    # etcd keeps an odd member count: a witness when the data regions are even.
    previous = region_alone(DELHI, TABLE).availability
    for count in range(2, 8):
        members = count + 1 if count % 2 == 0 else count
        now = estimate(Topology(regions=regions(count), etcd_members=members), TABLE).availability
        assert now >= previous, count
        previous = now


def test_an_even_etcd_cluster_costs_next_to_nothing() -> None:
    # Six members tolerate two failures, as five do, and have one more member to lose: the
    # model shows it, but the fifth region still beats the reference by far.
    five = estimate(Topology(regions=regions(5), etcd_members=6), TABLE).availability
    four = estimate(Topology(regions=regions(4), etcd_members=5), TABLE).availability
    assert abs(five - four) < 1e-8
    assert five > estimate(REFERENCE, TABLE).availability


def test_three_data_regions_beat_two() -> None:
    three = parse_spec(
        {
            "regions": {
                "delhi": {"role": "primary", "cidr": "10.10.0.0/16"},
                "chennai": {"role": "replica", "cidr": "10.20.0.0/16"},
                "hyderabad": {"role": "replica", "cidr": "10.40.0.0/16"},
                "mumbai": {"role": "witness", "cidr": "10.30.0.0/16"},
            }
        }
    )
    report = availability_report(three, TABLE)
    assert [r.name for r in report.topology.regions] == ["delhi", "chennai", "hyderabad"]
    assert report.topology.etcd_members == 4
    assert report.deployment_estimate.availability > estimate(REFERENCE, TABLE).availability


# -- the model's terms ---------------------------------------------------------------------------
def test_terms_of_active_active() -> None:
    terms = {c.name: c.unavailability for c in estimate(REFERENCE, TABLE).contributions}
    assert set(terms) == {
        "global DNS",
        "every region down at once",
        "DNS failover",
        "write failover",
        "synchronous standby lost",
    }
    assert terms["global DNS"] == 0.0
    assert all(u > 0 for name, u in terms.items() if name != "global DNS")


def test_common_cause_limits_what_regions_in_parallel_give() -> None:
    independent = dataclasses.replace(TABLE, common_cause_fraction=0.0)
    region = region_alone(DELHI, TABLE).unavailability
    terms = {c.name: c.unavailability for c in estimate(REFERENCE, independent).contributions}
    assert terms["every region down at once"] == pytest.approx(region**2)


def test_slower_failover_costs_availability() -> None:
    base = estimate(REFERENCE, TABLE).availability
    slow_dns = dataclasses.replace(REFERENCE, dns_failover_s=300.0)
    slow_patroni = dataclasses.replace(REFERENCE, write_failover_s=60.0)
    assert estimate(slow_dns, TABLE).availability < base
    assert estimate(slow_patroni, TABLE).availability < base


def test_without_automatic_failover_writes_wait_for_the_primary() -> None:
    manual = dataclasses.replace(REFERENCE, automatic_failover=False)
    terms = {c.name: c.unavailability for c in estimate(manual, TABLE).contributions}
    # Writes are down whenever the primary's site or database node is.
    assert terms["write failover"] == pytest.approx(
        TABLE.site.unavailability + TABLE.vm.unavailability
    )
    assert estimate(manual, TABLE).availability < estimate(REFERENCE, TABLE).availability


def test_asynchronous_replication_has_no_standby_stall() -> None:
    asynchronous = dataclasses.replace(REFERENCE, synchronous=False)
    terms = {c.name: c.unavailability for c in estimate(asynchronous, TABLE).contributions}
    assert terms["synchronous standby lost"] == 0.0


def test_failover_needs_an_etcd_majority_without_the_primary() -> None:
    assert failover_possible(dataclasses.replace(REFERENCE, etcd_members=2), TABLE) == 0.0
    with_witness = failover_possible(REFERENCE, TABLE)
    member = TABLE.site.availability * TABLE.vm.availability
    assert with_witness == pytest.approx(member**2)
    assert failover_possible(dataclasses.replace(REFERENCE, automatic_failover=False), TABLE) == 0


def test_region_weight_zero_takes_no_dns_failover() -> None:
    standby = dataclasses.replace(CHENNAI, dns_weight=0)
    terms = {
        c.name: c.unavailability
        for c in estimate(
            dataclasses.replace(REFERENCE, regions=(DELHI, standby)), TABLE
        ).contributions
    }
    alone = {c.name: c.unavailability for c in estimate(REFERENCE, TABLE).contributions}
    assert terms["DNS failover"] == pytest.approx(alone["DNS failover"])


def test_a_single_data_region_is_the_region_alone() -> None:
    one = Topology(regions=(DELHI,), etcd_members=1)
    assert estimate(one, TABLE) == region_alone(DELHI, TABLE)


def test_perfect_components_give_full_availability() -> None:
    perfect = Component(1.0, "perfect", "test")
    table = dataclasses.replace(TABLE, site=perfect, load_balancer=perfect, vm=perfect)
    assert estimate(REFERENCE, table).availability == 1.0
    assert format_percent(1.0) == "100 %"


def test_spec_timings_reach_the_model() -> None:
    spec = parse_spec(
        {
            "dns": {"ttl_s": 60, "health_check_interval_s": 30, "failure_threshold": 2},
            "patroni": {"ttl_s": 30},
            "replication": "async",
        }
    )
    topo = topology_of(spec)
    assert (topo.dns_failover_s, topo.write_failover_s, topo.synchronous) == (120, 30, False)
    assert topology_of(spec, "min").regions[0].web == 1


def test_at_least() -> None:
    assert at_least(2, 2, 0.5) == pytest.approx(0.25)
    assert at_least(1, 2, 0.5) == pytest.approx(0.75)
    assert at_least(3, 2, 0.9) == 0.0


# -- formats and the table -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("availability", "text"),
    [
        (0.999, "99.9 %"),
        (0.99899986, "99.9 %"),
        (0.9999, "99.99 %"),
        (0.99977, "99.98 %"),
        (0.9999967, "99.9997 %"),
        (0.99, "99.0 %"),
    ],
)
def test_format_percent(availability: float, text: str) -> None:
    assert format_percent(availability) == text


def test_format_minutes() -> None:
    assert format_minutes(43.8274) == "43.8 min"
    assert format_minutes(4.3812) == "4.38 min"
    assert format_minutes(0.044) == "0.0440 min"
    assert format_minutes(1234.5) == "1,234 min"


def test_table_with_an_availability_above_one_is_refused() -> None:
    text = (REPO / "geoha" / "cloud" / "availability.toml").read_text(encoding="utf-8")
    with pytest.raises(AvailabilityTableError):
        parse_availability_table(text.replace("availability = 0.9997", "availability = 1.2"))


# -- the command line --------------------------------------------------------------------------


def test_cli_availability(tmp_path: Path) -> None:
    result = geoha(tmp_path, "availability")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any("delhi alone" in line and "99.9 %" in line and "43.8 min" in line for line in lines)
    assert any(
        "active/active" in line and "99.99 %" in line and "4.38 min" in line for line in lines
    )
    assert "30.44 days" in result.stdout


def test_cli_availability_json(tmp_path: Path) -> None:
    result = geoha(tmp_path, "availability", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["single_region"]["region"] == "delhi"
    assert data["single_region"]["availability_text"] == "99.9 %"
    assert round(data["deployment_estimate"]["downtime_min_per_month"], 2) == 4.38
    assert data["components"]["dns"]["source"]


def test_cli_availability_bad_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "geoha.toml"
    path.write_text("[regions.delhi.web.autoscale]\nmax = 30\n", encoding="utf-8")
    result = geoha(tmp_path, "availability", "-f", str(path))
    assert result.returncode == 2
    assert "regions.delhi.web.autoscale.max" in result.stderr
    assert "Traceback" not in result.stderr
