"""The role table is the one home of each role fact: the plan, the local runtime
and the cloud units all say what it says."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from geoha.cloud.cloudinit import node_unit, service_name
from geoha.cloud.vms import cloud_plan, cloud_vms
from geoha.plan import NodeRole, Plan, Tools, expand
from geoha.render.api import api_env
from geoha.roles import ROLES, LocalUser, home_environment, with_config
from geoha.runtime import kinds as runtime_kinds
from geoha.runtime.kinds import DatabaseKind, RoleKind, kinds
from geoha.spec import load_spec

TOOLS = Tools("/x/patroni", "/x/etcd", "/x/pg", haproxy="/x/haproxy", caddy="/x/caddy")


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    return expand(load_spec(None), tmp_path, TOOLS)


def unit_lines(plan: Plan, name: str) -> dict[str, str]:
    text = node_unit(plan, plan.node(name))
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_every_role_has_a_row_and_a_kind() -> None:
    assert set(ROLES) == set(NodeRole)
    by_role = kinds()
    assert set(by_role) == set(NodeRole)
    assert isinstance(by_role[NodeRole.DATABASE], DatabaseKind)
    assert all(isinstance(k, RoleKind) for k in by_role.values())


def test_the_plan_names_starts_and_checks_nodes_by_the_table(plan: Plan) -> None:
    for node in plan.nodes:
        role = ROLES[node.role]
        assert node.name.split("-")[1] == role.suffix
        assert node.address.split(".")[2] == str(role.tier)
        assert node.config_path == node.dir / role.config
        assert node.command == (
            TOOLS.executable(role.program),
            *with_config(role.args, node.config_path),
        )
        check = role.health
        scheme = "https" if check.port in role.tls_ports else "http"
        url = f"{scheme}://{node.address}:{node.ports[check.port]}{check.path}"
        assert node.health_url == url
        assert node.tls == bool(role.tls_ports)


def test_the_runtime_kinds_stop_run_and_set_up_environments_by_the_table(plan: Plan) -> None:
    by_role = kinds()
    for node in plan.nodes:
        kind, role = by_role[node.role], ROLES[node.role]
        assert kind.stop_timeout_s == role.stop.timeout_s
        if role.local_user is LocalUser.INVOKER:
            assert kind.run_as() is None
    web, api = plan.node("delhi-web-1"), plan.node("delhi-api-1")
    assert by_role[NodeRole.WEB].env(plan, web) == home_environment(web.dir)
    assert by_role[NodeRole.WEB].env(plan, web)["HOME"] == str(web.dir)
    token = {"GEOHA_ADMIN_TOKEN_FILE": str(plan.api_admin_token_path)}  # the local runtime's
    assert by_role[NodeRole.API].env(plan, api) == api_env(plan, api) | token
    assert by_role[NodeRole.ETCD].env(plan, plan.node("delhi-etcd")) == {}


def test_config_checkers_run_the_nodes_own_program(
    plan: Plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[tuple[list[str], str]] = []
    monkeypatch.setattr(runtime_kinds, "run_check", lambda argv, what: ran.append((argv, what)))
    by_role = kinds()
    candidate = Path("/tmp/.candidate")
    for name in ("delhi-fe", "delhi-be", "delhi-web-1", "delhi-db", "delhi-etcd", "delhi-api-1"):
        node = plan.node(name)
        by_role[node.role].check(node, candidate)
    assert ran == [
        (["/x/haproxy", "-c", "-q", "-f", str(candidate)], "haproxy -c"),
        (["/x/haproxy", "-c", "-q", "-f", str(candidate)], "haproxy -c"),
        (
            ["/x/caddy", "validate", "--config", str(candidate), "--adapter", "caddyfile"],
            "caddy validate",
        ),
    ]


def test_cloud_units_say_what_the_table_says() -> None:
    plan = cloud_plan(load_spec(None))
    for vm in cloud_vms(plan):
        for node in vm.nodes:
            role = ROLES[node.role]
            unit = unit_lines(plan, node.name)
            assert service_name(node.role) == role.service
            assert unit["User"] == role.cloud_user
            assert unit["ExecStart"] == " ".join(node.command)
            assert unit.get("TimeoutStopSec") == (
                f"{role.stop.timeout_s:g}" if role.stop.in_unit else None
            )
            assert unit.get("KillSignal") == (
                None if role.stop.signal is signal.SIGTERM else role.stop.signal.name
            )
    web = unit_lines(plan, "delhi-web-1")
    assert web["Environment"] == " ".join(
        f"{k}={v}" for k, v in home_environment(plan.node("delhi-web-1").dir).items()
    )
    assert unit_lines(plan, "delhi-api-1")["EnvironmentFile"] == str(
        plan.node("delhi-api-1").config_path
    )


def test_load_balancers_run_on_no_vm() -> None:
    for role in (NodeRole.FRONTEND_LB, NodeRole.BACKEND_LB):
        assert ROLES[role].service is None and ROLES[role].cloud_user is None
        with pytest.raises(ValueError, match="no VM runs"):
            service_name(role)
