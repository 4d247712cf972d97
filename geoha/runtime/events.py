"""The controller's structured events and the typed status it answers with.

An event is a kind, a node and fields; its human sentence is derived from
them by one template per kind. Readers (`geoha up`, `geoha logs controller`,
benchmarks, tests) match on `kind` and `node`, never on the sentence.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TypedDict

from geoha.ops.autoscale import GroupStatus
from geoha.ops.fencing import FastFailoverStatus
from geoha.ops.monitor_status import MonitorSummary
from geoha.runtime.faults import FaultStatus
from geoha.runtime.global_dns import DnsStatus

FieldValue = str | int | float | bool | None


class EventKind(StrEnum):
    CONTROLLER_STARTED = "controller_started"
    NODE_ADOPTED = "node_adopted"
    BRING_UP_BEGUN = "bring_up_begun"
    CONFIGS_RENDERED = "configs_rendered"
    NODE_STARTED = "node_started"
    NODE_EXITED = "node_exited"
    NODE_RESTARTED = "node_restarted"
    NODE_STOPPED = "node_stopped"
    NODE_KILLED = "node_killed"
    NODE_HEALTHY = "node_healthy"
    NODE_UNHEALTHY = "node_unhealthy"
    RESTARTS_RESET = "restarts_reset"
    PRIMARY_RECORDED = "primary_recorded"
    SCHEMA_APPLIED = "schema_applied"
    STAGE_DONE = "stage_done"
    READY = "ready"
    FAILED = "failed"
    ACTION_FAILED = "action_failed"
    DECISION = "decision"
    ALL_STOPPED = "all_stopped"
    DNS_SERVING = "dns_serving"
    DNS_HEALTH = "dns_health"
    MONITOR_SERVING = "monitor_serving"
    FAULT_INJECTED = "fault_injected"
    FAULT_HEALED = "fault_healed"
    PARTITIONS_UNAVAILABLE = "partitions_unavailable"
    INCIDENT_OPENED = "incident_opened"
    INCIDENT_CLOSED = "incident_closed"
    FENCE_DECIDED = "fence_decided"
    FENCE_FAILED = "fence_failed"
    LEASE_REVOKED = "lease_revoked"
    LEASE_REVOKE_FAILED = "lease_revoke_failed"
    FENCE_RELEASED = "fence_released"
    AUTOSCALED = "autoscaled"
    INSTANCE_STEP = "instance_step"
    SECRETS_ROTATED = "secrets_rotated"


SENTENCES: dict[EventKind, str] = {
    EventKind.CONTROLLER_STARTED: "controller: started (pid {pid}), adopted {adopted} nodes",
    EventKind.NODE_ADOPTED: "{node}: adopted running process {pid}",
    EventKind.BRING_UP_BEGUN: "bring-up #{generation} of tiers {tiers}",
    EventKind.CONFIGS_RENDERED: "configs: rendered for {nodes} nodes",
    EventKind.NODE_STARTED: "{node}: started (pid {pid}) on {address}; {why}",
    EventKind.NODE_EXITED: "{node}: exited (code {code})",
    EventKind.NODE_RESTARTED: (
        "{node}: restarted (pid {pid}), restart #{attempt}; next one no sooner than "
        "{backoff_s} s after this"
    ),
    EventKind.NODE_STOPPED: "{node}: stopped ({why})",
    EventKind.NODE_KILLED: "{node}: killed, {why} (SIGKILL to {processes} processes); "
    "not restarting",
    EventKind.NODE_HEALTHY: "{node}: healthy ({detail})",
    EventKind.NODE_UNHEALTHY: "{node}: unhealthy ({detail})",
    EventKind.RESTARTS_RESET: "{node}: restart count reset after {healthy_for_s} s healthy",
    EventKind.PRIMARY_RECORDED: "{node}: recorded as the primary (starts first next time)",
    EventKind.SCHEMA_APPLIED: "schema: {migrations} on {node}",
    EventKind.STAGE_DONE: "{stage}: done",
    EventKind.READY: "ready: every node healthy after {after_s} s",
    EventKind.FAILED: "failed: {reason}",
    EventKind.ACTION_FAILED: "{action} failed: {error}",
    EventKind.DECISION: "{sentence}",
    EventKind.ALL_STOPPED: "controller: every node stopped",
    EventKind.DNS_SERVING: "dns: {name} served on {server} ({state})",
    EventKind.DNS_HEALTH: "dns: {region} {health} after {checks} checks in a row (last: {detail})",
    EventKind.MONITOR_SERVING: "monitor: dashboard on {url} ({state})",
    EventKind.FAULT_INJECTED: "chaos: {fault} {target} ({detail})",
    EventKind.FAULT_HEALED: "chaos: healed {what}",
    EventKind.PARTITIONS_UNAVAILABLE: "chaos: partitions unavailable: {error}",
    EventKind.INCIDENT_OPENED: "monitor: incident {subject} opened: {cause}",
    EventKind.INCIDENT_CLOSED: (
        "monitor: incident {subject} closed after {duration_s} s: {resolution}"
    ),
    EventKind.FENCE_DECIDED: "fast failover: {node} is dead ({reason}); fencing it",
    EventKind.FENCE_FAILED: "fast failover: could not fence {node}: {error}; Patroni's ttl decides",
    EventKind.LEASE_REVOKED: (
        "fast failover: {node}'s etcd lease {lease} revoked; the synchronous standby may "
        "take the leader key now"
    ),
    EventKind.LEASE_REVOKE_FAILED: (
        "fast failover: revoking {node}'s lease {lease} failed: {error}; Patroni's ttl decides"
    ),
    EventKind.FENCE_RELEASED: "fast failover: {node} released ({why})",
    EventKind.AUTOSCALED: "autoscaler: {sentence}",
    EventKind.INSTANCE_STEP: "autoscaler: {node} {what} ({why})",
    EventKind.SECRETS_ROTATED: "secrets rotated: {users} (new values in secrets.json only)",
}


class EventRecord(TypedDict):
    seq: int
    t: float
    """Wall-clock time (seconds since the epoch)."""
    kind: str
    node: str | None
    fields: dict[str, FieldValue]
    message: str


@dataclass(frozen=True)
class Event:
    seq: int
    t: float
    kind: EventKind
    node: str | None
    fields: dict[str, FieldValue]

    @property
    def message(self) -> str:
        return SENTENCES[self.kind].format(node=self.node, **self.fields)

    def record(self) -> EventRecord:
        return {
            "seq": self.seq,
            "t": self.t,
            "kind": self.kind.value,
            "node": self.node,
            "fields": dict(self.fields),
            "message": self.message,
        }

    def line(self) -> str:
        """The controller log's line: time, sentence, then the structure as key=value."""
        stamp = time.strftime("%H:%M:%S", time.localtime(self.t))
        pairs = ([f"node={self.node}"] if self.node else []) + [
            f"{k}={v}" for k, v in self.fields.items()
        ]
        return f"{stamp} {self.message}  [{' '.join([self.kind.value, *pairs])}]"


class NodeStatus(TypedDict):
    role: str
    region: str
    address: str
    pid: int | None
    running: bool
    wanted: bool
    stopped_by_chaos: bool
    healthy: bool
    detail: str
    db_role: str | None
    restarts: int
    busy: bool


class DesiredStatus(TypedDict):
    goal: str
    tiers: str
    generation: int
    held: list[str]
    by_hand: list[str]
    stop_fast: bool


class ControllerStatus(TypedDict):
    pid: int
    phase: str
    generation: int
    """The `up` the current (or last) bring-up serves; `desired.generation` is the latest asked."""
    stage: str | None
    error: str | None
    failed_node: str | None
    ready_after_s: float | None
    decision: str
    desired: DesiredStatus
    events: list[EventRecord]
    nodes: dict[str, NodeStatus]
    dns: DnsStatus
    monitor: MonitorSummary
    faults: list[FaultStatus]
    """Active faults: partitions, killed regions, killed nodes."""
    fast_failover: FastFailoverStatus
    autoscale: list[GroupStatus]
    autoscaler_cpu_s: float
    """CPU seconds the controller spent in autoscaler ticks since it started (an upper
    bound: the whole process's CPU while a tick ran)."""
