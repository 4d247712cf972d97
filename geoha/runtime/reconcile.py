"""The controller's decisions, as a pure function of one snapshot.

Each cycle the controller observes every node into a `Snapshot`, calls
`decide(snapshot, desired, policy)` and carries out the `Action`s it returns.
Nothing here touches a process, a socket or the clock: the snapshot carries
the time, so every rule can be tested with plain data.

The rules, in the order `decide` applies them:
- housekeeping: a restart counter goes back to 0 once its node has been
  healthy for `policy.restart_decay_s`; a new healthy primary is recorded
  (the next bring-up starts it first);
- nodes chaos holds down (`desired.held`) are killed if anything of them runs;
  nodes nobody wants any more are stopped;
- a wanted node whose process exited is restarted, after a backoff that
  doubles with each restart (2, 4, 8 ... s, at most `policy.max_backoff_s`);
- goal RUN: a bring-up (started by each `up`) renders every config, then walks
  the stages in order -- etcd, databases (the last primary alone first, the
  others once one database is healthy), schema, API, backend LB, web,
  frontend LB -- starting a stage's nodes only once every earlier stage is
  healthy; it fails when a stage is not healthy within its timeout, or a node
  of it crash-loops;
- once ready: the API and web instances the autoscaler adds to the desired state
  (`Desired.instances`) are started, those it takes out of it stopped;
- goal STOP: frontend LB, web, backend LB, API, replicas, primary, etcd -- each
  group once the one before it has stopped -- then the controller exits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from geoha.health import DbRole, Health
from geoha.plan import NodeRole


class Goal(StrEnum):
    RUN = "run"
    STOP = "stop"


class Tiers(StrEnum):
    """How much of the deployment `geoha up` brings up; each includes the one before."""

    DATA = "data"
    """etcd, the databases and the schema."""
    APP = "app"
    """... and the API instances behind their backend LB."""
    ALL = "all"
    """... and the web instances behind the frontend LB: the whole deployment."""


class Phase(StrEnum):
    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"
    STOPPING = "stopping"


class Stage(StrEnum):
    """The steps of a bring-up, in order."""

    RENDER = "render"
    ETCD = "etcd"
    DATABASE = "database"
    SCHEMA = "schema"
    API = "api"
    BACKEND_LB = "backend-lb"
    WEB = "web"
    FRONTEND_LB = "frontend-lb"


STAGE_ROLE: dict[Stage, NodeRole] = {
    Stage.ETCD: NodeRole.ETCD,
    Stage.DATABASE: NodeRole.DATABASE,
    Stage.API: NodeRole.API,
    Stage.BACKEND_LB: NodeRole.BACKEND_LB,
    Stage.WEB: NodeRole.WEB,
    Stage.FRONTEND_LB: NodeRole.FRONTEND_LB,
}
TIER_STAGES: dict[Tiers, tuple[Stage, ...]] = {
    Tiers.DATA: (Stage.RENDER, Stage.ETCD, Stage.DATABASE, Stage.SCHEMA),
    Tiers.APP: (
        Stage.RENDER,
        Stage.ETCD,
        Stage.DATABASE,
        Stage.SCHEMA,
        Stage.API,
        Stage.BACKEND_LB,
    ),
    Tiers.ALL: tuple(Stage),
}
SCALED_ROLES = frozenset({NodeRole.API, NodeRole.WEB})
"""The roles of the autoscaled tiers."""
STOP_ORDER = (
    NodeRole.FRONTEND_LB,
    NodeRole.WEB,
    NodeRole.BACKEND_LB,
    NodeRole.API,
    NodeRole.DATABASE,  # replicas first, then the primary
    NodeRole.ETCD,
)


class ProcState(StrEnum):
    RUNNING = "running"
    EXITED = "exited"
    """Started (or adopted) by this controller and gone since, not by its own doing."""
    ABSENT = "absent"
    """Not started, or stopped or killed on purpose."""


@dataclass(frozen=True)
class Desired:
    """What the operator asked for; changed only by the control handlers."""

    goal: Goal = Goal.RUN
    tiers: Tiers = Tiers.ALL
    generation: int = 1
    """Bumped by every `up`: configs are rendered and the schema applied again."""
    held: frozenset[str] = frozenset()
    """Nodes chaos killed: kept down until `start-node` or the next `up`."""
    by_hand: frozenset[str] = frozenset()
    """Nodes started by `start-node`, wanted whatever the tiers say (e.g. a standby slot)."""
    stop_fast: bool = False
    """With goal STOP: SIGKILL every node at once (`down --purge`: the data goes anyway)."""
    instances: frozenset[str] | None = None
    """The autoscaled slots (API and web instances) that run, as the autoscaler and
    `geoha scale` set them; None: the plan's, every slot up to each tier's `desired`."""

    def wants(self, node: NodeView) -> bool:
        if node.name in self.held:
            return False
        if node.name in self.by_hand:
            return True
        if STAGE_OF_ROLE[node.role] not in TIER_STAGES[self.tiers]:
            return False
        return self.is_member(node) if self.scales(node) else not node.standby

    def scales(self, node: NodeView) -> bool:
        """Whether the autoscaler decides if this node runs."""
        return self.instances is not None and node.role in SCALED_ROLES

    def is_member(self, node: NodeView) -> bool:
        """An autoscaled instance the autoscaler wants running."""
        return self.instances is not None and node.name in self.instances

    def why_unwanted(self, node: NodeView) -> str:
        if self.scales(node) and STAGE_OF_ROLE[node.role] in TIER_STAGES[self.tiers]:
            return "scaled in"
        return f"not wanted with tiers {self.tiers.value}"


@dataclass(frozen=True)
class NodeView:
    """One node as the controller saw it this cycle."""

    name: str
    role: NodeRole
    standby: bool = False
    proc: ProcState = ProcState.ABSENT
    pid: int | None = None
    exit_code: int | None = None
    health: Health = field(default_factory=lambda: Health(False, "not running"))
    healthy_since: float | None = None
    restarts: int = 0
    next_restart_at: float = 0.0
    busy: bool = False
    """An action on this node is still in flight."""

    @property
    def present(self) -> bool:
        """Something of the node may run (a live or an exited-but-unreaped process)."""
        return self.proc is not ProcState.ABSENT

    @property
    def is_primary(self) -> bool:
        return self.health.healthy and self.health.db_role is DbRole.PRIMARY


STAGE_OF_ROLE = {role: stage for stage, role in STAGE_ROLE.items()}


@dataclass(frozen=True)
class Snapshot:
    """Everything a decision needs, observed at one instant."""

    now: float
    """Monotonic seconds."""
    nodes: tuple[NodeView, ...]
    phase: Phase = Phase.STARTING
    bring_up_generation: int = 0
    """The generation the current (or last) bring-up serves."""
    bring_up_started_at: float = 0.0
    stage: Stage | None = None
    stage_since: float = 0.0
    rendered_generation: int = 0
    schema_generation: int = 0
    """The generation the schema was last applied for."""
    busy: frozenset[str] = frozenset()
    """Deployment-wide actions in flight ("render", "schema")."""
    error: str | None = None
    """Why the last render or schema step failed, if it did."""
    initialized: bool = False
    """A database has data: the cluster exists (bootstrap otherwise)."""
    last_primary: str | None = None

    def node(self, name: str) -> NodeView:
        return next(n for n in self.nodes if n.name == name)

    def of_role(self, role: NodeRole) -> list[NodeView]:
        return [n for n in self.nodes if n.role is role]

    @property
    def primary(self) -> NodeView | None:
        primaries = [n for n in self.nodes if n.is_primary]
        return primaries[0] if len(primaries) == 1 else None


@dataclass(frozen=True)
class Policy:
    """The fixed rules of a deployment's controller."""

    preferred_primary: str
    """The node that bootstraps the cluster (the primary region's database)."""
    stage_timeout_s: dict[Stage, float] = field(
        default_factory=lambda: {
            Stage.RENDER: 60.0,
            Stage.ETCD: 60.0,
            Stage.DATABASE: 180.0,
            Stage.SCHEMA: 60.0,
            Stage.API: 60.0,
            Stage.BACKEND_LB: 60.0,
            Stage.WEB: 60.0,
            Stage.FRONTEND_LB: 60.0,
        }
    )
    max_backoff_s: float = 30.0
    restart_decay_s: float = 60.0
    """A node healthy this long has its restart counter (and so its backoff) reset."""
    crash_loop_restarts: int = 3
    """During a bring-up, a node that exited again after this many restarts fails it."""

    def backoff_s(self, attempt: int) -> float:
        return min(2.0**attempt, self.max_backoff_s)


# -- actions -------------------------------------------------------------------------
@dataclass(frozen=True)
class BeginBringUp:
    generation: int


@dataclass(frozen=True)
class RenderConfigs:
    generation: int


@dataclass(frozen=True)
class StartNode:
    node: str
    why: str


@dataclass(frozen=True)
class RestartNode:
    node: str
    attempt: int
    backoff_s: float
    exit_code: int | None


@dataclass(frozen=True)
class StopNode:
    node: str
    why: str


@dataclass(frozen=True)
class KillNode:
    node: str
    why: str = "held down by chaos"


@dataclass(frozen=True)
class ApplySchema:
    primary: str
    generation: int


@dataclass(frozen=True)
class ResetRestarts:
    node: str
    healthy_for_s: float


@dataclass(frozen=True)
class RecordPrimary:
    node: str


@dataclass(frozen=True)
class MarkReady:
    after_s: float


@dataclass(frozen=True)
class MarkFailed:
    reason: str
    node: str | None


@dataclass(frozen=True)
class FinishShutdown:
    pass


Action = (
    BeginBringUp
    | RenderConfigs
    | StartNode
    | RestartNode
    | StopNode
    | KillNode
    | ApplySchema
    | ResetRestarts
    | RecordPrimary
    | MarkReady
    | MarkFailed
    | FinishShutdown
)


@dataclass(frozen=True)
class Decision:
    actions: tuple[Action, ...]
    sentence: str
    """What the controller is doing and why, in one line."""
    stage: Stage | None = None
    """The bring-up stage being waited on (None when there is none)."""
    phase: Phase | None = None
    """The phase the controller is in after these actions (None: unchanged)."""


# -- decide ----------------------------------------------------------------------------
def decide(snap: Snapshot, desired: Desired, policy: Policy) -> Decision:
    """What to do next, given what was observed and what was asked for."""
    actions: list[Action] = list(housekeeping(snap, policy))
    if desired.goal is Goal.STOP:
        return shutdown_fast(snap, actions) if desired.stop_fast else shutdown(snap, actions)
    actions += enforce_holds(snap, desired)
    actions += restart_exited(snap, desired, policy)
    if snap.bring_up_generation < desired.generation:
        actions.append(BeginBringUp(desired.generation))
        return Decision(tuple(actions), "bring-up requested", Stage.RENDER, phase=Phase.STARTING)
    if snap.phase is Phase.STARTING:
        return bring_up(snap, desired, policy, actions)
    # READY or FAILED: keep what runs running; start only what was asked for by hand,
    # and the instances the autoscaler adds.
    for node in snap.nodes:
        if node.proc is not ProcState.ABSENT or node.busy or not desired.wants(node):
            continue
        if node.name in desired.by_hand:
            actions.append(StartNode(node.name, "started by hand"))
        elif desired.is_member(node):
            actions.append(StartNode(node.name, "scaled out"))
    sentence = summarize(actions) if actions else "no action: every wanted node runs"
    if snap.phase is Phase.FAILED:
        sentence = f"bring-up failed ({snap.error}); " + sentence
    return Decision(tuple(actions), sentence)


def housekeeping(snap: Snapshot, policy: Policy) -> Iterable[Action]:
    for node in snap.nodes:
        if node.restarts and node.healthy_since is not None:
            healthy_for = snap.now - node.healthy_since
            if healthy_for >= policy.restart_decay_s:
                yield ResetRestarts(node.name, round(healthy_for, 1))
    primary = snap.primary
    if primary is not None and primary.name != snap.last_primary:
        yield RecordPrimary(primary.name)


def enforce_holds(snap: Snapshot, desired: Desired) -> Iterable[Action]:
    for node in snap.nodes:
        if node.busy or not node.present:
            continue
        if node.name in desired.held:
            yield KillNode(node.name)
        elif not desired.wants(node):
            yield StopNode(node.name, desired.why_unwanted(node))


def restart_exited(snap: Snapshot, desired: Desired, policy: Policy) -> Iterable[Action]:
    for node in snap.nodes:
        if node.proc is not ProcState.EXITED or node.busy or not desired.wants(node):
            continue
        if snap.phase is Phase.STARTING and node.restarts >= policy.crash_loop_restarts:
            continue  # bring_up() fails the bring-up instead
        if snap.now >= node.next_restart_at:
            attempt = node.restarts + 1
            yield RestartNode(node.name, attempt, policy.backoff_s(attempt), node.exit_code)


def bring_up(snap: Snapshot, desired: Desired, policy: Policy, actions: list[Action]) -> Decision:
    """Walk the stages in order; act on the first one that is not done."""
    for stage in TIER_STAGES[desired.tiers]:
        waiting, sentence = stage_step(snap, desired, policy, stage, actions)
        if not waiting:
            continue
        failure = stage_failure(snap, desired, policy, stage)
        if failure is not None:
            actions.append(failure)
            return Decision(
                tuple(actions), f"bring-up failed: {failure.reason}", stage, Phase.FAILED
            )
        return Decision(tuple(actions), sentence, stage)
    after = round(snap.now - snap.bring_up_started_at, 1)
    actions.append(MarkReady(after))
    return Decision(tuple(actions), f"ready: every node healthy after {after} s", None, Phase.READY)


def stage_step(
    snap: Snapshot, desired: Desired, policy: Policy, stage: Stage, actions: list[Action]
) -> tuple[bool, str]:
    """Add the stage's actions; whether the bring-up must wait on it, and why."""
    if stage is Stage.RENDER:
        if snap.rendered_generation >= desired.generation:
            return False, ""
        if "render" not in snap.busy and snap.error is None:
            actions.append(RenderConfigs(desired.generation))
        return True, "rendering every node's configuration"
    if stage is Stage.SCHEMA:
        if snap.schema_generation >= desired.generation:
            return False, ""
        primary = snap.primary
        if primary is None:
            return True, "waiting for a primary to apply the schema on"
        if "schema" not in snap.busy and snap.error is None:
            actions.append(ApplySchema(primary.name, desired.generation))
        return True, f"applying the schema on {primary.name}"
    members = [n for n in snap.of_role(STAGE_ROLE[stage]) if desired.wants(n)]
    if stage is Stage.DATABASE:
        actions += start_databases(snap, policy, members)
    else:
        actions += [
            StartNode(n.name, f"bring-up: {stage.value}")
            for n in members
            if n.proc is ProcState.ABSENT and not n.busy
        ]
    sick = [n.name for n in members if not n.health.healthy]
    if not sick:
        return False, ""
    return True, f"starting {stage.value}: waiting for {', '.join(sick)}"


def start_databases(snap: Snapshot, policy: Policy, members: list[NodeView]) -> list[Action]:
    """The last primary alone first (so it keeps its role); the others once one is healthy."""
    absent = [n for n in members if n.proc is ProcState.ABSENT and not n.busy]
    if any(n.present for n in members):
        if any(n.health.healthy for n in members):
            return [StartNode(n.name, "bring-up: database") for n in absent]
        return []
    first = first_database(snap, policy, members)
    if first is None:
        return []
    return [StartNode(first.name, first_database_reason(snap, first))]


def first_database(snap: Snapshot, policy: Policy, members: list[NodeView]) -> NodeView | None:
    """The last primary once the cluster exists, else the preferred one, else any wanted."""
    names = [n.name for n in members]
    for candidate in (snap.last_primary if snap.initialized else None, policy.preferred_primary):
        if candidate in names:
            return snap.node(candidate)
    return members[0] if members else None


def first_database_reason(snap: Snapshot, node: NodeView) -> str:
    if snap.initialized and node.name == snap.last_primary:
        return "bring-up: starts first, the last primary"
    if snap.initialized:
        return "bring-up: starts first (the last primary is not wanted)"
    return "bring-up: starts first, bootstrapping the cluster as the preferred primary"


def stage_failure(
    snap: Snapshot, desired: Desired, policy: Policy, stage: Stage
) -> MarkFailed | None:
    """Why the bring-up must give up on `stage`, if it must."""
    if snap.error is not None and stage in (Stage.RENDER, Stage.SCHEMA):
        return MarkFailed(snap.error, None)
    if stage in STAGE_ROLE:
        for node in snap.of_role(STAGE_ROLE[stage]):
            looping = node.proc is ProcState.EXITED and node.restarts >= policy.crash_loop_restarts
            if desired.wants(node) and looping:
                return MarkFailed(
                    f"{node.name} keeps exiting while starting {stage.value}", node.name
                )
    timeout = policy.stage_timeout_s[stage]
    if snap.stage is stage and snap.now - snap.stage_since > timeout:
        members = (
            [n for n in snap.of_role(STAGE_ROLE[stage]) if desired.wants(n)]
            if stage in STAGE_ROLE
            else []
        )
        sick = [n for n in members if not n.health.healthy]
        details = "; ".join(f"{n.name}: {n.health.detail}" for n in sick) or stage.value
        return MarkFailed(
            f"not healthy after {timeout:.0f} s while starting {stage.value}: {details}",
            sick[0].name if sick else None,
        )
    return None


def shutdown(snap: Snapshot, actions: list[Action]) -> Decision:
    """Stop group after group; replicas before the primary so it keeps its role."""
    for role in STOP_ORDER:
        present = [n for n in snap.of_role(role) if n.present or n.busy]
        if role is NodeRole.DATABASE:
            replicas = [n for n in present if not n.is_primary]
            present = replicas or present
        if present:
            actions += [StopNode(n.name, "shutdown") for n in present if not n.busy]
            names = ", ".join(n.name for n in present)
            return Decision(tuple(actions), f"stopping {names}", phase=Phase.STOPPING)
    actions.append(FinishShutdown())
    return Decision(tuple(actions), "every node stopped", phase=Phase.STOPPING)


def shutdown_fast(snap: Snapshot, actions: list[Action]) -> Decision:
    """Every node killed at once: nothing is kept, so nothing needs a clean stop."""
    left = [n for n in snap.nodes if n.present or n.busy]
    if left:
        actions += [KillNode(n.name, "down --purge") for n in left if not n.busy]
        names = ", ".join(n.name for n in left)
        return Decision(tuple(actions), f"killing {names}", phase=Phase.STOPPING)
    actions.append(FinishShutdown())
    return Decision(tuple(actions), "every node stopped", phase=Phase.STOPPING)


def summarize(actions: Iterable[Action]) -> str:
    """The actions in words, for the decision's sentence."""
    return "; ".join(describe(action) for action in actions)


def describe(action: Action) -> str:
    match action:
        case RestartNode(node, attempt, backoff_s, exit_code):
            return (
                f"restarting {node} (exited with {exit_code}), restart #{attempt}, "
                f"next backoff {backoff_s:g} s"
            )
        case StartNode(node, why):
            return f"starting {node} ({why})"
        case StopNode(node, why):
            return f"stopping {node} ({why})"
        case KillNode(node, why):
            return f"killing {node} ({why})"
        case ResetRestarts(node, healthy_for_s):
            return f"resetting {node}'s restart count (healthy for {healthy_for_s:g} s)"
        case RecordPrimary(node):
            return f"recording {node} as the primary"
    return type(action).__name__
