"""`geoha validate` and `geoha plan --json` as a user runs them: a real subprocess."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest

from geoha.plan import resolve_run_dir
from geoha.spec import SpecError, load_spec, parse_spec
from geoha.topology import parse_topology
from tests.geoha_cli import geoha

BAD_DIR = Path(__file__).parent / "bad_topologies"

GOOD = """
[regions.delhi]
role = "primary"
cidr = "10.10.0.0/16"

[regions.chennai]
role = "replica"
cidr = "10.20.0.0/16"

[regions.mumbai]
role = "witness"
cidr = "10.30.0.0/16"

[regions.delhi.api.autoscale]
desired = 3
"""


def test_validate_good_file(tmp_path: Path) -> None:
    path = tmp_path / "geoha.toml"
    path.write_text(GOOD, encoding="utf-8")
    result = geoha(tmp_path, "validate", "-f", str(path))
    assert result.returncode == 0, result.stderr
    for region in ("delhi", "chennai", "mumbai"):
        assert region in result.stdout
    assert "api 1/3/5" in result.stdout
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == [path]


def test_validate_reference(tmp_path: Path) -> None:
    result = geoha(tmp_path, "validate")
    assert result.returncode == 0, result.stderr
    for region in ("delhi", "chennai", "mumbai"):
        assert region in result.stdout
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "paths"),
    [
        ("unknown_nested_key.toml", ["regions.delhi.api.autoscale.maxx"]),
        ("overlapping_cidrs.toml", ["regions.chennai.cidr"]),
        ("patroni_timing_exceeds_ttl.toml", ["patroni.ttl_s"]),
    ],
)
def test_validate_bad_file(tmp_path: Path, name: str, paths: list[str]) -> None:
    result = geoha(tmp_path, "validate", "-f", str(BAD_DIR / name))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    for path in paths:
        assert any(line.startswith(path + ":") for line in lines), result.stderr
    assert "Traceback" not in result.stderr


def test_validate_reports_every_error(tmp_path: Path) -> None:
    path = tmp_path / "geoha.toml"
    path.write_text('nmae = "x"\n[patroni]\nttl_s = 19\n[dns]\nttl_s = 0\n', encoding="utf-8")
    result = geoha(tmp_path, "validate", "-f", str(path))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert sorted(line.split(":")[0] for line in lines) == ["dns.ttl_s", "nmae", "patroni.ttl_s"]
    assert "Traceback" not in result.stderr


def test_validate_missing_file(tmp_path: Path) -> None:
    result = geoha(tmp_path, "validate", "-f", "missing.toml")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "missing.toml: a readable topology file (got: no such file)"
    ]


BAD_PLAN = """
[regions.delhi]
role = "primary"
[regions.delhi.cloud]
web_plan = "C9.1TB"
[patroni]
ttl_s = 20
loop_wait_s = 15
"""


def test_validate_checks_cloud_plans_after_the_spec_rules(tmp_path: Path) -> None:
    path = tmp_path / "geoha.toml"
    path.write_text(BAD_PLAN, encoding="utf-8")
    result = geoha(tmp_path, "validate", "-f", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "patroni.ttl_s: at least loop_wait_s + 2 * retry_timeout_s (21) (got 20)",
        "regions.delhi.cloud.web_plan: one of C3.4GB, C3.8GB, C3.16GB (got 'C9.1TB')",
    ]


def test_the_core_spec_knows_no_price_table() -> None:
    data = {"regions": {"delhi": {"role": "primary", "cloud": {"web_plan": "C9.1TB"}}}}
    assert parse_spec(data).regions["delhi"].cloud.web_plan == "C9.1TB"
    with pytest.raises(SpecError) as caught:
        parse_topology(data)
    assert [line.split(":")[0] for line in caught.value.errors] == ["regions.delhi.cloud.web_plan"]


def test_plan_json_reference(tmp_path: Path) -> None:
    result = geoha(tmp_path, "plan", "--json")
    assert result.returncode == 0, result.stderr
    plan: dict[str, Any] = json.loads(result.stdout)
    nodes: list[dict[str, Any]] = plan["nodes"]
    data_tier = [n for n in nodes if n["role"] in ("etcd", "database")]
    assert {n["name"]: (n["role"], n["address"]) for n in data_tier} == {
        "delhi-etcd": ("etcd", "127.10.6.1"),
        "chennai-etcd": ("etcd", "127.20.6.1"),
        "mumbai-etcd": ("etcd", "127.30.6.1"),
        "delhi-db": ("database", "127.10.5.1"),
        "chennai-db": ("database", "127.20.5.1"),
    }
    for region, r in (("delhi", 10), ("chennai", 20)):
        mine = [n for n in nodes if n["region"] == region]
        roles = sorted(n["role"] for n in mine if n["role"] not in ("etcd", "database"))
        assert roles == sorted(["api"] * 5 + ["web"] * 5 + ["backend-lb", "frontend-lb"])
        started = {n["name"] for n in mine if not n["standby"]}
        assert {
            f"{region}-api-1",
            f"{region}-api-2",
            f"{region}-web-1",
            f"{region}-web-2",
        } <= started
        assert f"{region}-api-3" not in started  # desired 2 of max 5
        fe = next(n for n in mine if n["role"] == "frontend-lb")
        assert fe["address"] == f"127.{r}.1.1"
    addresses = [ipaddress.IPv4Address(n["address"]) for n in nodes]
    assert all(a in ipaddress.IPv4Network("127.0.0.0/8") for a in addresses)
    assert len(set(addresses)) == len(addresses)
    assert Path(plan["run_dir"]) == resolve_run_dir(load_spec(None), tmp_path.resolve())
    assert list(tmp_path.iterdir()) == [], "plan must not create the run directory"


@pytest.mark.parametrize(
    "args",
    [["frobnicate"], [], ["validate", "--no-such-option"], ["plan", "-f"]],
    ids=["unknown-subcommand", "no-subcommand", "unknown-option", "missing-value"],
)
def test_bad_arguments_exit_2(tmp_path: Path, args: list[str]) -> None:
    result = geoha(tmp_path, *args)
    assert result.returncode == 2
    assert "usage:" in result.stderr
    assert "Traceback" not in result.stderr
