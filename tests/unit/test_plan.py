"""`expand(spec, run_dir, tools)`: the nodes of a deployment and their addresses."""

from __future__ import annotations

import ipaddress
import os
import tempfile
from pathlib import Path

import pytest

from geoha.plan import (
    NodeRole,
    Plan,
    Tools,
    expand,
    node_address,
    resolve_run_dir,
)
from geoha.roles import ROLES, LocalUser
from geoha.spec import load_spec, parse_spec

TOOLS = Tools(patroni="/x/patroni", etcd="/x/etcd", pg_bin_dir="/x/pg")

REGIONS = {
    "delhi": {"role": "primary", "cidr": "10.10.0.0/16"},
    "chennai": {"role": "replica", "cidr": "10.20.0.0/16"},
    "mumbai": {"role": "witness", "cidr": "10.30.0.0/16"},
}


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    return expand(load_spec(None), tmp_path, TOOLS)


def test_layout_constants() -> None:
    tiers = [ROLES[r].tier for r in (NodeRole.API, NodeRole.DATABASE, NodeRole.ETCD)]
    assert tiers == [4, 5, 6]
    net = ipaddress.IPv4Network("127.10.0.0/16")
    assert node_address(net, ROLES[NodeRole.DATABASE].tier, 1) == "127.10.5.1"
    assert node_address(net, ROLES[NodeRole.API].tier, 5) == "127.10.4.5"


def test_reference_nodes(plan: Plan) -> None:
    data_tier = [n for n in plan.nodes if n.role in (NodeRole.ETCD, NodeRole.DATABASE)]
    assert [(n.name, n.region, n.role, n.address) for n in data_tier] == [
        ("delhi-etcd", "delhi", NodeRole.ETCD, "127.10.6.1"),
        ("chennai-etcd", "chennai", NodeRole.ETCD, "127.20.6.1"),
        ("mumbai-etcd", "mumbai", NodeRole.ETCD, "127.30.6.1"),
        ("delhi-db", "delhi", NodeRole.DATABASE, "127.10.5.1"),
        ("chennai-db", "chennai", NodeRole.DATABASE, "127.20.5.1"),
    ]
    assert [n.name for n in plan.etcd_nodes] == ["delhi-etcd", "chennai-etcd", "mumbai-etcd"]
    assert plan.database_node("chennai").name == "chennai-db"
    with pytest.raises(KeyError):
        plan.database_node("mumbai")


def test_addresses_follow_region_tier_index(plan: Plan) -> None:
    tier = {
        NodeRole.FRONTEND_LB: 1,
        NodeRole.WEB: 2,
        NodeRole.BACKEND_LB: 3,
        NodeRole.API: 4,
        NodeRole.DATABASE: 5,
        NodeRole.ETCD: 6,
    }
    second = {"delhi": 10, "chennai": 20, "mumbai": 30}
    for node in plan.nodes:
        index = int(node.name.rsplit("-", 1)[1]) if node.role in (NodeRole.API, NodeRole.WEB) else 1
        assert node.address == f"127.{second[node.region]}.{tier[node.role]}.{index}"
    addresses = [n.address for n in plan.nodes]
    assert len(set(addresses)) == len(addresses)


def test_ports(plan: Plan) -> None:
    for node in plan.etcd_nodes:
        assert node.ports == {"client": 2379, "peer": 2380, "health": 2381}
        assert node.health_url == f"http://{node.address}:2381/health"
        assert node.url("client") == f"https://{node.address}:2379"
        assert node.url("peer") == f"https://{node.address}:2380"
        assert ROLES[node.role].local_user is LocalUser.INVOKER
    for node in plan.database_nodes:
        assert node.ports == {"postgres": 5432, "patroni": 8008}
        assert node.health_url == f"https://{node.address}:8008/patroni"
        assert node.ca == plan.ca_path
        assert node.endpoint("postgres") == f"{node.address}:5432"
        assert ROLES[node.role].local_user is LocalUser.DATABASE


def test_ports_follow_the_spec(tmp_path: Path) -> None:
    spec = parse_spec(
        {
            "database": {"port": 6543, "patroni_port": 9008},
            "etcd": {"client_port": 3379, "peer_port": 3380, "health_port": 3381},
        }
    )
    plan = expand(spec, tmp_path, TOOLS)
    assert plan.node("delhi-db").ports == {"postgres": 6543, "patroni": 9008}
    assert plan.node("mumbai-etcd").ports == {"client": 3379, "peer": 3380, "health": 3381}


def test_directories_and_commands(plan: Plan, tmp_path: Path) -> None:
    for node in plan.nodes:
        assert node.dir == tmp_path / "nodes" / node.name
        assert node.data_dir == tmp_path / "nodes" / node.name / "data"
        assert node.log_path.parent == node.dir
    etcd = plan.node("delhi-etcd")
    assert etcd.config_path == etcd.dir / "etcd.yml"
    assert etcd.command == ("/x/etcd", "--config-file", str(etcd.dir / "etcd.yml"))
    db = plan.node("delhi-db")
    assert db.config_path == db.dir / "patroni.yml"
    assert db.command == ("/x/patroni", str(db.dir / "patroni.yml"))
    assert plan.run_dir == tmp_path
    assert plan.pg_bin_dir == "/x/pg"
    assert plan.secrets_path == tmp_path / "secrets.json"
    assert list(tmp_path.iterdir()) == [], "expand must not touch the disk"


def test_app_client_addresses(plan: Plan) -> None:
    assert plan.app_client_addresses == (
        *(f"127.10.4.{i}" for i in range(1, 6)),
        *(f"127.20.4.{i}" for i in range(1, 6)),
    )


def test_app_client_addresses_follow_api_max(tmp_path: Path) -> None:
    regions = {
        **REGIONS,
        "chennai": {**REGIONS["chennai"], "api": {"autoscale": {"max": 7}}},
    }
    plan = expand(parse_spec({"regions": regions}), tmp_path, TOOLS)
    assert plan.app_client_addresses.count("127.20.4.7") == 1
    assert len(plan.app_client_addresses) == 5 + 7


def test_local_net_is_used(tmp_path: Path) -> None:
    regions = {
        **REGIONS,
        "chennai": {**REGIONS["chennai"], "local_net": "127.200.0.0/16"},
    }
    plan = expand(parse_spec({"regions": regions}), tmp_path, TOOLS)
    assert plan.node("chennai-db").address == "127.200.5.1"
    assert plan.node("chennai-etcd").address == "127.200.6.1"
    assert plan.node("delhi-db").address == "127.10.5.1"
    assert "127.200.4.5" in plan.app_client_addresses
    assert not any(a.startswith("127.20.") for a in plan.app_client_addresses)


def test_resolve_run_dir(tmp_path: Path) -> None:
    reachable = Path(tempfile.mkdtemp(prefix="geoha-unit-"))
    try:
        reachable.chmod(0o711)
        assert resolve_run_dir(load_spec(None), reachable) == reachable / ".geoha"
    finally:
        reachable.rmdir()
    absolute = parse_spec({"run_dir": str(tmp_path / "state")})
    assert resolve_run_dir(absolute, Path("/elsewhere")) == tmp_path / "state"


def test_private_directory_as_root_moves_the_default_run_dir(tmp_path: Path) -> None:
    # As root the database runs as `postgres`, which cannot reach a private folder
    # (pytest's tmp_path is 0700): the default run directory moves to /var/lib/geoha.
    private = tmp_path / "repo"
    private.mkdir()
    run_dir = resolve_run_dir(load_spec(None), private)
    if os.geteuid() == 0:
        assert run_dir.parent == Path("/var/lib/geoha")
        assert run_dir == resolve_run_dir(load_spec(None), private)  # stable
    else:
        assert run_dir == private / ".geoha"
    # An explicit run_dir is always kept.
    explicit = parse_spec({"run_dir": "state"})
    assert resolve_run_dir(explicit, private) == private / "state"


def test_traffic_tier_slots_up_to_max_started_up_to_desired(plan: Plan) -> None:
    for region in ("delhi", "chennai"):
        apis = plan.in_region(region, NodeRole.API)
        webs = plan.in_region(region, NodeRole.WEB)
        assert [n.standby for n in apis] == [False, False, True, True, True]
        assert [n.standby for n in webs] == [False, False, True, True, True]
        assert plan.only(region, NodeRole.FRONTEND_LB).ports == {
            "http": 8080,
            "https": 8443,
            "stats": 8404,
        }
        assert plan.only(region, NodeRole.BACKEND_LB).health_url.endswith(":8404/lb-health")
    assert not plan.in_region("mumbai", NodeRole.API)  # the witness carries no traffic
