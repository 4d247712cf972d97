"""Confirmed-death fencing: when may geoha declare the primary dead before Patroni's lease does?

Patroni promotes a replica only once the dead primary's leader key expires
(`ttl`, 20 s at the least). geoha sees more than Patroni does: it probes the
primary from a vantage point in every region. When every one of them has
failed for `fence_after_s`, a quorum of etcd answers, and the synchronous
standby was in sync at its last observation, the primary is dead as far as
anyone can tell; geoha then fences it (kills what is left of it, or powers
its VM off) and only then revokes its etcd lease, so the replica's watch wakes
and Patroni promotes it by its own rules, without waiting out the lease.

This module is the decision alone, a pure function of one snapshot, so that
every case is a test (tests/unit/test_fencing.py). Its rules, in order; the
first that applies decides:

1. the fast path is off in the spec: nothing;
2. no leader in the DCS, or no lease to revoke: nothing (Patroni is already
   electing);
3. asynchronous replication without the spec's explicit opt-in: nothing (the
   replica may lack the last acknowledged writes);
4. etcd without a quorum of healthy members: nothing (a revoke would not be
   durable, and Patroni could not promote anyway);
5. a region's vantage point missing, stale or from the future (a clock jump):
   nothing — an input that is not there proves nothing; unless the host
   confirms that nothing of the primary's node runs any more (locally the
   process table), in which case a missing or stale view is passed over (a
   region lost with its primary cannot report, and a dead primary cannot be
   isolated), as long as one region's view is there;
6. any vantage point still reaching the primary: nothing — isolation is not
   death; a primary cut off from some regions loses its key through
   Patroni's own rules;
7. all failing, but one of them for less than `fence_after_s`: wait;
8. no synchronous standby named, or it was not in sync, or that observation
   is stale: nothing — promoting it could lose acknowledged writes;
9. otherwise: fence, then revoke.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TypedDict

from app.api.vantage import NodeView


class Action(StrEnum):
    NOTHING = "nothing"
    WAIT = "wait"
    FENCE = "fence"


class FastFailoverStatus(TypedDict):
    enabled: bool
    fence_after_s: float
    decision: str | None
    """The latest decision's action (nothing, wait, fence); None before the first."""
    reason: str | None


VantageView = NodeView
"""One region's latest view of the primary: the API's own type (app/api/vantage.py), the
times read on the watcher's monotonic clock."""


@dataclass(frozen=True)
class StandbyView:
    name: str
    """The node the DCS `/sync` key names."""
    in_sync: bool
    """Streaming, and synchronous in both PostgreSQL's and Patroni's view."""
    observed_at: float


@dataclass(frozen=True)
class Snapshot:
    now: float
    primary: str | None
    """The node holding the DCS leader key."""
    lease: str | None
    """The leader key's etcd lease (Patroni 4: shared with that member's key)."""
    regions: tuple[str, ...]
    """Every region that must have a vantage point (the witness included)."""
    vantage: Mapping[str, VantageView]
    standby: StandbyView | None
    etcd_healthy: int
    etcd_members: int
    confirmed_dead: bool = False
    """The host confirms, as of `now`, that no process of the primary's node runs (locally
    the controller's process table). Never a guess: False whenever it is not known."""


@dataclass(frozen=True)
class Policy:
    fast: bool
    synchronous: bool
    async_opt_in: bool
    """`failover.fast_async` in the spec: the user accepts losing the last writes."""
    fence_after_s: float
    max_age_s: float
    """An observation older than this is stale."""


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    primary: str | None = None
    lease: str | None = None


def _nothing(reason: str) -> Decision:
    return Decision(Action.NOTHING, reason)


def _age_problem(what: str, observed_at: float, now: float, max_age_s: float) -> str | None:
    if observed_at > now:
        return f"{what} is dated {observed_at - now:.1f}s in the future (a clock jump?)"
    if now - observed_at > max_age_s:
        return f"{what} is {now - observed_at:.1f}s old (more than {max_age_s:g}s)"
    return None


def _precondition_problem(snap: Snapshot, policy: Policy) -> str | None:
    """Rules 1-4: the switch, the leader, async mode, etcd's quorum."""
    if not policy.fast:
        return "the fast failover is off (failover.fast = false)"
    if snap.primary is None or snap.lease is None:
        return "no leader key in the DCS: Patroni is electing by itself"
    if not policy.synchronous and not policy.async_opt_in:
        return "asynchronous replication without failover.fast_async"
    if 2 * snap.etcd_healthy <= snap.etcd_members:
        return f"etcd has no quorum ({snap.etcd_healthy} of {snap.etcd_members} members healthy)"
    if not snap.regions:
        return "no region to observe the primary from"
    return None


def _observed_regions(snap: Snapshot, policy: Policy) -> tuple[tuple[str, ...], str | None]:
    """Rule 5: the regions whose view counts, or why nothing can be decided."""
    observed: list[str] = []
    for region in snap.regions:
        view = snap.vantage.get(region)
        problem: str | None
        if view is None:
            problem = f"no observation of {snap.primary} from {region}"
        elif view.observed_at > snap.now:
            return (), _age_problem(f"{region}'s observation", view.observed_at, snap.now, 0)
        else:
            problem = _age_problem(
                f"{region}'s observation", view.observed_at, snap.now, policy.max_age_s
            )
        if problem is None:
            observed.append(region)
        elif not snap.confirmed_dead:
            return (), problem
    if not observed:
        return (), f"no fresh observation of {snap.primary} from any region"
    return tuple(observed), None


def _vantage_problem(snap: Snapshot, observed: tuple[str, ...]) -> str | None:
    """Rule 6: no region reaching the primary."""
    reaching = [r for r in observed if snap.vantage[r].failing_since is None]
    if reaching:
        verb = "reaches" if len(reaching) == 1 else "reach"
        return f"{', '.join(reaching)} still {verb} {snap.primary}: isolation is not death"
    return None


def _standby_problem(snap: Snapshot, policy: Policy) -> str | None:
    """Rule 8: in sync mode, the standby Patroni will promote was in sync, recently."""
    if not policy.synchronous:
        return None
    standby = snap.standby
    if standby is None:
        return "no synchronous standby is named in the DCS"
    problem = _age_problem(
        f"the observation of {standby.name}", standby.observed_at, snap.now, policy.max_age_s
    )
    if problem is not None:
        return problem
    if not standby.in_sync:
        return f"{standby.name} was not in sync at its last observation"
    return None


def decide(snap: Snapshot, policy: Policy) -> Decision:
    """What to do about the primary now (see the module's rules)."""
    problem = _precondition_problem(snap, policy)
    if problem is not None:
        return _nothing(problem)
    observed, problem = _observed_regions(snap, policy)
    problem = problem or _vantage_problem(snap, observed)
    if problem is not None:
        return _nothing(problem)
    starts = [snap.vantage[r].failing_since for r in observed]
    shortest = min(snap.now - since for since in starts if since is not None)
    where = "every region" if len(observed) == len(snap.regions) else ", ".join(observed)
    if shortest < policy.fence_after_s:
        return Decision(
            Action.WAIT,
            f"{snap.primary} unreachable from {where}, from one for only {shortest:.1f}s "
            f"(fence after {policy.fence_after_s:g}s)",
        )
    problem = _standby_problem(snap, policy)
    if problem is not None:
        return _nothing(problem)
    standby = f", {snap.standby.name} in sync" if policy.synchronous and snap.standby else ""
    dead = "" if len(observed) == len(snap.regions) else ", no process of it left on its host"
    return Decision(
        Action.FENCE,
        f"{snap.primary} unreachable from {where} for {shortest:.1f}s or more{dead}, "
        f"etcd {snap.etcd_healthy} of {snap.etcd_members} healthy{standby}",
        snap.primary,
        snap.lease,
    )
