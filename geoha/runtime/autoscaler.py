"""The local runtime's autoscaler: every data region's web and API tiers, each tick.

A loop that decides (STYLE.md): each tick the controller hands it what it
observed; it reads what only it needs -- the CPU of every instance's process
tree (from /proc, averaged over the policy's window) and each load balancer's
server states and requests in flight (its admin socket) -- into one `Slot` per
address of the tier, asks the pure `geoha.ops.autoscale` how many instances the
group should run and which slots that means, and acts:

- a slot that joins becomes a member of the desired state (`Desired.instances`);
  the controller's loop starts it, and once it is healthy the autoscaler enables
  it in the load balancer (no reload, no dropped connection);
- a slot that leaves is first drained in the load balancer; once its requests in
  flight are done (or the drain timeout passed) it is disabled there and leaves
  the desired state, and the controller's loop stops it.

Every decision that changes something is one event with its sentence. The
membership is kept in the run directory (`autoscale.json`), so a controller that
restarts and adopts its nodes keeps the instances it had.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from geoha.ops.autoscale import (
    Decision,
    DecisionRecord,
    Group,
    GroupStatus,
    Instance,
    Move,
    ScalePolicy,
    Slot,
    Step,
    StepKind,
    decide,
    replacements,
    slot_steps,
)
from geoha.plan import Node, NodeRole, Plan
from geoha.render.files import File, write_files
from geoha.render.haproxy import ADMIN_SOCKET
from geoha.spec import Autoscale
from geoha.traffic.lb_admin import (
    LbAdminError,
    ServerState,
    requests_in_flight,
    server_settings,
    set_server_state,
)

STATE_FILE = "autoscale.json"
TIERS: dict[str, tuple[NodeRole, NodeRole, str]] = {
    "api": (NodeRole.API, NodeRole.BACKEND_LB, "api"),
    "web": (NodeRole.WEB, NodeRole.FRONTEND_LB, "web"),
}
"""tier -> (the instances' role, the load balancer's role, its backend)."""
RECENT_DECISIONS = 10
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class SlotView:
    """What the controller knows of one slot this tick."""

    member: bool
    running: bool
    busy: bool
    held: bool
    healthy: bool


def policy_of(scale: Autoscale) -> ScalePolicy:
    return ScalePolicy(
        min=scale.min,
        max=scale.max,
        scale_up_cpu_percent=scale.scale_up_cpu_percent,
        scale_down_cpu_percent=scale.scale_down_cpu_percent,
        tolerance=scale.tolerance_percent / 100,
        step=scale.step,
        scale_out_cooldown_s=scale.scale_out_cooldown_s,
        scale_in_stabilization_s=scale.scale_in_stabilization_s,
        window_s=scale.window_s,
    )


@dataclass
class CpuWindow:
    """CPU seconds of one process tree, sampled each tick; the average over a window."""

    pgid: int | None = None
    samples: deque[tuple[float, float]] = field(default_factory=deque)

    def add(self, pgid: int | None, now: float, cpu_s: float | None, window_s: float) -> None:
        if pgid != self.pgid or cpu_s is None:
            self.pgid, self.samples = pgid, deque()  # another process: start again
            if cpu_s is None:
                return
        self.samples.append((now, cpu_s))
        while len(self.samples) > 2 and self.samples[1][0] <= now - window_s:
            self.samples.popleft()

    def percent(self, window_s: float) -> float | None:
        """Percent of one core over the last `window_s`; None until a whole window is seen."""
        if len(self.samples) < 2:
            return None
        (t0, c0), (t1, c1) = self.samples[0], self.samples[-1]
        if t1 - t0 < window_s * 0.9:
            return None
        return max(0.0, (c1 - c0) / (t1 - t0) * 100)


@dataclass
class GroupState:
    region: str
    tier: str
    scale: Autoscale
    policy: ScalePolicy
    slots: list[Node]
    lb: Node
    backend: str
    since: float
    last_change_at: float | None = None
    recent: deque[tuple[float, int]] = field(default_factory=deque)
    draining: dict[str, float] = field(default_factory=dict)
    unhealthy_since: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, CpuWindow] = field(default_factory=dict)
    last_decision: str = ""
    changes: int = 0
    decisions: deque[DecisionRecord] = field(default_factory=lambda: deque(maxlen=RECENT_DECISIONS))
    lb_states: dict[str, str] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    serving: int = 0
    desired: int = 0
    cpu_percent: float | None = None

    @property
    def name(self) -> str:
        return f"{self.tier}/{self.region}"


class Autoscaler:
    """Every group's state, and the tick that observes, decides and acts on them all."""

    def __init__(
        self,
        plan: Plan,
        emit: Callable[[str, str | None, dict[str, str | int | float | None]], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.plan = plan
        self.emit = emit
        self.clock = clock
        self.cpu_s = 0.0
        """CPU seconds the controller spent in autoscaler ticks (an upper bound)."""
        now = clock()
        self.groups: dict[tuple[str, str], GroupState] = {}
        for region_name, region in plan.spec.data_regions.items():
            for tier, (role, lb_role, backend) in TIERS.items():
                scale: Autoscale = getattr(region, tier).autoscale
                self.groups[(region_name, tier)] = GroupState(
                    region=region_name,
                    tier=tier,
                    scale=scale,
                    policy=policy_of(scale),
                    slots=plan.in_region(region_name, role),
                    lb=plan.only(region_name, lb_role),
                    backend=backend,
                    since=now,
                    desired=scale.desired,
                )

    # -- the membership kept across restarts -------------------------------------------
    def planned(self) -> frozenset[str]:
        """The instances `geoha up` starts: every slot up to each tier's `desired`."""
        return frozenset(n.name for g in self.groups.values() for n in g.slots if not n.standby)

    def load(self) -> frozenset[str]:
        """The members an earlier controller kept, or the planned ones."""
        path = self.plan.run_dir / STATE_FILE
        try:
            names = json.loads(path.read_text(encoding="utf-8"))["instances"]
        except (OSError, ValueError, KeyError, TypeError):
            return self.planned()
        slots = {n.name for g in self.groups.values() for n in g.slots}
        if not isinstance(names, list) or not set(names) <= slots:
            return self.planned()
        return frozenset(names)

    def save(self, instances: frozenset[str]) -> None:
        text = json.dumps({"instances": sorted(instances)}) + "\n"
        write_files([File(self.plan.run_dir / STATE_FILE, text, 0o644)])

    # -- observe ------------------------------------------------------------------------
    def observe(
        self, skip: Iterable[tuple[str, str]], pgids: dict[str, int | None]
    ) -> dict[tuple[str, str], str | None]:
        """Every instance's CPU, and the load balancers of the groups not skipped
        (blocking: run in a thread); why a group's load balancer could not be read."""
        self.sample_cpu(pgids)
        return self.read_lbs(skip)

    def read_lbs(self, skip: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
        """Each group's load balancer states and requests in flight (blocking: a thread).
        Returns why a group's load balancer could not be read, None when it was."""
        problems: dict[tuple[str, str], str | None] = {}
        skipped = set(skip)
        for key, group in self.groups.items():
            if key in skipped:
                continue
            socket = group.lb.dir / ADMIN_SOCKET
            try:
                settings = server_settings(socket, group.backend)
                group.in_flight = requests_in_flight(socket, group.backend)
            except LbAdminError as exc:
                problems[key] = str(exc)
                continue
            group.lb_states = {name: s.state.value for name, s in settings.items()}
            problems[key] = None
        return problems

    def sample_cpu(self, pgids: dict[str, int | None]) -> None:
        """One /proc read for every instance's process tree (blocking: a thread)."""
        seconds = cpu_by_group({p for p in pgids.values() if p is not None})
        now = self.clock()
        for group in self.groups.values():
            for node in group.slots:
                pgid = pgids.get(node.name)
                window = group.cpu.setdefault(node.name, CpuWindow())
                cpu = seconds.get(pgid) if pgid is not None else None
                window.add(pgid, now, cpu, group.policy.window_s)

    # -- decide -------------------------------------------------------------------------
    def plan_group(
        self, group: GroupState, views: dict[str, SlotView], now: float, by_hand: int | None
    ) -> tuple[str, int, Move, list[Step]]:
        """The group's decision sentence, desired count, move and the steps that carry it
        out; `by_hand`: a count `geoha scale` set, which replaces this tick's decision."""
        slots: list[Slot] = []
        for index, node in enumerate(group.slots, 1):
            view = views[node.name]
            if view.member and view.running and not view.healthy:
                group.unhealthy_since.setdefault(node.name, now)
            else:
                group.unhealthy_since.pop(node.name, None)
            sick_since = group.unhealthy_since.get(node.name)
            too_long = (
                sick_since is not None and now - sick_since >= group.scale.replace_unhealthy_after_s
            )
            draining_at = group.draining.get(node.name)
            slots.append(
                Slot(
                    name=node.name,
                    index=index,
                    member=view.member,
                    free=not (view.member or view.running or view.busy or view.held),
                    healthy=view.healthy,
                    failed=view.member and (view.held or too_long),
                    lb=group.lb_states.get(node.name),
                    in_flight=group.in_flight.get(node.name, 0),
                    draining_for=None if draining_at is None else now - draining_at,
                )
            )
        swaps = replacements(slots)
        gone = {old for old, _ in swaps}
        instances = [
            Instance(
                s.name,
                s.healthy,
                group.cpu[s.name].percent(group.policy.window_s) if s.healthy else None,
                starting=not s.healthy and not s.failed,
            )
            for s in slots
            if s.member and s.draining_for is None and s.name not in gone
        ] + [Instance(new, False, None, starting=True) for _, new in swaps]
        current = len(instances)
        decision = decide(
            Group(
                region=group.region,
                tier=group.tier,
                now=now,
                desired=current,
                instances=tuple(instances),
                last_change_at=group.last_change_at,
                since=group.since,
                recent=tuple(group.recent),
            ),
            group.policy,
        )
        if by_hand is not None:
            move = Move.OUT if by_hand > current else Move.IN if by_hand < current else Move.HOLD
            what = f"{current} -> {by_hand}" if move is not Move.HOLD else f"holding {current}"
            decision = Decision(move, by_hand, by_hand, f"{group.name}: {what}, set by hand")
        group.recent.append((now, decision.recommendation))
        while group.recent and group.recent[0][0] < now - group.policy.scale_in_stabilization_s:
            group.recent.popleft()
        group.desired = decision.desired
        healthy_cpu = [i.cpu_percent for i in instances if i.cpu_percent is not None]
        group.cpu_percent = sum(healthy_cpu) / len(healthy_cpu) if healthy_cpu else None
        steps = slot_steps(slots, swaps, decision.desired, group.scale.drain_timeout_s)
        return decision.reason, decision.desired, decision.move, steps

    # -- act ----------------------------------------------------------------------------
    def lb_step(self, group: GroupState, step: Step) -> str | None:
        """Carry out a load balancer step (blocking: a thread); why it failed, if it did."""
        state = {
            StepKind.ENABLE: ServerState.READY,
            StepKind.DRAIN: ServerState.DRAIN,
            StepKind.DISABLE: ServerState.MAINT,
        }[step.kind]
        try:
            set_server_state(group.lb.dir / ADMIN_SOCKET, group.backend, step.slot, state)
        except LbAdminError as exc:
            return str(exc)
        group.lb_states[step.slot] = state.value
        return None

    def record(self, group: GroupState, sentence: str, now: float, desired: int) -> None:
        """A decision that changed the group's size: its sentence, kept and emitted. A
        count set by hand is kept as a recommendation too (`plan_group`), so scale-in
        waits a whole stabilization window after it."""
        group.last_change_at = now
        group.last_decision = sentence
        group.changes += 1
        group.decisions.append({"t": time.time(), "sentence": sentence})
        fields: dict[str, str | int | float | None] = {
            "sentence": sentence,
            "region": group.region,
            "tier": group.tier,
            "desired": desired,
        }
        self.emit("autoscaled", None, fields)

    # -- status -------------------------------------------------------------------------
    def status(self, members: frozenset[str]) -> list[GroupStatus]:
        result: list[GroupStatus] = []
        for group in self.groups.values():
            names = [n.name for n in group.slots if n.name in members]
            result.append(
                {
                    "region": group.region,
                    "tier": group.tier,
                    "current": group.serving,
                    "desired": group.desired,
                    "min": group.scale.min,
                    "max": group.scale.max,
                    "last_decision": group.last_decision,
                    "cpu_percent": None
                    if group.cpu_percent is None
                    else round(group.cpu_percent, 1),
                    "in_flight": sum(group.in_flight.get(n, 0) for n in names),
                    "instances": names,
                    "draining": sorted(group.draining),
                    "decisions": list(group.decisions),
                    "changes": group.changes,
                }
            )
        return result


def cpu_by_group(pgids: set[int]) -> dict[int, float]:
    """CPU seconds (user + system) used so far by the live processes of each process group."""
    totals = dict.fromkeys(pgids, 0.0)
    if not pgids:
        return totals
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = text.rsplit(")", 1)[1].split()
        pgid = int(fields[2])
        if pgid in totals:
            totals[pgid] += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return totals
