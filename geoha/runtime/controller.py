"""The controller: one asyncio process that owns a local deployment.

It starts nodes in dependency order (etcd, then databases), restarts nodes
that crash (not those stopped on purpose by chaos), keeps every node's health
current and answers the CLI on the control endpoint. It is started detached by
`geoha up` and stopped by `geoha down`.

Run as: python -m geoha.runtime.controller RUN_DIR
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx

from geoha.data import cluster
from geoha.data.migrate import bootstrap_application
from geoha.data.secrets import Secrets, load_or_create_secrets, pgpass_file
from geoha.plan import Node, NodeRole, Plan, Tools, expand
from geoha.render.files import write_files
from geoha.runtime import control
from geoha.runtime.kinds import Health, NodeKind, kinds
from geoha.runtime.process import (
    NodeProcess,
    adopt_process,
    clear_record,
    start_process,
)
from geoha.spec import Spec

SPEC_FILE = "spec.json"
PID_FILE = "controller.pid"
LAST_PRIMARY_FILE = "last-primary"
START_ORDER = (
    NodeRole.ETCD,
    NodeRole.DATABASE,
    NodeRole.API,
    NodeRole.BACKEND_LB,
    NodeRole.WEB,
    NodeRole.FRONTEND_LB,
)
APP_TIERS = START_ORDER[2:]
APP_START_TIMEOUT_S = 60.0
HEALTH_INTERVAL_S = 1.0
ETCD_START_TIMEOUT_S = 60.0
DATABASE_START_TIMEOUT_S = 180.0
MAX_RESTART_BACKOFF_S = 30.0
MAX_EVENTS = 1000


class Phase(StrEnum):
    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"
    STOPPING = "stopping"


@dataclass
class NodeState:
    node: Node
    kind: NodeKind
    proc: NodeProcess | None = None
    wanted: bool = False
    """The controller keeps this node running (false before its turn and after chaos stops it)."""
    stopped_by_chaos: bool = False
    health: Health = field(default_factory=lambda: Health(False, "not started"))
    restarts: int = 0
    next_restart_at: float = 0.0

    def running(self) -> bool:
        return self.proc is not None and self.proc.running()


class Controller:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.secrets: Secrets | None = None
        by_role = kinds()
        self.nodes = {n.name: NodeState(n, by_role[n.role]) for n in plan.nodes}
        self.phase = Phase.STARTING
        self.error: str | None = None
        self.failed_node: str | None = None
        self.events: list[dict[str, Any]] = []
        self.event_seq = 0
        self.started_at = time.time()
        self.ready_after_s: float | None = None
        self._stop = asyncio.Event()
        self._bring_up: asyncio.Task[None] | None = None

    # -- events -----------------------------------------------------------
    def say(self, message: str, node: str | None = None) -> None:
        """Record one sentence of what the controller did and why."""
        now = time.time()
        self.event_seq += 1
        event = {"seq": self.event_seq, "t": now, "node": node, "message": message}
        self.events.append(event)
        del self.events[:-MAX_EVENTS]  # a long-running controller keeps the recent ones
        stamp = time.strftime("%H:%M:%S", time.localtime(now))
        print(f"{stamp} {message}", flush=True)

    # -- node lifecycle ---------------------------------------------------
    def start(self, state: NodeState) -> None:
        node = state.node
        state.kind.prepare(node)
        env = {**os.environ, **state.kind.env(self.plan, node)}
        state.proc = start_process(node.command, node.dir, node.log_path, state.kind.run_as(), env)
        state.wanted = True
        state.health = Health(False, "starting")
        self.say(f"{node.name}: started (pid {state.proc.pid}) on {node.address}", node.name)

    def kill(self, state: NodeState) -> int:
        if state.proc is None:
            return 0
        count = state.kind.kill(state.node, state.proc.record)
        state.proc.exit_code()  # reap
        state.proc = None
        clear_record(state.node.dir)
        state.health = Health(False, "killed")
        return count

    async def stop(self, state: NodeState) -> None:
        if state.proc is None:
            return
        record = state.proc.record
        await asyncio.to_thread(state.kind.stop, state.node, record)
        state.proc.exit_code()
        state.proc = None
        clear_record(state.node.dir)
        state.health = Health(False, "stopped")
        self.say(f"{state.node.name}: stopped", state.node.name)

    def adopt(self) -> None:
        for state in self.nodes.values():
            proc = adopt_process(state.node.dir)
            if proc is not None:
                state.proc = proc
                state.wanted = True
                self.say(f"{state.node.name}: adopted running process {proc.pid}", state.node.name)

    # -- bring-up ---------------------------------------------------------
    def render_all(self) -> None:
        self.secrets = load_or_create_secrets(self.plan.spec, self.plan.secrets_path)
        hosts = [n.address for n in self.plan.database_nodes]
        spec = self.plan.spec
        write_files(
            [
                pgpass_file(
                    self.plan.pgpass_path,
                    hosts,
                    spec.database.port,
                    spec.database.name,
                    self.secrets.app,
                )
            ]
        )
        for state in self.nodes.values():
            state.kind.prepare(state.node)
            user = state.kind.run_as()
            owner = (user.uid, user.gid) if user is not None and os.geteuid() == 0 else None
            files = state.kind.render(self.plan, state.node, self.secrets)
            write_files(files, owner=owner, check=functools.partial(state.kind.check, state.node))

    async def wait_healthy(self, states: list[NodeState], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(s.health.healthy for s in states):
                return
            for s in states:
                if s.wanted and s.proc is not None and not s.running() and s.restarts >= 3:
                    self.failed_node = s.node.name
                    raise RuntimeError(f"{s.node.name} keeps exiting while {what}")
            await asyncio.sleep(0.2)
        sick = [s for s in states if not s.health.healthy]
        self.failed_node = sick[0].node.name
        details = "; ".join(f"{s.node.name}: {s.health.detail}" for s in sick)
        raise RuntimeError(f"not healthy after {timeout_s:.0f} s while {what}: {details}")

    def _first_database(self) -> NodeState:
        """The node to start first: the last primary, else the preferred one (bootstrap)."""
        initialized = any(
            (s.node.data_dir / "PG_VERSION").exists() for s in self.of_role(NodeRole.DATABASE)
        )
        name = f"{self.plan.spec.primary_region}-db"
        last = self.plan.run_dir / LAST_PRIMARY_FILE
        if initialized and last.exists() and last.read_text().strip() in self.nodes:
            name = last.read_text().strip()
        why = "the last primary" if initialized else "bootstrapping the cluster, preferred primary"
        self.say(f"{name}: starts first ({why})", name)
        return self.nodes[name]

    def remember_primary(self, name: str) -> None:
        (self.plan.run_dir / LAST_PRIMARY_FILE).write_text(name + "\n")

    def of_role(self, role: NodeRole) -> list[NodeState]:
        return [s for s in self.nodes.values() if s.node.role is role]

    def start_missing(self, states: list[NodeState]) -> None:
        for state in states:
            state.stopped_by_chaos = False
            if not state.running():
                self.start(state)
            state.wanted = True

    async def bring_up(self) -> None:
        self.phase = Phase.STARTING
        self.error = self.failed_node = None
        began = time.monotonic()
        try:
            await asyncio.to_thread(self.render_all)
            etcd = self.of_role(NodeRole.ETCD)
            self.start_missing(etcd)
            await self.wait_healthy(etcd, ETCD_START_TIMEOUT_S, "starting etcd")
            self.say(f"etcd: {len(etcd)}/{len(etcd)} members healthy")
            databases = self.of_role(NodeRole.DATABASE)
            if not any(s.running() for s in databases):
                first = self._first_database()
                self.start_missing([first])
                await self.wait_healthy([first], DATABASE_START_TIMEOUT_S, "starting the primary")
            self.start_missing(databases)
            await self.wait_healthy(databases, DATABASE_START_TIMEOUT_S, "starting databases")
            await self.migrate()
            for role in APP_TIERS:
                tier = [s for s in self.of_role(role) if not s.node.standby]
                self.start_missing(tier)
                await self.wait_healthy(tier, APP_START_TIMEOUT_S, f"starting {role.value}")
            self.ready_after_s = round(time.monotonic() - began, 1)
            self.phase = Phase.READY
            self.say(f"ready: every node healthy after {self.ready_after_s} s")
        except Exception as exc:
            self.phase = Phase.FAILED
            self.error = str(exc)
            self.say(f"failed: {exc}", self.failed_node)

    async def migrate(self) -> None:
        primary = await asyncio.to_thread(cluster.primary_node, self.plan)
        if primary is None or self.secrets is None:
            raise RuntimeError("no primary to apply the schema to")
        applied = await asyncio.to_thread(bootstrap_application, self.plan, primary, self.secrets)
        if applied:
            self.say(
                f"schema: applied migrations {', '.join(applied)} on {primary.name}", primary.name
            )
        else:
            self.say(f"schema: up to date on {primary.name}", primary.name)

    # -- loops ------------------------------------------------------------
    async def health_loop(self) -> None:
        async with httpx.AsyncClient(timeout=1.0) as client:
            while not self._stop.is_set():
                for state in self.nodes.values():
                    if state.proc is None:
                        state.health = Health(False, self.idle_reason(state))
                states = [s for s in self.nodes.values() if s.proc is not None]
                results = await asyncio.gather(
                    *(s.kind.probe(s.node, client) for s in states), return_exceptions=True
                )
                for state, outcome in zip(states, results, strict=True):
                    result = (
                        Health(False, f"probe failed: {outcome}")
                        if isinstance(outcome, BaseException)
                        else outcome
                    )
                    if result.healthy != state.health.healthy and state.wanted:
                        change = "healthy" if result.healthy else "unhealthy"
                        self.say(f"{state.node.name}: {change} ({result.detail})", state.node.name)
                    state.health = result
                await asyncio.sleep(HEALTH_INTERVAL_S)

    @staticmethod
    def idle_reason(state: NodeState) -> str:
        if state.stopped_by_chaos:
            return "stopped by chaos"
        return "standby slot" if state.node.standby else "not running"

    async def supervise_loop(self) -> None:
        """Restart crashed nodes with backoff; chaos-stopped nodes stay down."""
        while not self._stop.is_set():
            now = time.monotonic()
            for state in self.nodes.values():
                if not state.wanted or state.proc is None or state.running():
                    continue
                code = state.proc.exit_code()
                if now < state.next_restart_at:
                    continue
                state.restarts += 1
                backoff = min(2.0**state.restarts, MAX_RESTART_BACKOFF_S)
                state.next_restart_at = now + backoff
                self.say(
                    f"{state.node.name}: exited (code {code}); "
                    f"restarting, restart #{state.restarts}",
                    state.node.name,
                )
                # Leftovers of the node (e.g. an orphaned postmaster) go first.
                self.kill(state)
                self.start(state)
            await asyncio.sleep(0.5)

    # -- control endpoint ---------------------------------------------------
    async def handle(self, op: str, args: dict[str, Any]) -> Any:
        if op == "ping":
            return {"pid": os.getpid()}
        if op == "status":
            return self.snapshot()
        if op == "up":
            if self._bring_up is None or self._bring_up.done():
                self._bring_up = asyncio.create_task(self.bring_up())
            return self.snapshot()
        if op == "kill_node":
            state = self._state(args.get("node"))
            state.wanted = False
            state.stopped_by_chaos = True
            count = await asyncio.to_thread(self.kill, state)
            self.say(
                f"{state.node.name}: killed by chaos "
                f"(SIGKILL to {count} processes); not restarting",
                state.node.name,
            )
            return {"killed": count}
        if op == "start_node":
            state = self._state(args.get("node"))
            if state.running():
                return {"started": False, "message": f"{state.node.name} is already running"}
            state.stopped_by_chaos = False
            self.start(state)
            return {"started": True}
        if op == "shutdown":
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self.shutdown()))
            return {"stopping": True}
        raise ValueError(f"unknown operation {op!r}")

    def _state(self, name: Any) -> NodeState:
        if not isinstance(name, str) or name not in self.nodes:
            raise ValueError(f"NODE: one of {', '.join(self.nodes)} (got {name!r})")
        return self.nodes[name]

    def snapshot(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "phase": self.phase.value,
            "error": self.error,
            "failed_node": self.failed_node,
            "ready_after_s": self.ready_after_s,
            "events": self.events[-200:],
            "nodes": {
                name: {
                    "role": s.node.role.value,
                    "region": s.node.region,
                    "address": s.node.address,
                    "pid": s.proc.pid if s.proc else None,
                    "running": s.running(),
                    "wanted": s.wanted,
                    "stopped_by_chaos": s.stopped_by_chaos,
                    "healthy": s.health.healthy,
                    "detail": s.health.detail,
                    "restarts": s.restarts,
                }
                for name, s in self.nodes.items()
            },
        }

    async def shutdown(self) -> None:
        self.phase = Phase.STOPPING
        for state in self.nodes.values():
            state.wanted = False
        if self._bring_up is not None and not self._bring_up.done():
            self._bring_up.cancel()
        for role in reversed(APP_TIERS):
            await asyncio.gather(*(self.stop(s) for s in self.of_role(role)))
        # Replicas before the primary, so the primary keeps its role for the next `up`.
        databases = self.of_role(NodeRole.DATABASE)
        primary = [s for s in databases if s.health.detail == "primary"]
        if primary:
            self.remember_primary(primary[0].node.name)
        await asyncio.gather(*(self.stop(s) for s in databases if s not in primary))
        for state in primary:
            await self.stop(state)
        await asyncio.gather(*(self.stop(s) for s in self.of_role(NodeRole.ETCD)))
        self.say("controller: every node stopped")
        self._stop.set()

    async def run(self) -> None:
        server = await control.serve(self.plan.run_dir, self.handle)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(self.shutdown()))
        self.adopt()
        loops = [
            asyncio.create_task(self.health_loop()),
            asyncio.create_task(self.supervise_loop()),
        ]
        self._bring_up = asyncio.create_task(self.bring_up())
        await self._stop.wait()
        for task in loops:
            task.cancel()
        server.close()
        with contextlib.suppress(FileNotFoundError):
            control.socket_path(self.plan.run_dir).unlink()


def load_plan(run_dir: Path) -> Plan:
    spec = Spec.model_validate_json((run_dir / SPEC_FILE).read_text(encoding="utf-8"))
    return expand(spec, run_dir, Tools.discover())


def main(argv: list[str]) -> int:
    run_dir = Path(argv[0]).resolve()
    plan = load_plan(run_dir)
    pid_path = run_dir / PID_FILE
    pid_path.write_text(json.dumps({"pid": os.getpid(), "started": time.time()}))
    try:
        asyncio.run(Controller(plan).run())
    finally:
        pid_path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
