"""The fast failover watcher's parsing of what etcd answers (the rest needs real processes)."""

from __future__ import annotations

import base64
import json

from geoha.ops.fastfail import DcsView, parse_dcs, settled_leader
from geoha.spec import ReplicationMode, Spec


def kv(value: str, lease: str | None = None) -> dict[str, object]:
    entry: dict[str, object] = {"value": base64.b64encode(value.encode()).decode()}
    if lease is not None:
        entry["lease"] = lease
    return {"kvs": [entry]}


def test_leader_lease_and_sync_standby() -> None:
    sync = json.dumps({"leader": "delhi-db", "sync_standby": "chennai-db"})
    view = parse_dcs(kv("delhi-db", "7587883441374893058"), kv(sync))
    assert view == DcsView("delhi-db", "7587883441374893058", "chennai-db")


def test_no_leader_no_sync() -> None:
    assert parse_dcs({}, {}) == DcsView(None, None, None)
    assert parse_dcs({"kvs": []}, kv("not json")) == DcsView(None, None, None)
    assert parse_dcs(kv("delhi-db"), kv('{"sync_standby": null}')) == DcsView(
        "delhi-db", None, None
    )


def test_fast_failover_defaults_follow_the_replication_mode() -> None:
    assert Spec().fast_failover is True  # sync by default
    assert Spec(replication=ReplicationMode.ASYNC).fast_failover is False
    assert Spec(failover={"fast": False}).fast_failover is False  # type: ignore[arg-type]
    assert Spec(automatic_failover=False).fast_failover is False


def test_fast_failover_in_async_mode_needs_the_opt_in() -> None:
    spec = Spec(replication=ReplicationMode.ASYNC, failover={"fast": True})  # type: ignore[arg-type]
    assert any(e.startswith("failover.fast_async: true") for e in spec.cross_field_errors())
    opted = Spec(
        replication=ReplicationMode.ASYNC,
        failover={"fast": True, "fast_async": True},  # type: ignore[arg-type]
    )
    assert opted.fast_failover and not opted.cross_field_errors()


def test_a_node_starts_once_a_new_leader_has_settled() -> None:
    primary = {"name": "chennai-db", "role": "primary", "state": "running"}
    assert settled_leader(None, "delhi-db")  # no leader: nothing to wait for
    assert settled_leader(primary, "delhi-db")
    assert settled_leader({**primary, "checkpoint_after_promote": True}, "delhi-db")
    assert not settled_leader({**primary, "checkpoint_after_promote": False}, "delhi-db")
    assert not settled_leader({**primary, "role": "replica"}, "delhi-db")  # not yet published
    assert settled_leader({**primary, "role": "replica"}, "chennai-db")  # itself
    assert settled_leader({**primary, "role": "master"}, "delhi-db")  # Patroni before 4
