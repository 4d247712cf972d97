"""The autoscaler's decision: how many instances a region's tier should run, from one snapshot.

A pure function (STYLE.md, "Loops that decide"): the controller observes each group
(CPU of every instance's process tree over a window, health), keeps the recent
recommendations, and asks `decide`; it acts on the answer. Every case is a test
(tests/unit/test_autoscale.py). The rules, in order:

1. fewer healthy instances than `min`: unless enough are starting, ask at once
   for as many more as are missing (no cooldown, no step limit; the failed ones
   are the controller's to replace), then hold while they start (self-healing);
2. no healthy instance with a CPU figure for a whole window yet: hold;
3. the recommendation is `ceil(current x utilization / target)`, `target` being the
   scale-up threshold, when utilization is above it by more than the tolerance band,
   or below the scale-down threshold; otherwise the current count. It is bounded by
   `min` and `max`, and by `step` instances per decision;
4. growing: not within `scale_out_cooldown_s` of the last change;
5. shrinking: to the highest recommendation of the last `scale_in_stabilization_s`
   (this one included), and never while the group is younger than that window, so a
   load oscillating around a threshold does not make the group flap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypedDict


class Move(StrEnum):
    HOLD = "hold"
    OUT = "out"
    IN = "in"
    HEAL = "heal"


@dataclass(frozen=True)
class Instance:
    name: str
    healthy: bool
    cpu_percent: float | None
    """Average CPU of the instance's process tree over the last window, in percent of one
    core; None until the instance has run a whole window."""
    starting: bool = False
    """Started and not yet healthy, within its start timeout: on its way, not failed."""


@dataclass(frozen=True)
class Group:
    """One region's tier at one moment."""

    region: str
    tier: str
    now: float
    desired: int
    """What the group is asked to run now (instances started or starting)."""
    instances: tuple[Instance, ...]
    last_change_at: float | None
    """When `desired` last changed (monotonic seconds); None: never since the start."""
    since: float
    """When the autoscaler started watching this group."""
    recent: tuple[tuple[float, int], ...] = ()
    """Earlier recommendations (at, count), oldest first, as `decide` returned them."""


@dataclass(frozen=True)
class ScalePolicy:
    min: int
    max: int
    scale_up_cpu_percent: float
    scale_down_cpu_percent: float
    tolerance: float = 0.1
    """How far above the scale-up threshold utilization must be to grow (a fraction)."""
    step: int = 1
    """At most this many instances added or removed per decision (self-healing aside)."""
    scale_out_cooldown_s: float = 5.0
    scale_in_stabilization_s: float = 60.0
    window_s: float = 10.0
    """The window CPU figures are averaged over (named in the decisions' sentences)."""


@dataclass(frozen=True)
class Decision:
    move: Move
    desired: int
    recommendation: int
    """The count the load asks for, before cooldown and stabilization (kept in `recent`)."""
    reason: str


def utilization(instances: Sequence[Instance]) -> float | None:
    known = [i.cpu_percent for i in instances if i.healthy and i.cpu_percent is not None]
    return sum(known) / len(known) if known else None


def recommend(current: int, util: float, policy: ScalePolicy) -> int:
    """Rule 3: the count the load asks for, within min, max and the step."""
    target = policy.scale_up_cpu_percent
    if util > target * (1 + policy.tolerance) or util < policy.scale_down_cpu_percent:
        wanted = math.ceil(current * util / target) if util > 0 else policy.min
    else:
        wanted = current
    wanted = min(max(wanted, current - policy.step), current + policy.step)
    return min(max(wanted, policy.min), policy.max)


def decide(group: Group, policy: ScalePolicy) -> Decision:
    """How many instances the group should run (see the module's rules)."""
    name = f"{group.tier}/{group.region}"
    healthy = sum(1 for i in group.instances if i.healthy)
    starting = sum(1 for i in group.instances if not i.healthy and i.starting)
    if healthy < policy.min:
        failed = len(group.instances) - healthy - starting
        why = f"{healthy} healthy of {len(group.instances)}, fewer than min {policy.min}"
        if healthy + starting < policy.min:
            target = min(policy.max, group.desired + policy.min - healthy - starting)
            moved = f"{name}: {group.desired} -> {target}, {why}, {failed} failed"
            return Decision(Move.HEAL, target, target, moved)
        return Decision(
            Move.HOLD,
            group.desired,
            group.desired,
            f"{name}: holding {group.desired}, {why}: {starting} starting",
        )
    util = utilization(group.instances)
    if util is None:
        return Decision(
            Move.HOLD,
            group.desired,
            group.desired,
            f"{name}: holding {group.desired}, no CPU figure over a whole window yet",
        )
    wanted = recommend(group.desired, util, policy)
    figure = f"CPU {util:.0f} %"
    if wanted > group.desired:
        since_change = None if group.last_change_at is None else group.now - group.last_change_at
        if since_change is not None and since_change < policy.scale_out_cooldown_s:
            return Decision(
                Move.HOLD,
                group.desired,
                wanted,
                f"{name}: holding {group.desired}, {figure} > {policy.scale_up_cpu_percent:g} % "
                f"but the last change was {since_change:.0f}s ago "
                f"(cooldown {policy.scale_out_cooldown_s:g}s)",
            )
        return Decision(
            Move.OUT,
            wanted,
            wanted,
            f"{name}: {group.desired} -> {wanted}, {figure} > {policy.scale_up_cpu_percent:g} % "
            f"over {policy.window_s:g}s",
        )
    if wanted < group.desired:
        window_start = group.now - policy.scale_in_stabilization_s
        if group.since > window_start:
            return Decision(
                Move.HOLD,
                group.desired,
                wanted,
                f"{name}: holding {group.desired}, {figure} < "
                f"{policy.scale_down_cpu_percent:g} % but watched for "
                f"{group.now - group.since:.0f}s only (stabilization "
                f"{policy.scale_in_stabilization_s:g}s)",
            )
        highest = max([wanted, *(n for at, n in group.recent if at >= window_start)])
        if highest >= group.desired:
            return Decision(
                Move.HOLD,
                group.desired,
                wanted,
                f"{name}: holding {group.desired}, {figure} < "
                f"{policy.scale_down_cpu_percent:g} % but {highest} was asked for within "
                f"{policy.scale_in_stabilization_s:g}s",
            )
        return Decision(
            Move.IN,
            highest,
            wanted,
            f"{name}: {group.desired} -> {highest}, {figure} < "
            f"{policy.scale_down_cpu_percent:g} % for {policy.scale_in_stabilization_s:g}s",
        )
    return Decision(Move.HOLD, group.desired, wanted, f"{name}: holding {group.desired}, {figure}")


# -- which slots: the decision carried out on the group's instances ---------------------
@dataclass(frozen=True)
class Slot:
    """One slot of a tier (an address an instance may run on), as observed this tick."""

    name: str
    index: int
    member: bool
    """The autoscaler wants an instance here (starting, running, or draining)."""
    free: bool
    """Not a member, nothing of it runs, nothing is being done to it: it may be started."""
    healthy: bool
    failed: bool
    """A member held down (a chaos kill) or unhealthy for longer than allowed."""
    lb: str | None
    """Its state in the load balancer ("ready", "drain", "maint"); None: unknown."""
    in_flight: int = 0
    """Requests it is serving, by the load balancer's count."""
    draining_for: float | None = None
    """Seconds since the autoscaler started draining it; None: not draining."""


class StepKind(StrEnum):
    JOIN = "join"
    """Make it a member: the controller starts it."""
    LEAVE = "leave"
    """No longer a member: the controller stops it."""
    ENABLE = "enable"
    """Let the load balancer send it requests (healthy members only)."""
    DRAIN = "drain"
    """No new requests; the ones in flight finish."""
    DISABLE = "disable"
    """Out of the load balancer (before it stops, or while it is not a member)."""


@dataclass(frozen=True)
class Step:
    kind: StepKind
    slot: str
    why: str


def replacements(slots: Sequence[Slot]) -> list[tuple[str, str]]:
    """(failed member, free slot that replaces it), lowest free slots first."""
    free = [s.name for s in sorted(slots, key=lambda s: s.index) if s.free]
    failed = [s.name for s in slots if s.member and s.draining_for is None and s.failed]
    return list(zip(failed, free, strict=False))


def slot_steps(
    slots: Sequence[Slot], swaps: Sequence[tuple[str, str]], desired: int, drain_timeout_s: float
) -> list[Step]:
    """What to do so `desired` members serve: replace the failed ones (`swaps`), start or
    drain instances to reach the count, finish drains, and keep the load balancer in step
    (healthy members enabled, everything else out). Members leave only once drained or
    never enabled, so no request in flight is cut."""
    by_name = {s.name: s for s in slots}
    steps: list[Step] = []
    gone = {old for old, _ in swaps}
    for old, new in swaps:
        steps += leave(by_name[old], f"replaced by {new}")
        steps.append(Step(StepKind.JOIN, new, f"replaces {old}"))
    active = [s for s in slots if s.member and s.draining_for is None and s.name not in gone]
    count = len(active) + len(swaps)
    joining = {new for _, new in swaps}
    if desired > count:
        free = [s for s in sorted(slots, key=lambda s: s.index) if s.free and s.name not in joining]
        steps += [Step(StepKind.JOIN, s.name, "scale-out") for s in free[: desired - count]]
    elif desired < count:
        # unhealthy ones first, then the highest slots
        victims = sorted(active, key=lambda s: (s.healthy, -s.index))[: count - desired]
        for s in victims:
            if s.healthy and s.lb == "ready":
                steps.append(Step(StepKind.DRAIN, s.name, "scale-in"))
            else:
                steps += leave(s, "scale-in")
    return steps + upkeep(slots, steps, drain_timeout_s)


def upkeep(slots: Sequence[Slot], planned: Sequence[Step], drain_timeout_s: float) -> list[Step]:
    """Finish the drains that are done, and keep the load balancer in step: healthy members
    enabled, non-members out (after a load balancer's restart, say)."""
    leaving = {s.slot for s in planned if s.kind in (StepKind.LEAVE, StepKind.DRAIN)}
    steps: list[Step] = []
    for s in slots:
        if s.draining_for is not None:
            if s.in_flight == 0 and s.draining_for > 0:
                steps += leave(s, "drained")
            elif s.draining_for >= drain_timeout_s:
                still = f"{s.in_flight} requests still in flight after {drain_timeout_s:g}s"
                steps += leave(s, still)
        elif s.member and s.name not in leaving:
            if s.healthy and s.lb in ("maint", "drain"):
                steps.append(Step(StepKind.ENABLE, s.name, "healthy"))
        elif not s.member and s.lb in ("ready", "drain"):
            steps.append(Step(StepKind.DISABLE, s.name, "not a member"))
    return steps


def leave(slot: Slot, why: str) -> list[Step]:
    """Out of the load balancer first (unless it is already), then no longer a member."""
    out = [] if slot.lb == "maint" else [Step(StepKind.DISABLE, slot.name, why)]
    return [*out, Step(StepKind.LEAVE, slot.name, why)]


# -- what the status says of each group ---------------------------------------------
class DecisionRecord(TypedDict):
    t: float
    """Wall-clock time (seconds since the epoch)."""
    sentence: str


class GroupStatus(TypedDict):
    region: str
    tier: str
    current: int
    """Healthy members serving (enabled in the load balancer)."""
    desired: int
    min: int
    max: int
    last_decision: str
    cpu_percent: float | None
    """Average CPU of the healthy members over the window, percent of one core."""
    in_flight: int
    instances: list[str]
    """The members, starting, serving or draining."""
    draining: list[str]
    decisions: list[DecisionRecord]
    """The last changes, oldest first."""
    changes: int
    """Changes of the group's size since the controller started."""
