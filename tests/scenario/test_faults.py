"""Region faults with real processes: partitions through iptables (owner match on the
region groups), a whole region killed, and heal."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import httpx
import psycopg
import pytest

from geoha.ops.writer import WriterLoop, count_present
from geoha.runtime import control
from geoha.runtime.partition import chain_name
from geoha.runtime.process import read_record
from tests.deployment import Deployment

pytestmark = pytest.mark.scenario


def faults(dep: Deployment) -> list[tuple[str, str, list[str]]]:
    return [(f["kind"], f["target"], f["others"]) for f in dep.status()["faults"]]


def chain_rules(dep: Deployment) -> str | None:
    """The deployment's iptables chain as `iptables -S` prints it (None: no chain)."""
    result = subprocess.run(
        ["iptables", "-w", "5", "-S", chain_name(dep.plan.spec.name)],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout if result.returncode == 0 else None


def streaming_replica(dep: Deployment, name: str) -> bool:
    db = dep.database(name)
    return bool(db["role"] == "replica" and db["replication_state"] == "streaming" and db["sync"])


def in_recovery(dep: Deployment, name: str) -> bool | None:
    """pg_is_in_recovery() of one node, from this machine (None: it does not answer)."""
    try:
        with psycopg.connect(dep.node_dsn(name), autocommit=True) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    except psycopg.Error:
        return None
    return bool(row and row[0])


def dns_health(dep: Deployment) -> dict[str, bool]:
    status: dict[str, Any] = dep.status()["dns"]
    return {r["region"]: r["healthy"] for r in status["records"]}


def entry_get(dep: Deployment, region: str, path: str) -> httpx.Response:
    return httpx.get(f"{dep.entry_url(region)}{path}", timeout=10)


def test_partitions_of_the_witness_and_of_the_primary_region(deployment: Deployment) -> None:
    dep = deployment
    dep.wait_for("chennai-db a sync replica", lambda: streaming_replica(dep, "chennai-db"))
    rules = chain_rules(dep)
    assert rules is not None and "geoha mark delhi" in rules and "DROP" not in rules

    writer = WriterLoop(dep.dsn("chennai", write=True)).start()
    try:
        dep.wait_for("writes flowing", lambda: len(writer.acked) >= 20)
        assert writer.failures_since(0) == []
        # the witness alone: etcd keeps its quorum, nothing fails over, no write fails
        cut = time.monotonic()
        out = dep.geoha("chaos", "partition", "mumbai").stdout
        assert "mumbai: cut off from delhi, chennai" in out
        assert faults(dep) == [("partition", "mumbai", ["delhi", "chennai"])]
        before = len(writer.acked)
        time.sleep(8)
        assert dep.primary() == "delhi-db"
        assert writer.failures_since(cut) == []
        assert len(writer.acked) > before + 50
        dep.geoha("chaos", "heal", "mumbai")
        assert faults(dep) == []

        # the primary's region: chennai is promoted, delhi demotes itself
        dep.geoha("chaos", "partition", "delhi")
        rules = chain_rules(dep)
        assert rules is not None and "geoha cut delhi|chennai" in rules
        dep.wait_for("chennai-db promoted", lambda: dep.primary() == "chennai-db", 90)
        dep.wait_for("delhi-db read-only", lambda: in_recovery(dep, "delhi-db") is True, 60)
        # delhi is fenced: its node lost the DCS, so it neither counts as healthy nor
        # serves reads (they would show writes chennai never had); DNS takes it out
        deep = entry_get(dep, "delhi", "/health/deep")
        assert deep.status_code == 503 and "etcd member" in deep.text and "unhealthy" in deep.text
        assert entry_get(dep, "delhi", "/api/v1/themes?limit=1").status_code == 503
        dep.wait_for(
            "delhi out of DNS", lambda: dns_health(dep) == {"delhi": False, "chennai": True}
        )
        assert entry_get(dep, "chennai", "/api/v1/themes?limit=1").status_code == 200
        promoted = len(writer.acked)
        dep.wait_for("writes on chennai", lambda: len(writer.acked) >= promoted + 20)
    finally:
        writer.stop()
    # every acknowledged write is on the new primary: delhi acknowledged none after the cut
    assert count_present(dep.node_dsn("chennai-db"), writer.acked) == len(writer.acked)

    healed = dep.geoha("chaos", "heal").stdout
    assert "partitions of delhi removed" in healed
    dep.wait_for("delhi-db rejoins", lambda: streaming_replica(dep, "delhi-db"), 120)
    assert count_present(dep.node_dsn("delhi-db"), writer.acked) == len(writer.acked)
    assert faults(dep) == []
    dep.wait_for("delhi back in DNS", lambda: all(dns_health(dep).values()))
    # isolation is not death: the fast failover fenced nothing, Patroni's ttl decided
    events: list[dict[str, Any]] = control.call(dep.run_dir, "status")["events"]
    assert not [e for e in events if e["kind"] in ("fence_decided", "lease_revoked")]
    rules = chain_rules(dep)
    assert rules is not None and "DROP" not in rules

    dep.geoha("down")
    assert chain_rules(dep) is None  # nothing of geoha is left in iptables


def test_kill_region_and_heal(deployment: Deployment) -> None:
    dep = deployment
    dep.wait_for("chennai-db a sync replica", lambda: streaming_replica(dep, "chennai-db"))
    delhi = [n for n in dep.plan.nodes if n.region == "delhi"]
    out = dep.geoha("chaos", "kill-region", "delhi").stdout
    assert "delhi: every node killed at once" in out
    assert all((r := read_record(n.dir)) is None or not r.alive() for n in delhi)
    assert faults(dep) == [("kill-region", "delhi", [])]

    dep.wait_for("delhi out of DNS", lambda: dns_health(dep) == {"delhi": False, "chennai": True})
    dep.wait_for("chennai-db promoted", lambda: dep.primary() == "chennai-db", 90)
    assert entry_get(dep, "chennai", "/api/v1/themes?limit=1").status_code == 200
    # delhi's view is gone with it, but the process table confirms delhi-db's death:
    # the fast failover ends its lease instead of waiting out the ttl
    events: list[dict[str, Any]] = control.call(dep.run_dir, "status")["events"]
    decided = [e for e in events if e["kind"] == "fence_decided"]
    assert [e["node"] for e in decided] == ["delhi-db"]
    assert "no process of it left on its host" in decided[0]["message"]
    assert [e["node"] for e in events if e["kind"] == "lease_revoked"] == ["delhi-db"]
    time.sleep(3)
    assert all((r := read_record(n.dir)) is None or not r.alive() for n in delhi)  # not restarted

    healed = dep.geoha("chaos", "heal", "delhi").stdout
    assert "delhi-db" in healed and "delhi-fe" in healed
    dep.wait_for("delhi-db rejoins as a replica", lambda: streaming_replica(dep, "delhi-db"), 120)
    dep.wait_for("delhi back in DNS", lambda: all(dns_health(dep).values()))
    assert faults(dep) == []
