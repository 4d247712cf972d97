"""The fast failover watcher: observe the primary from every region, decide, fence, revoke.

A service the controller runs (like the monitor). Every ROUND_S it takes one
snapshot, asks `geoha.ops.fencing.decide`, and on FENCE acts in this order:

1. fence: the controller kills whatever is left of the primary's node and
   holds it down (locally its process group; in the cloud the VM would be
   powered off) until the DCS names another leader, or `patroni.ttl_s` passes;
2. revoke the dead leader's etcd lease (Patroni 4 on etcd v3 puts the leader
   key and that member's key on one lease, so both go): the synchronous
   standby's watch on the leader key wakes it, it finds no other member to
   ask, and Patroni promotes it by its own rules.

The snapshot:
- the DCS: the leader key with its lease and the `/sync` key, read from any
  etcd member that answers (a linearizable read, so from the majority side);
- etcd: how many members the controller's own probes found healthy in its last cycle;
- a view per region: each data region's vantage point is its API (`GET
  /health/vantage` through the region's backend LB: what the region's
  instances see of every database node); the witness region's is the
  controller's own probe here (in the cloud the watcher lives on the witness).
  A region whose view cannot be read has none, and the decision does nothing,
  unless the host confirms the primary's death: locally the controller's
  process table (`confirmed_dead`), so a region lost with its primary fails
  over fast as well.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from app.api.periodic import Periodic
from app.api.vantage import VantageTarget, observe
from app.api.vantage import reached as vantage_reached
from geoha.ops.fencing import (
    Action,
    Decision,
    FastFailoverStatus,
    Policy,
    Snapshot,
    StandbyView,
    VantageView,
    decide,
)
from geoha.plan import Node, NodeRole, Plan
from geoha.spec import ReplicationMode
from geoha.traffic.tls import ClientTls, client_tls, context, verify

log = logging.getLogger("geoha.fastfail")

ROUND_S = 0.25
"""How often the watcher looks (`FastFailover.interval_s`)."""
REQUEST_TIMEOUT_S = 0.5
DCS_REFRESH_S = 2.0
"""While this vantage point reaches the primary, the DCS is read again this often."""
MAX_AGE_S = 1.5
"""A region's view older than this is stale (a vantage point probes every 0.5 s)."""


@dataclass(frozen=True)
class Endpoint:
    """A named host:port (an etcd member's client port, a backend LB's HTTP port)."""

    name: str
    host: str
    port: int
    scheme: str = "http"

    def url(self, path: str) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{path}"


@dataclass(frozen=True)
class Watched:
    """What the watcher needs to know of a deployment, and no more: from the plan locally,
    from a JSON file on the witness in the cloud (`to_json`, rendered by cloud-init)."""

    key_prefix: str
    """Patroni's DCS namespace and scope: `/geoha/NAME/`."""
    ttl_s: float
    policy: Policy
    regions: tuple[str, ...]
    witness_region: str
    databases: tuple[VantageTarget, ...]
    etcd: tuple[Endpoint, ...]
    """Every etcd member's client endpoint."""
    backends: tuple[tuple[str, Endpoint], ...]
    """Each data region's backend LB, where its API instances' views are read."""
    tls: ClientTls | None = None
    """How etcd and Patroni are verified, and the client certificate etcd wants;
    None: they speak plain HTTP."""

    @classmethod
    def of(cls, plan: Plan) -> Watched:
        spec = plan.spec
        return cls(
            key_prefix=f"/geoha/{spec.name}/",
            ttl_s=float(spec.patroni.ttl_s),
            policy=Policy(
                fast=spec.fast_failover,
                synchronous=spec.replication is ReplicationMode.SYNC,
                async_opt_in=spec.failover.fast_async,
                fence_after_s=spec.failover.fence_after_s,
                max_age_s=MAX_AGE_S,
            ),
            regions=tuple(spec.regions),
            witness_region=next(r for r in spec.regions if r not in spec.data_regions),
            databases=tuple(
                VantageTarget(n.name, n.address, n.ports["postgres"], n.ports["patroni"])
                for n in plan.database_nodes
            ),
            etcd=tuple(endpoint(n, "client") for n in plan.etcd_nodes),
            backends=tuple(
                (r, endpoint(plan.only(r, NodeRole.BACKEND_LB), "http")) for r in spec.data_regions
            ),
            tls=client_tls(plan),
        )

    def database(self, name: str | None) -> VantageTarget | None:
        return next((d for d in self.databases if d.name == name), None)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Watched:
        """The file `to_json` wrote; ValueError naming what is wrong."""
        try:
            data = json.loads(text)
            return cls(
                key_prefix=str(data["key_prefix"]),
                ttl_s=float(data["ttl_s"]),
                policy=Policy(**data["policy"]),
                regions=tuple(str(r) for r in data["regions"]),
                witness_region=str(data["witness_region"]),
                databases=tuple(VantageTarget(**d) for d in data["databases"]),
                etcd=tuple(Endpoint(**e) for e in data["etcd"]),
                backends=tuple((str(r), Endpoint(**e)) for r, e in data["backends"]),
                tls=None if data.get("tls") is None else ClientTls(**data["tls"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a watcher configuration: {type(exc).__name__}: {exc}") from None


def endpoint(node: Node, port: str) -> Endpoint:
    return Endpoint(node.name, node.address, node.ports[port], node.scheme(port))


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass(frozen=True)
class DcsView:
    leader: str | None
    lease: str | None
    sync_standby: str | None


async def range_key(client: httpx.AsyncClient, member: Endpoint, key: str) -> dict[str, Any] | None:
    """The etcd gateway's answer to a range read of `key` at `member` (linearizable); None
    when the member does not answer it."""
    try:
        answer = await client.post(member.url("/v3/kv/range"), json={"key": b64(key)})
        data = answer.json() if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def kv_value(kv: dict[str, Any]) -> bytes:
    return base64.b64decode(kv.get("value", ""))


async def read_dcs(client: httpx.AsyncClient, watched: Watched) -> DcsView | None:
    """The leader key (with its lease) and the /sync key, from the first etcd member that
    answers; None if none does."""
    prefix = watched.key_prefix
    for member in watched.etcd:
        leader, sync = await asyncio.gather(
            range_key(client, member, prefix + "leader"),
            range_key(client, member, prefix + "sync"),
        )
        if leader is not None and sync is not None:
            return parse_dcs(leader, sync)
    return None


def parse_dcs(leader: dict[str, Any], sync: dict[str, Any]) -> DcsView:
    """The etcd gateway's range answers for the leader and /sync keys."""
    name = lease = standby = None
    for kv in leader.get("kvs", [])[:1]:
        name = kv_value(kv).decode() or None
        lease = str(kv["lease"]) if kv.get("lease") not in (None, "0", 0) else None
    for kv in sync.get("kvs", [])[:1]:
        with contextlib.suppress(ValueError, TypeError):
            data = json.loads(kv_value(kv))
            value = data.get("sync_standby") if isinstance(data, dict) else None
            standby = value if isinstance(value, str) and value else None
    return DcsView(name, lease, standby)


async def leader_member(client: httpx.AsyncClient, watched: Watched) -> dict[str, Any] | None:
    """The DCS leader's member data (`name` added), from the first etcd member that answers;
    None if there is no leader, or its member key is missing or unreadable."""
    for member in watched.etcd:
        leader = await range_key(client, member, watched.key_prefix + "leader")
        if leader is None:
            continue
        try:
            kvs = leader.get("kvs", [])
            if not kvs:
                return None
            name = kv_value(kvs[0]).decode()
            found = await range_key(client, member, f"{watched.key_prefix}members/{name}")
            if found is None:
                continue
            kvs = found.get("kvs", [])
            data = json.loads(kv_value(kvs[0])) if kvs else None
        except (ValueError, TypeError, AttributeError):
            return None
        return {**data, "name": name} if isinstance(data, dict) else None
    return None


async def new_leader(client: httpx.AsyncClient, watched: Watched, name: str, hold_s: float) -> str:
    """Wait until the DCS names a leader other than `name`, at most `hold_s`: the end of a
    fence's hold, locally and in the cloud. Returns why the wait ended, as a phrase."""
    deadline = time.monotonic() + hold_s
    while time.monotonic() < deadline:
        dcs = await read_dcs(client, watched)
        if dcs is not None and dcs.leader not in (None, name):
            return f"{dcs.leader} holds the leader key"
        await asyncio.sleep(0.5)
    return f"no new leader within {hold_s:.0f} s"


def settled_leader(data: dict[str, Any] | None, me: str) -> bool:
    """Whether a node that starts may look for its place now: no leader, itself, or another
    leader whose member data says it runs as primary with its checkpoint after promotion
    done. Until then Patroni cannot tell whether a former primary diverged: it starts it as
    a secondary first and rewinds it only at a later loop (docs/DESIGN.md, "Where a
    rejoin's time goes")."""
    if data is None or data.get("name") == me:
        return True
    primary = data.get("role") in ("primary", "master")
    return primary and data.get("checkpoint_after_promote") is not False


async def revoke_lease(client: httpx.AsyncClient, watched: Watched, lease: str) -> str | None:
    """Revoke `lease` through the first member that takes it; None, or why it failed."""
    problems: list[str] = []
    for member in watched.etcd:
        url = member.url("/v3/lease/revoke")
        try:
            answer = await client.post(url, json={"ID": lease})
        except httpx.HTTPError as exc:
            problems.append(f"{member.name}: {type(exc).__name__}")
            continue
        if answer.status_code == 200:
            return None
        problems.append(f"{member.name}: {answer.status_code} {answer.text.strip()[:120]}")
    return "; ".join(problems) or "no etcd member"


async def region_view(
    client: httpx.AsyncClient, backend: Endpoint, primary: str, now: float
) -> VantageView | None:
    """What the region's API instances see of `primary` (None: no answer, or no view)."""
    try:
        answer = await client.get(backend.url("/health/vantage"))
        node = answer.json()["nodes"][primary]
        ago = float(node["observed_ago_s"])
        failing = node["failing_for_s"]
        return VantageView(now - ago, None if failing is None else now - float(failing))
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


async def reached(target: VantageTarget, tls: ClientTls | None) -> bool:
    """The node's Patroni or its postmaster answers: the API's own probe (app/api/vantage.py)."""
    return await vantage_reached(target, REQUEST_TIMEOUT_S, context(tls))


Fence = Callable[[str, float], Awaitable[str | None]]
"""The controller's fence: kill what is left of the node and hold it down for at most the
given seconds; None, or why it could not."""


class FastFailover(Periodic):
    """The watcher. `fence` is the controller's; `emit(kind, node, fields)` records one
    event per step (kinds as geoha.runtime.events names them)."""

    name = "fastfail"
    interval_s = ROUND_S

    def __init__(
        self,
        watched: Watched,
        fence: Fence,
        emit: Callable[[str, str, dict[str, str]], None],
        *,
        etcd_healthy: Callable[[], int],
        active: Callable[[], bool] = lambda: True,
        confirmed_dead: Callable[[str], bool] = lambda _name: False,
    ) -> None:
        super().__init__()
        self.watched = watched
        self.policy = watched.policy
        self.fence = fence
        self.emit = emit
        self.etcd_healthy = etcd_healthy
        """How many etcd members are healthy (locally: the controller's own probes)."""
        self.active = active
        """Whether the deployment is up (not starting or stopping): only then may it act."""
        self.confirmed_dead = confirmed_dead
        """The host's word that nothing of a node runs (locally the process table)."""
        self.own: VantageView | None = None
        self.own_target: str | None = None
        self.dcs: DcsView | None = None
        self.dcs_read_at = 0.0
        self.last: Decision | None = None
        self.fenced: set[tuple[str, str]] = set()
        self.client: httpx.AsyncClient | None = None

    def status(self) -> FastFailoverStatus:
        last = self.last
        return {
            "enabled": self.policy.fast,
            "fence_after_s": self.policy.fence_after_s,
            "decision": last.action.value if last else None,
            "reason": last.reason if last else None,
        }

    def start(self) -> None:
        if self.policy.fast:
            self.client = httpx.AsyncClient(
                timeout=REQUEST_TIMEOUT_S, verify=verify(self.watched.tls)
            )
            super().start()

    async def stop(self) -> None:
        await super().stop()
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    async def tick(self) -> None:
        if self.client is None:
            return
        try:
            await self.round(self.client)
        except Exception:  # a broken round must not stop the watcher
            log.exception("fast failover round failed")

    async def quiet(self, client: httpx.AsyncClient) -> bool:
        """The cheap round while all is well: if this vantage point reaches the leader it
        read from the DCS less than DCS_REFRESH_S ago, nothing else can matter (rule 6)."""
        now = time.monotonic()
        if self.dcs is None or now - self.dcs_read_at > DCS_REFRESH_S:
            self.dcs, self.dcs_read_at = await read_dcs(client, self.watched), now
        node = self.watched.database(self.dcs.leader if self.dcs is not None else None)
        if (
            node is None
            or self.own_target != node.name
            or not await reached(node, self.watched.tls)
        ):
            self.dcs = None  # read it again with the full snapshot
            return False
        self.own = observe(self.own, True, time.monotonic())
        self.last = Decision(Action.NOTHING, f"{node.name} answers the watcher")
        return True

    async def snapshot(self, client: httpx.AsyncClient) -> Snapshot | None:
        watched = self.watched
        dcs = await read_dcs(client, watched)
        if dcs is None or dcs.leader is None:
            return None
        primary = watched.database(dcs.leader)
        if primary is None:
            return None
        backends = dict(watched.backends)
        now = time.monotonic()
        views, ok = await asyncio.gather(
            asyncio.gather(*(region_view(client, b, primary.name, now) for b in backends.values())),
            reached(primary, self.watched.tls),
        )
        now = time.monotonic()
        if self.own_target != primary.name:
            self.own, self.own_target = None, primary.name
        self.own = observe(self.own, ok, now)
        vantage = {r: v for r, v in zip(backends, views, strict=True) if v is not None}
        vantage[watched.witness_region] = self.own
        standby = None
        if dcs.sync_standby is not None:
            node = watched.database(dcs.sync_standby)
            alive = node is not None and await reached(node, self.watched.tls)
            standby = StandbyView(dcs.sync_standby, in_sync=alive, observed_at=now)
        return Snapshot(
            now=now,
            primary=primary.name,
            lease=dcs.lease,
            regions=watched.regions,
            vantage=vantage,
            standby=standby,
            etcd_healthy=self.etcd_healthy(),
            etcd_members=len(watched.etcd),
            confirmed_dead=self.confirmed_dead(primary.name),
        )

    async def round(self, client: httpx.AsyncClient) -> None:
        if not self.active():
            self.own = self.last = None
            return
        if await self.quiet(client):
            return
        snap = await self.snapshot(client)
        if snap is None:
            self.last = Decision(Action.NOTHING, "no leader could be read from etcd")
            return
        decision = decide(snap, self.policy)
        if decision.action is not Action.NOTHING and (
            self.last is None or self.last.action is not decision.action
        ):
            log.info("fast failover: %s (%s)", decision.action.value, decision.reason)
        self.last = decision
        if decision.action is Action.FENCE and decision.primary and decision.lease:
            await self.act(client, decision.primary, decision.lease, decision.reason)

    async def act(self, client: httpx.AsyncClient, primary: str, lease: str, why: str) -> None:
        if (primary, lease) in self.fenced:
            return  # done once; the revoke is on its way or Patroni has the key again
        self.fenced.add((primary, lease))
        self.emit("fence_decided", primary, {"reason": why})
        problem = await self.fence(primary, self.watched.ttl_s)
        if problem is not None:
            self.emit("fence_failed", primary, {"error": problem})
            return
        problem = await revoke_lease(client, self.watched, lease)
        if problem is not None:
            self.emit("lease_revoke_failed", primary, {"lease": lease, "error": problem})
            return
        self.emit("lease_revoked", primary, {"lease": lease})
