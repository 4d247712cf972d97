"""The controller's memory of one node, and how it shows in a snapshot and in the status."""

from __future__ import annotations

from dataclasses import dataclass, field

from geoha.health import Health
from geoha.plan import Node
from geoha.runtime.events import NodeStatus
from geoha.runtime.kinds import NodeKind
from geoha.runtime.process import NodeProcess
from geoha.runtime.reconcile import Desired, NodeView, ProcState


@dataclass
class NodeRuntime:
    """The controller's memory of one node; changed only by observe and by actions."""

    node: Node
    kind: NodeKind
    proc: NodeProcess | None = None
    start_failed: bool = False
    """The last start raised before a process existed (counts as an exit)."""
    exit_reported: bool = False
    health: Health = field(default_factory=lambda: Health(False, "not running"))
    healthy_since: float | None = None
    restarts: int = 0
    next_restart_at: float = 0.0
    busy: bool = False

    def proc_state(self) -> ProcState:
        if self.proc is None:
            return ProcState.EXITED if self.start_failed else ProcState.ABSENT
        return ProcState.RUNNING if self.proc.running() else ProcState.EXITED

    def view(self, state: ProcState) -> NodeView:
        """The node in a snapshot, with the process state observed this cycle."""
        return NodeView(
            name=self.node.name,
            role=self.node.role,
            standby=self.node.standby,
            proc=state,
            pid=self.proc.pid if self.proc else None,
            exit_code=self.proc.exit_code() if self.proc and state is ProcState.EXITED else None,
            health=self.health,
            healthy_since=self.healthy_since,
            restarts=self.restarts,
            next_restart_at=self.next_restart_at,
            busy=self.busy,
        )

    def idle_reason(self, desired: Desired) -> str:
        """Why a node that runs no process is not serving."""
        if self.node.name in desired.held:
            return "stopped by chaos"
        if self.proc is not None or self.start_failed:
            return "exited"
        return "standby slot" if self.node.standby else "not running"

    def status(self, desired: Desired) -> NodeStatus:
        view = self.view(self.proc_state())
        return {
            "role": self.node.role.value,
            "region": self.node.region,
            "address": self.node.address,
            "pid": self.proc.pid if self.proc else None,
            "running": view.proc is ProcState.RUNNING,
            "wanted": desired.wants(view),
            "stopped_by_chaos": self.node.name in desired.held,
            "healthy": self.health.healthy,
            "detail": self.health.detail,
            "db_role": self.health.db_role.value if self.health.db_role else None,
            "restarts": self.restarts,
            "busy": self.busy,
        }
