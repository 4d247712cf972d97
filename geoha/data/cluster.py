"""The data tier as seen from outside: roles, replication lag, etcd health, switchover, DSNs."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypedDict

import httpx
import psycopg

from geoha import db_access
from geoha.data.migrate import superuser_conn
from geoha.data.write_hold import WriteHold
from geoha.db_access import Secrets
from geoha.errors import BadInput, GeohaError
from geoha.health import patroni_state, patroni_sync_standbys, probe_now, trust
from geoha.plan import Node, Plan
from geoha.spec import ReplicationMode

SYNC_WAIT_S = 30.0
"""How long a switchover waits for its candidate to become Patroni's sync standby."""


class ClusterError(GeohaError):
    """The cluster cannot do what was asked; the message says why."""


def primary_node(plan: Plan) -> Node | None:
    """The node that holds the leader lock and runs as primary, if any."""
    return next((node for node in plan.database_nodes if _runs_as_primary(node)), None)


REPLICATION_QUERY = """
    SELECT application_name, state, sync_state,
           pg_wal_lsn_diff(pg_current_wal_lsn(), write_lsn)::bigint,
           pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint,
           extract(epoch FROM write_lag) * 1000,
           extract(epoch FROM replay_lag) * 1000
      FROM pg_stat_replication"""
"""One row per replica on the primary: name, state, sync state, write and replay lag in
bytes, then in ms (`read_replication`)."""


class Replication(TypedDict):
    """One replica as the primary's pg_stat_replication sees it."""

    replication_state: str
    sync_state: str
    write_lag_bytes: int | None
    lag_bytes: int | None
    """Replay lag in bytes: WAL the primary wrote that the replica has not yet applied."""
    write_lag_ms: float | None
    lag_ms: float | None
    """Replay lag in ms."""


def _lag_ms(value: Any, lag_bytes: int | None) -> float | None:
    # pg_stat_replication's *_lag is NULL once an idle replica has caught up
    if value is not None:
        return round(float(value), 1)
    return 0.0 if lag_bytes == 0 else None


def read_replication(rows: list[tuple[Any, ...]]) -> dict[str, Replication]:
    """REPLICATION_QUERY's rows, by replica name (Patroni's application_name)."""
    result: dict[str, Replication] = {}
    for name, state, sync_state, write_bytes, replay_bytes, write_ms, replay_ms in rows:
        result[name] = {
            "replication_state": state,
            "sync_state": sync_state,
            "write_lag_bytes": write_bytes,
            "lag_bytes": replay_bytes,
            "write_lag_ms": _lag_ms(write_ms, write_bytes),
            "lag_ms": _lag_ms(replay_ms, replay_bytes),
        }
    return result


def replication_rows(primary: Node, secrets: Secrets) -> dict[str, Replication]:
    """pg_stat_replication on the primary, by replica name; {} when it cannot be read."""
    try:
        with superuser_conn(primary, secrets) as conn:
            return read_replication(conn.execute(REPLICATION_QUERY).fetchall())
    except psycopg.Error:
        return {}


class DatabaseEntry(TypedDict):
    """One database node as `geoha status` shows it."""

    name: str
    region: str
    address: str
    role: str
    state: str
    timeline: int | None
    replication_state: str | None
    sync: bool | None
    """Synchronous for PostgreSQL and Patroni alike (None for the primary and async)."""
    lag_bytes: int | None
    lag_ms: float | None


class DatabaseStatus(TypedDict):
    primary: str | None
    nodes: list[DatabaseEntry]


class EtcdMember(TypedDict):
    name: str
    region: str
    address: str
    healthy: bool


def database_status(plan: Plan, secrets: Secrets) -> DatabaseStatus:
    states = {node.name: patroni_state(node) for node in plan.database_nodes}
    primary = next(
        (n for n in plan.database_nodes if (st := states[n.name]) and st.running_primary), None
    )
    replication = replication_rows(primary, secrets) if primary else {}
    patroni_sync = (patroni_sync_standbys(primary) if primary else None) or frozenset()
    nodes: list[DatabaseEntry] = []
    for node in plan.database_nodes:
        state = states[node.name]
        entry: DatabaseEntry = {
            "name": node.name,
            "region": node.region,
            "address": node.address,
            "role": state.role if state and state.role else "unreachable",
            "state": state.state if state and state.state else "unreachable",
            "timeline": state.timeline if state else None,
            "replication_state": None,
            "sync": None,
            "lag_bytes": None,
            "lag_ms": None,
        }
        if node is primary:
            entry.update({"replication_state": "primary", "lag_bytes": 0, "lag_ms": 0.0})
        elif node.name in replication:
            row = replication[node.name]
            entry.update(
                {
                    "replication_state": row["replication_state"],
                    # synchronous for PostgreSQL *and* Patroni: only then can it take over
                    "sync": row["sync_state"] == "sync" and node.name in patroni_sync,
                    "lag_bytes": row["lag_bytes"],
                    "lag_ms": row["lag_ms"],
                }
            )
        elif state:
            entry["replication_state"] = state.replication_state or "not streaming"
        nodes.append(entry)
    return {"primary": primary.name if primary else None, "nodes": nodes}


def etcd_status(plan: Plan) -> list[EtcdMember]:
    return [
        {
            "name": node.name,
            "region": node.region,
            "address": node.address,
            "healthy": probe_now(node).healthy,
        }
        for node in plan.etcd_nodes
    ]


def switchover(
    plan: Plan,
    to_region: str,
    secrets: Secrets,
    timeout_s: float = 60.0,
    hold: WriteHold | None = None,
) -> str:
    """Planned switchover to `to_region`'s database.

    A CHECKPOINT runs on the primary first (the superuser's password), so the demote's
    own shutdown checkpoint has little left to write; Patroni is asked with its REST
    API's credentials. With `hold`, the API's writes
    are paused before Patroni is asked and resumed as soon as the target is
    primary (write_hold.py). Returns once the target is primary and the old
    primary streams from it.
    """
    if to_region not in plan.spec.data_regions:
        raise BadInput(
            f"--to: a data region ({', '.join(plan.spec.data_regions)}) (got {to_region!r})"
        )
    target = plan.database_node(to_region)
    current = primary_node(plan)
    if current is None:
        raise ClusterError("no primary is running: nothing to switch over from")
    if current is target:
        return f"{target.name} is already the primary"
    if plan.spec.replication is ReplicationMode.SYNC:
        wait_for_sync_standby(current, target, SYNC_WAIT_S)
    deadline = time.monotonic() + timeout_s
    checkpoint(current, secrets)
    if hold is not None:
        hold.pause()
    # Patroni answers the switchover request only at its next whole-second poll of the
    # DCS, so the target's own state says sooner when writes may go on.
    promoted = f"{target.name} to be primary"
    with ThreadPoolExecutor(max_workers=1) as pool:
        asked = pool.submit(ask_patroni_to_switch_over, current, target, secrets)
        try:
            wait_until(deadline, lambda: asked.done() or _runs_as_primary(target), promoted)
            if asked.done():
                asked.result()  # raises if Patroni refused or failed it
                wait_until(deadline, lambda: _runs_as_primary(target), promoted)
        finally:
            if hold is not None:
                hold.resume()
        asked.result()
    wait_until(deadline, lambda: _streams(current), f"{current.name} to stream from it")
    held = f"; {hold.report.summary()}" if hold is not None else ""
    return f"switched over: {target.name} is primary, {current.name} streams from it{held}"


def checkpoint(primary: Node, secrets: Secrets) -> None:
    """Write the dirty buffers out while writes still flow (bounded; skipped if it fails)."""
    try:
        with superuser_conn(primary, secrets) as conn:
            conn.execute("SET statement_timeout = '10s'")
            conn.execute("CHECKPOINT")
    except psycopg.Error:
        pass  # the demote's checkpoint does it all then, only slower


def rest_auth(secrets: Secrets) -> httpx.BasicAuth:
    """Credentials for Patroni's unsafe REST endpoints (restapi.authentication)."""
    return httpx.BasicAuth(db_access.REST_USER, secrets.rest)


def ask_patroni_to_switch_over(current: Node, target: Node, secrets: Secrets) -> None:
    try:
        resp = httpx.post(
            current.url("patroni", "/switchover"),
            json={"leader": current.name, "candidate": target.name},
            auth=rest_auth(secrets),
            timeout=30.0,
            verify=trust(current),
        )
    except httpx.HTTPError as exc:
        raise ClusterError(f"Patroni on {current.name} did not answer: {exc}") from None
    if resp.status_code != 200:
        raise ClusterError(f"Patroni refused the switchover: {resp.text.strip()}")


def _runs_as_primary(node: Node) -> bool:
    state = patroni_state(node)
    return state is not None and state.running_primary


def _streams(node: Node) -> bool:
    state = patroni_state(node)
    return state is not None and state.replication_state == "streaming"


def wait_until(deadline: float, done: Callable[[], bool], what: str) -> None:
    while not done():
        if time.monotonic() >= deadline:
            raise ClusterError(f"switchover: gave up waiting for {what} (see geoha status)")
        time.sleep(0.1)


def wait_for_sync_standby(primary: Node, candidate: Node, timeout_s: float) -> None:
    """In synchronous mode Patroni accepts only its recorded sync standby as candidate."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if candidate.name in (patroni_sync_standbys(primary) or ()):
            return
        time.sleep(0.25)
    raise ClusterError(
        f"{candidate.name} is not Patroni's synchronous standby after {timeout_s:.0f} s "
        "(a replica that just rejoined must catch up first; see geoha status)"
    )


def dsn(plan: Plan, region: str, write: bool) -> str:
    """`geoha dsn`: the libpq URI an application in `region` uses (geoha.db_access.dsn)."""
    if region not in plan.spec.data_regions:
        raise BadInput(
            f"--region: a data region ({', '.join(plan.spec.data_regions)}) (got {region!r})"
        )
    return db_access.dsn(plan, region, write)
