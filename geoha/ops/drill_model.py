"""Failover drills, the pure part: which fault, how to inject and heal it, and the event log.

A drill (`geoha drill failover`) runs browser-like clients against the
deployment, injects one fault with `geoha chaos`, heals it, waits for the
cluster to settle and checks every acknowledged write. What the clients, the
role sampler and the DNS poller see is recorded as the plain records below;
geoha.ops.drill_analysis turns them into figures. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from geoha.errors import BadInput

FAULT_FORMS = "one of kill-region:REGION, partition:REGION, kill-node:NODE, kill-witness"


class FaultKind(StrEnum):
    KILL_REGION = "kill-region"
    PARTITION = "partition"
    KILL_NODE = "kill-node"
    KILL_WITNESS = "kill-witness"


@dataclass(frozen=True)
class Fault:
    """A fault as `--fault` names it: a kind and its target (none for kill-witness)."""

    kind: FaultKind
    target: str | None = None

    def __str__(self) -> str:
        return self.kind.value if self.target is None else f"{self.kind.value}:{self.target}"


def parse_fault(text: str) -> Fault:
    """`--fault`'s value (syntax only; `chaos_plan` checks the names against the topology)."""
    kind_text, sep, target = text.partition(":")
    try:
        kind = FaultKind(kind_text)
    except ValueError:
        raise BadInput(f"--fault: {FAULT_FORMS} (got {text!r})") from None
    if kind is FaultKind.KILL_WITNESS:
        if sep:
            raise BadInput(f"--fault: kill-witness takes no target (got {text!r})")
        return Fault(kind)
    if not target:
        raise BadInput(f"--fault: {FAULT_FORMS} (got {text!r})")
    return Fault(kind, target)


@dataclass(frozen=True)
class ChaosPlan:
    """How a fault is injected and healed through `geoha chaos`, and whom it hits."""

    inject: tuple[str, ...]
    """The arguments after `geoha chaos` that inject it."""
    heal: tuple[str, ...]
    """The arguments after `geoha chaos` that undo it."""
    lost_region: str | None
    """The data region whose entry the fault takes away from its clients (None: none)."""
    killed_nodes: tuple[str, ...]
    """Nodes the fault kills: the first of their deaths is when the fault struck."""


def chaos_plan(
    fault: Fault,
    regions: Mapping[str, str],
    node_regions: Mapping[str, str],
) -> ChaosPlan:
    """The chaos commands for `fault`. `regions`: each region's role ("primary", "replica",
    "witness"); `node_regions`: each node's region. BadInput names an unknown target."""
    data = [r for r, role in regions.items() if role != "witness"]
    witnesses = [r for r, role in regions.items() if role == "witness"]

    def region_nodes(region: str) -> tuple[str, ...]:
        return tuple(n for n, r in node_regions.items() if r == region)

    match fault.kind:
        case FaultKind.KILL_WITNESS:
            if not witnesses:
                raise BadInput("--fault: kill-witness needs a witness region (there is none)")
            witness = witnesses[0]
            return ChaosPlan(
                ("kill-region", witness), ("heal", witness), None, region_nodes(witness)
            )
        case FaultKind.KILL_NODE:
            node = fault.target or ""
            if node not in node_regions:
                raise BadInput(
                    f"--fault: kill-node:NODE with NODE one of {', '.join(node_regions)} "
                    f"(got {node!r})"
                )
            region = node_regions[node]
            lost = region if region in data else None
            return ChaosPlan(("kill-node", node), ("heal", region), lost, (node,))
    region = fault.target or ""
    if region not in regions:
        raise BadInput(
            f"--fault: {fault.kind.value}:REGION with REGION one of {', '.join(regions)} "
            f"(got {region!r})"
        )
    lost = region if region in data else None
    if fault.kind is FaultKind.KILL_REGION:
        return ChaosPlan(("kill-region", region), ("heal", region), lost, region_nodes(region))
    return ChaosPlan(("partition", region), ("heal", region), lost, ())


@dataclass(frozen=True)
class ControllerEvent:
    """One of the controller's structured events, on the drill's clock."""

    t: float
    kind: str
    node: str | None
    target: str | None = None


def fault_struck_at(
    events: Iterable[ControllerEvent], plan: ChaosPlan, issued: float, returned: float
) -> float:
    """When the fault took effect: the first kill of one of its nodes, or the partition's
    `fault_injected` event (the rules are in place by then); issued no earlier than
    `issued`. Without such an event, when the chaos command returned."""
    if plan.killed_nodes:
        times = [
            e.t
            for e in events
            if e.kind == "node_killed" and e.node in plan.killed_nodes and e.t >= issued
        ]
    else:
        times = [
            e.t
            for e in events
            if e.kind == "fault_injected" and e.target == plan.inject[1] and e.t >= issued
        ]
    return min(times, default=returned)


# -- the event log -------------------------------------------------------------------------

Clock = Callable[[], float]
"""Seconds since the load began."""


class OpKind(StrEnum):
    READ = "read"
    WRITE = "write"
    READBACK = "readback"
    """A read that decides a write's unknown outcome."""


OK = "ok"


@dataclass(frozen=True)
class Attempt:
    """One HTTP request of one client (or its failure before an answer)."""

    sent: float
    """Seconds since the load began, when it was sent."""
    done: float
    """When its answer, or its failure, came."""
    client: int
    region: str | None
    """The region whose entry the client's DNS answer named (None: it had no answer)."""
    op: OpKind
    outcome: str
    """"ok", or the kind of error ("connect failed", "timeout", "503 outcome unknown", ...)."""
    detail: str | None = None
    """For a failure: the API's error message, or the client's exception."""

    @property
    def ok(self) -> bool:
        return self.outcome == OK

    @property
    def is_read(self) -> bool:
        return self.op is not OpKind.WRITE


@dataclass(frozen=True)
class Resolution:
    """One DNS lookup of the application's name by one client."""

    t: float
    client: int
    region: str | None
    """The region whose entry it named (None: no answer, or an address of no region)."""
    address: str | None
    ttl: int | None
    error: str | None = None


class WriteOutcome(StrEnum):
    ACKED = "acked"
    """The client knows the theme exists: a 201, or found by reading back."""
    FAILED = "failed"
    """The client knows it was not written (every attempt failed before reaching a primary)."""
    UNKNOWN = "unknown"
    """The client gave up without knowing."""


class AckedBy(StrEnum):
    CREATED = "created"
    """201 Created."""
    READ_BACK = "read back"
    """An unknown outcome, then the theme found in the list."""


@dataclass(frozen=True)
class WriteRecord:
    """One theme a client meant to create once, under a name no other write uses."""

    name: str
    client: int
    first_sent: float
    outcome: WriteOutcome
    acked_at: float | None = None
    acked_by: AckedBy | None = None
    theme_id: int | None = None
    attempts: int = 1


@dataclass(frozen=True)
class NodeSample:
    """One database node in one sampling round."""

    node: str
    writable: bool | None
    """not pg_is_in_recovery() (None: no answer over a direct connection)."""
    patroni_role: str | None
    """Patroni's role from GET /patroni (None: no answer)."""
    lsn: int | None = None
    """A writable node's current WAL position, a replica's replay position."""


@dataclass(frozen=True)
class Round:
    """Every database node sampled at once."""

    t: float
    samples: tuple[NodeSample, ...]


@dataclass(frozen=True)
class DnsHealthChange:
    """A region's record turned healthy or unhealthy in the global DNS."""

    t: float
    region: str
    healthy: bool


@dataclass(frozen=True)
class Marks:
    """When the drill's phases happened (seconds since the load began)."""

    fault_issued: float | None = None
    fault_at: float | None = None
    """When the fault took effect (fault_struck_at); RTOs are counted from here."""
    fault_returned: float | None = None
    heal_at: float | None = None
    """When `geoha chaos heal` was issued."""
    heal_returned: float | None = None
    load_end: float = 0.0
    settled_at: float | None = None


@dataclass(frozen=True)
class DrillSettings:
    """One drill as asked for."""

    fault: Fault
    chaos: ChaosPlan
    rate: float
    """Operations per second, all clients together."""
    duration_s: float
    """How long the load runs."""
    heal_after_s: float
    """Seconds from the fault to the heal."""
    warmup_s: float
    """Seconds of load before the fault."""
    data_regions: tuple[str, ...]
    sync: bool
    """Synchronous replication: no acknowledged write may be lost."""
    seed: int
    tag: str
    """Part of every theme name the drill writes, unique to it."""
    settle_timeout_s: float = 180.0
    sample_interval_s: float = 0.1


def warmup_s(duration_s: float) -> float:
    """Load before the fault: a fifth of the run, at most 5 s."""
    return min(5.0, duration_s / 5)


@dataclass(frozen=True)
class DrillLog:
    """Everything one drill recorded."""

    attempts: list[Attempt]
    resolutions: list[Resolution]
    writes: list[WriteRecord]
    rounds: list[Round]
    dns_changes: list[DnsHealthChange]
    marks: Marks
    clients: int
    capped: bool = False
    """The request cap stopped the load early."""
    stragglers: int = 0
    """Clients still running when the drill stopped waiting for them."""
    settle_error: str | None = None
    """What was still missing when the cluster had not settled in time (None: settled)."""
    primary: str | None = None
    """The primary once settled (or when the wait gave up)."""
    counts: dict[str, int] | None = None
    """Rows per theme name on the primary (None: the check did not run)."""
    check_error: str | None = None
    heal_error: str | None = None
    """Why `geoha chaos HEAL` failed (None: it did not)."""
