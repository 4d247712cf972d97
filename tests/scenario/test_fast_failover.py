"""geoha's fast failover with real processes: a dead primary is fenced and its lease revoked,
so chennai-db is promoted without waiting out Patroni's ttl; nothing acknowledged is lost."""

from __future__ import annotations

import time
from typing import Any

import pytest

from geoha.data.cluster import rest_auth
from geoha.data.secrets import load_or_create_secrets
from geoha.ops.writer import WriterLoop, count_present
from geoha.runtime import control
from tests.deployment import Deployment

pytestmark = pytest.mark.scenario


def events(dep: Deployment, kind: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = control.call(dep.run_dir, "status")["events"]
    return [e for e in found if e["kind"] == kind]


def test_a_dead_primary_is_fenced_and_its_lease_revoked(deployment: Deployment) -> None:
    dep = deployment
    dep.wait_for("chennai-db a sync replica", lambda: dep.can_take_over("chennai-db"))
    writer = WriterLoop(dep.dsn("chennai", write=True)).start()
    try:
        dep.wait_for("writes flowing", lambda: len(writer.acked) >= 20)
        dep.geoha("chaos", "kill-node", "delhi-db")
        dep.wait_for("the lease revoked", lambda: events(dep, "lease_revoked"), 30)
        dep.wait_for("chennai-db promoted", lambda: dep.primary() == "chennai-db", 30)
        promoted = len(writer.acked)
        dep.wait_for("writes on chennai-db", lambda: len(writer.acked) >= promoted + 20)
    finally:
        writer.stop()
    decided = events(dep, "fence_decided")
    assert [e["node"] for e in decided] == ["delhi-db"]
    assert "unreachable from every region" in decided[0]["message"]
    assert [e["node"] for e in events(dep, "lease_revoked")] == ["delhi-db"]
    assert events(dep, "lease_revoke_failed") == [] and events(dep, "fence_failed") == []
    assert count_present(dep.node_dsn("chennai-db"), writer.acked) == len(writer.acked)

    dep.geoha("chaos", "start-node", "delhi-db")
    dep.wait_for("delhi-db rejoins", lambda: dep.can_take_over("delhi-db"), 120)
    assert count_present(dep.node_dsn("delhi-db"), writer.acked) == len(writer.acked)


def fail_over(dep: Deployment, writer: WriterLoop, primary: str, standby: str) -> None:
    """Once `standby` is a sync replica, kill `primary`; returns when writes land on `standby`."""
    dep.wait_for(f"{standby} a sync replica", lambda: dep.can_take_over(standby), 120)
    dep.geoha("chaos", "kill-node", primary)
    dep.wait_for(f"{standby} promoted", lambda: dep.primary() == standby, 60)
    acked = len(writer.acked)
    dep.wait_for("writes on the new primary", lambda: len(writer.acked) >= acked + 10)


def test_kill_rejoin_kill_three_times_every_failover_completes(deployment: Deployment) -> None:
    """The after-rejoin hole: once `geoha status` says the rejoined node is a streaming
    synchronous replica, killing the primary must promote it, every time."""
    dep = deployment
    primary, standby = "delhi-db", "chennai-db"
    writer = WriterLoop(dep.dsn("chennai", write=True), max_s=600).start()
    try:
        for _ in range(3):
            fail_over(dep, writer, primary, standby)
            dep.geoha("chaos", "start-node", primary)
            primary, standby = standby, primary
        dep.wait_for(f"{standby} a sync replica", lambda: dep.can_take_over(standby), 120)
    finally:
        writer.stop()
    assert count_present(dep.node_dsn(primary), writer.acked) == len(writer.acked)
    assert len(events(dep, "lease_revoked")) == 3


def test_no_fence_while_etcd_has_no_quorum(deployment: Deployment) -> None:
    """With two of three etcd members down nothing can be revoked durably, so the watcher
    does nothing; once a quorum is back, the dead primary is fenced and replaced."""
    dep = deployment
    dep.wait_for("chennai-db a sync replica", lambda: dep.can_take_over("chennai-db"))
    dep.geoha("chaos", "kill-node", "mumbai-etcd")
    dep.geoha("chaos", "kill-node", "delhi-etcd")
    dep.geoha("chaos", "kill-node", "delhi-db")
    time.sleep(8)  # three times fence_after_s, and more
    assert events(dep, "fence_decided") == [] and events(dep, "lease_revoked") == []
    assert dep.primary() is None  # nor can Patroni promote without a quorum
    watcher = dep.status()["fast_failover"]
    assert watcher["enabled"] and watcher["decision"] == "nothing"
    assert watcher["reason"] == "no leader could be read from etcd"

    dep.geoha("chaos", "start-node", "mumbai-etcd")
    dep.wait_for("chennai-db promoted", lambda: dep.primary() == "chennai-db", 60)
    assert [e["node"] for e in events(dep, "fence_decided")] == ["delhi-db"]


def test_no_fence_without_a_standby_in_sync_and_patroni_fails_over_by_its_ttl(
    deployment: Deployment,
) -> None:
    """With synchronous mode switched off in Patroni's DCS config, `/sync` names nobody:
    no replica is known to hold every acknowledged write, so the watcher refuses, and the
    failover is Patroni's own, after its lease."""
    dep = deployment
    dep.wait_for("chennai-db a sync replica", lambda: dep.can_take_over("chennai-db"))
    with dep.patroni("delhi-db") as patroni:
        answer = patroni.patch(
            "/config",
            json={"synchronous_mode": False},
            auth=rest_auth(load_or_create_secrets(dep.plan.spec, dep.plan.secrets_path)),
        )
    assert answer.status_code == 200, answer.text
    dep.wait_for("chennai-db no longer sync", lambda: not dep.database("chennai-db")["sync"])
    dep.wait_for(
        "chennai-db streaming",
        lambda: dep.database("chennai-db")["replication_state"] == "streaming",
    )
    dep.geoha("chaos", "kill-node", "delhi-db")
    killed_at = dep.event_time("node_killed", "delhi-db")
    dep.wait_for(
        "the watcher refusing",
        lambda: (
            dep.status()["fast_failover"]["reason"] == "no synchronous standby is named in the DCS"
        ),
        30,
    )
    dep.wait_for("chennai-db promoted by Patroni", lambda: dep.primary() == "chennai-db", 90)
    assert events(dep, "fence_decided") == [] and events(dep, "lease_revoked") == []
    promoted_after = time.monotonic() - killed_at
    ttl = dep.plan.spec.patroni.ttl_s
    assert promoted_after > ttl - 5, f"promoted {promoted_after:.1f} s after the kill: not the ttl"
