"""Golden files pin the renderers' output.

Regenerate after an intended change with `make golden`
(GEOHA_UPDATE_GOLDEN=1 pytest tests/unit/test_render_golden.py), then review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from geoha.db_access import Secrets
from geoha.plan import NodeRole, Plan, Tools, expand
from geoha.render.etcd import render_etcd
from geoha.render.files import File
from geoha.render.haproxy import render_haproxy
from geoha.render.patroni import hba_rules, render_patroni
from geoha.spec import load_spec, parse_spec

GOLDEN = Path(__file__).parent.parent / "golden"
UPDATE = os.environ.get("GEOHA_UPDATE_GOLDEN") == "1"
FAKE = Secrets(superuser="S" * 32, replication="R" * 32, app="A" * 32, rest="P" * 32)


def reference_plan() -> Plan:
    tools = Tools(
        patroni="/opt/geoha/.venv/bin/patroni", etcd="/usr/bin/etcd", pg_bin_dir="/pg/bin"
    )
    return expand(load_spec(None), Path("/srv/geoha/run"), tools)


def rendered() -> list[tuple[str, File]]:
    plan = reference_plan()
    files: list[tuple[str, File]] = []
    for node in plan.etcd_nodes:
        files += [(f"{node.name}.etcd.yml", f) for f in render_etcd(plan, node)]
    for node in plan.database_nodes:
        files += [(f"{node.name}.patroni.yml", f) for f in render_patroni(plan, node, FAKE)]
    for node in plan.nodes:
        if node.role in (NodeRole.FRONTEND_LB, NodeRole.BACKEND_LB):
            files += [(f"{node.name}.haproxy.cfg", f) for f in render_haproxy(plan, node)]
    return files


@pytest.mark.parametrize("name,file", rendered(), ids=[n for n, _ in rendered()])
def test_renderer_matches_golden(name: str, file: File) -> None:
    golden = GOLDEN / name
    if UPDATE:
        golden.write_text(file.text)
    assert golden.exists(), f"no golden file {golden}: run `make golden`"
    assert file.text == golden.read_text(), f"{name} differs from its golden file"


def test_configs_are_valid_yaml_with_expected_modes() -> None:
    for name, file in rendered():
        if name.endswith(".yml"):
            assert isinstance(yaml.safe_load(file.text), dict), name
        expected = 0o600 if name.endswith("patroni.yml") else 0o644
        assert file.mode == expected, name


def test_patroni_config_carries_the_spec_timings_and_sync_mode() -> None:
    spec = parse_spec({"replication": "async", "patroni": {"ttl_s": 30, "loop_wait_s": 2}})
    plan = expand(spec, Path("/r"), Tools("/p", "/e", "/pg"))
    config = yaml.safe_load(render_patroni(plan, plan.database_nodes[0], FAKE)[0].text)
    dcs = config["bootstrap"]["dcs"]
    assert (dcs["ttl"], dcs["loop_wait"], dcs["retry_timeout"]) == (30, 2, 3)
    assert dcs["synchronous_mode"] is False
    assert dcs["postgresql"]["use_pg_rewind"] is True
    assert dcs["postgresql"]["parameters"]["wal_sender_timeout"] == "5s"
    assert dcs["postgresql"]["parameters"]["wal_log_hints"] == "on"
    assert config["etcd3"]["hosts"] == ["127.10.6.1:2379", "127.20.6.1:2379", "127.30.6.1:2379"]


def test_hba_is_scram_only_and_limited_to_the_plan() -> None:
    plan = reference_plan()
    local, cloud = hba_rules(plan, local=True), hba_rules(plan, local=False)
    for rules in (local, cloud):
        auth = [r.split()[-1] for r in rules]
        assert set(auth) <= {"scram-sha-256", "reject"}
        assert rules[-1] == "host all all 0.0.0.0/0 reject"
        for rule in rules:
            if rule.startswith("host") and "reject" not in rule:
                assert rule.split()[3].endswith("/32"), rule
    app_rules = [r for r in cloud if " geoha_app " in r]
    assert all(r.split()[1] == "geoha" for r in app_rules)  # only the application database
    assert {r.split()[3] for r in app_rules} == {f"{a}/32" for a in plan.app_client_addresses}
    assert not any("127.0.0.1" in r for r in cloud)
    assert any("127.0.0.1/32" in r for r in local)


def test_no_secret_outside_the_patroni_config() -> None:
    for name, file in rendered():
        if not name.endswith("patroni.yml"):
            assert FAKE.superuser not in file.text and FAKE.replication not in file.text
