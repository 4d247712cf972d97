"""The data tier on real processes: bring-up, failover, region loss, witness loss, switchover."""

from __future__ import annotations

import json
import os
import signal
import stat
import time

import httpx
import psutil
import psycopg
import pytest

from geoha.ops.writer import WriterLoop, count_present
from geoha.runtime.process import read_record
from tests.deployment import Deployment, unique_name

pytestmark = pytest.mark.scenario


def primary_name(dep: Deployment) -> str | None:
    primary: str | None = dep.status()["cluster"]["primary"]
    return primary


def streaming_sync_replica(dep: Deployment, name: str) -> bool:
    db = dep.database(name)
    return bool(db["role"] == "replica" and db["replication_state"] == "streaming" and db["sync"])


def test_up_from_nothing_and_a_write_through_chennai(shared_deployment: Deployment) -> None:
    dep = shared_deployment
    status = dep.status()
    assert status["controller"]["phase"] == "ready"
    assert status["cluster"]["primary"] == "delhi-db"
    assert status["cluster"]["replication"] == "sync"
    delhi = dep.database("delhi-db")
    assert (delhi["role"], delhi["region"]) == ("primary", "delhi")
    assert delhi["timeline"] >= 1
    dep.wait_for(
        "chennai-db a streaming sync replica", lambda: streaming_sync_replica(dep, "chennai-db")
    )
    chennai = dep.database("chennai-db")
    assert chennai["lag_bytes"] is not None and chennai["lag_ms"] is not None
    assert [m["healthy"] for m in status["etcd"]] == [True, True, True]
    assert {m["name"] for m in status["etcd"]} == {"delhi-etcd", "chennai-etcd", "mumbai-etcd"}

    write_dsn = dep.dsn("chennai", write=True)
    assert "target_session_attrs=read-write" in write_dsn
    assert write_dsn.index("127.120.5.1") < write_dsn.index("127.110.5.1")  # local node first
    name = unique_name("monsoon")
    with psycopg.connect(write_dsn, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO themes (name, config) VALUES (%s, %s) RETURNING id",
            (name, '{"accent": "teal"}'),
        ).fetchone()
    assert row is not None
    with psycopg.connect(dep.node_dsn("chennai-db")) as conn:
        in_recovery = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        found = conn.execute("SELECT name, config FROM themes WHERE id = %s", (row[0],)).fetchone()
    assert in_recovery == (True,), "the chennai node must be the replica"
    assert found == (name, {"accent": "teal"})


def test_security_defaults(shared_deployment: Deployment) -> None:
    dep = shared_deployment
    plan = dep.plan
    secrets = plan.secrets_path
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert stat.S_IMODE(plan.pgpass_path.stat().st_mode) == 0o600
    passwords = json.loads(secrets.read_text())
    assert set(passwords) == {"superuser", "replication", "app", "rest"}
    assert len(set(passwords.values())) == 4
    assert all(len(p) >= 24 for p in passwords.values())
    for node in plan.database_nodes:
        assert stat.S_IMODE(node.config_path.stat().st_mode) == 0o600
    # No password in any log or in what the CLI prints.
    printed = dep.geoha("status").stdout + dep.geoha("ps").stdout + dep.dsn("delhi", write=True)
    logs = [
        p
        for p in plan.run_dir.rglob("*")
        if p.is_file() and (p.suffix == ".log" or "pglog" in p.parts)
    ]
    assert logs
    for password in passwords.values():
        assert password not in printed
        for log in logs:
            assert password not in log.read_text(errors="replace"), f"password in {log}"
    with psycopg.connect(dep.node_dsn("delhi-db"), autocommit=True) as conn:
        role = conn.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication FROM pg_roles "
            "WHERE rolname = current_user"
        ).fetchone()
        assert role == (False, False, False, False)
        methods = conn.execute("SHOW password_encryption").fetchone()
        assert methods == ("scram-sha-256",)
        owner = conn.execute(
            "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'app'"
        ).fetchone()
        assert owner == ("geoha_app",)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE public.intruder (id int)")
    # The application user may not reach any other database.
    other = dep.node_dsn("delhi-db").replace("/geoha?", "/postgres?")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(other).close()
    # Patroni's unsafe REST endpoints want its credentials; its reads stay open (LB checks).
    for node in plan.database_nodes:
        with dep.patroni(node.name) as patroni:
            assert patroni.get("/patroni").status_code == 200
            for auth in (None, httpx.BasicAuth("geoha", "not-the-password")):
                assert patroni.post("/restart", json={}, auth=auth).status_code == 401
                assert patroni.patch("/config", json={}, auth=auth).status_code == 401
                assert patroni.post("/reinitialize", auth=auth).status_code == 401


def test_kill_primary_under_writes_loses_no_acknowledged_write(data_deployment: Deployment) -> None:
    dep = data_deployment
    dep.wait_for(
        "chennai-db a streaming sync replica", lambda: streaming_sync_replica(dep, "chennai-db")
    )
    writer = WriterLoop(dep.dsn("delhi", write=True)).start()
    try:
        dep.wait_for("writes flowing", lambda: len(writer.acked) >= 20)
        dep.geoha("chaos", "kill-node", "delhi-db")
        assert primary_name(dep) != "delhi-db"
        dep.wait_for("chennai-db promoted", lambda: primary_name(dep) == "chennai-db")
        acked_at_promotion = len(writer.acked)
        dep.wait_for(
            "writes on the new primary", lambda: len(writer.acked) >= acked_at_promotion + 20
        )
    finally:
        writer.stop()
    assert writer.errors > 0, "the writer should have seen the primary go away"
    # Every acknowledged insert is on the new primary.
    assert count_present(dep.node_dsn("chennai-db"), writer.acked) == len(writer.acked)
    # The killed node is not restarted by the controller...
    time.sleep(3)
    assert dep.database("delhi-db")["role"] == "unreachable"
    assert "stopped (chaos)" in dep.geoha("ps").stdout
    # ...and once started again it rejoins as a replica by itself (pg_rewind if needed).
    dep.geoha("chaos", "start-node", "delhi-db")
    dep.wait_for(
        "delhi-db rejoins as a streaming replica",
        lambda: streaming_sync_replica(dep, "delhi-db"),
        120,
    )
    assert count_present(dep.node_dsn("delhi-db"), writer.acked) == len(writer.acked)


def test_whole_primary_region_lost_promotes_through_the_witness(
    data_deployment: Deployment,
) -> None:
    dep = data_deployment
    dep.wait_for(
        "chennai-db a streaming sync replica", lambda: streaming_sync_replica(dep, "chennai-db")
    )
    writer = WriterLoop(dep.dsn("chennai", write=True)).start()
    try:
        dep.wait_for("writes flowing", lambda: len(writer.acked) >= 10)
        dep.geoha("chaos", "kill-node", "delhi-etcd")
        dep.geoha("chaos", "kill-node", "delhi-db")
        dep.wait_for("chennai-db promoted", lambda: primary_name(dep) == "chennai-db")
        etcd = {m["name"]: m["healthy"] for m in dep.status()["etcd"]}
        assert etcd == {"delhi-etcd": False, "chennai-etcd": True, "mumbai-etcd": True}
        acked = len(writer.acked)
        dep.wait_for("writes on chennai", lambda: len(writer.acked) >= acked + 10)
    finally:
        writer.stop()
    assert count_present(dep.node_dsn("chennai-db"), writer.acked) == len(writer.acked)
    dep.geoha("chaos", "start-node", "delhi-etcd")
    dep.geoha("chaos", "start-node", "delhi-db")
    dep.wait_for("delhi-db rejoins", lambda: streaming_sync_replica(dep, "delhi-db"), 120)


def test_witness_loss_changes_nothing(data_deployment: Deployment) -> None:
    dep = data_deployment
    dep.geoha("chaos", "kill-node", "mumbai-etcd")
    writer = WriterLoop(dep.dsn("delhi", write=True)).start()
    try:
        dep.wait_for("writes flowing", lambda: len(writer.acked) >= 40)
        time.sleep(5)  # several Patroni loops without the witness
        acked = len(writer.acked)
        dep.wait_for("writes still flowing", lambda: len(writer.acked) >= acked + 20)
    finally:
        writer.stop()
    assert writer.errors == 0
    assert primary_name(dep) == "delhi-db"
    assert dep.database("chennai-db")["role"] == "replica"
    etcd = {m["name"]: m["healthy"] for m in dep.status()["etcd"]}
    assert etcd == {"delhi-etcd": True, "chennai-etcd": True, "mumbai-etcd": False}


def test_switchover_to_chennai_and_back(data_deployment: Deployment) -> None:
    dep = data_deployment
    dep.wait_for(
        "chennai-db a streaming sync replica", lambda: streaming_sync_replica(dep, "chennai-db")
    )
    out = dep.geoha("switchover", "--to", "chennai").stdout
    assert "chennai-db is primary" in out
    assert primary_name(dep) == "chennai-db"
    dep.wait_for("delhi-db follows", lambda: streaming_sync_replica(dep, "delhi-db"))
    dep.geoha("switchover", "--to", "delhi")
    assert primary_name(dep) == "delhi-db"
    dep.wait_for("chennai-db follows", lambda: streaming_sync_replica(dep, "chennai-db"))
    bad = dep.geoha("switchover", "--to", "mumbai", check=False)
    assert bad.returncode == 2 and "--to: a data region" in bad.stderr


def test_controller_restarts_a_crashed_node(data_deployment: Deployment) -> None:
    dep = data_deployment
    node = dep.plan.node("chennai-etcd")
    record = read_record(node.dir)
    assert record is not None
    os.kill(record.pid, signal.SIGKILL)  # a crash, not chaos: the controller must restart it
    dep.wait_for(
        "chennai-etcd restarted",
        lambda: (r := read_record(node.dir)) is not None and r.pid != record.pid and r.alive(),
    )
    dep.wait_for(
        "chennai-etcd healthy again",
        lambda: {m["name"]: m["healthy"] for m in dep.status()["etcd"]}["chennai-etcd"],
    )
    lines = dep.geoha("logs", "controller", "--json", "-n", "1000").stdout.splitlines()
    events = [e for e in map(json.loads, lines) if e["node"] == "chennai-etcd"]
    kinds = [e["kind"] for e in events]
    assert "node_exited" in kinds and "node_restarted" in kinds, kinds
    exited = next(e for e in events if e["kind"] == "node_exited")
    assert exited["fields"]["code"] == -signal.SIGKILL
    restarted = next(e for e in events if e["kind"] == "node_restarted")
    assert restarted["fields"]["attempt"] == 1 and restarted["fields"]["backoff_s"] == 2.0
    assert (
        not psutil.pid_exists(record.pid)
        or psutil.Process(record.pid).status() == psutil.STATUS_ZOMBIE
    )
