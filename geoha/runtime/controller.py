"""The controller: one asyncio process that owns a local deployment.

It is one reconcile loop, the way Patroni's HA loop is: each cycle it
**observes** every node into one immutable snapshot (process table and health
probes, run concurrently and bounded), asks the pure `reconcile.decide` what to
do, and **acts** -- long actions (starting, stopping, killing, rendering,
migrating) run in threads and report back into the next snapshot. Control
requests from the CLI change only the *desired* state, through one table of
handlers (`HANDLERS`); they never touch a node themselves.

Run as: python -m geoha.runtime.controller RUN_DIR [--tiers data|app|all]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import signal
import ssl
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from geoha.data import cluster
from geoha.data.migrate import bootstrap_application, set_password, superuser_conn
from geoha.data.secrets import (
    generate_password,
    load_or_create_secrets,
    rotation_users,
    store_secrets,
)
from geoha.db_access import APP_USER, REPLICATION_USER, SUPERUSER, Secrets
from geoha.errors import BadInput, GeohaError
from geoha.health import Health
from geoha.ops.autoscale import Move, StepKind
from geoha.ops.fastfail import FastFailover, Watched, leader_member, new_leader, settled_leader
from geoha.ops.incidents import Incident
from geoha.ops.monitor import Monitor, Sources
from geoha.plan import NodeRole, Plan, Tools, expand
from geoha.render.files import write_files
from geoha.render.pgpass import pgpass_file
from geoha.runtime import control
from geoha.runtime.autoscaler import TIERS, Autoscaler, SlotView
from geoha.runtime.certificates import ensure_client_certificate
from geoha.runtime.events import (
    ControllerStatus,
    Event,
    EventKind,
    FieldValue,
)
from geoha.runtime.faults import (
    FAULTS_FILE,
    Faults,
    KilledRegion,
    Partitioner,
    load_faults,
    save_faults,
)
from geoha.runtime.global_dns import GlobalDns, check_url
from geoha.runtime.groups import lookup, region_group_name
from geoha.runtime.kinds import kinds
from geoha.runtime.node_state import NodeRuntime
from geoha.runtime.partition import Cut
from geoha.runtime.process import NodeProcess, adopt_process, clear_record, start_process
from geoha.runtime.reconcile import (
    SCALED_ROLES,
    STAGE_ROLE,
    TIER_STAGES,
    Action,
    ApplySchema,
    BeginBringUp,
    Decision,
    Desired,
    FinishShutdown,
    Goal,
    KillNode,
    MarkFailed,
    MarkReady,
    Phase,
    Policy,
    ProcState,
    RecordPrimary,
    RenderConfigs,
    ResetRestarts,
    RestartNode,
    Snapshot,
    Stage,
    StartNode,
    StopNode,
    Tiers,
    decide,
)
from geoha.spec import Spec
from geoha.traffic.dns import HealthChange
from geoha.traffic.tls import client_tls, verify

SPEC_FILE = "spec.json"
PID_FILE = "controller.pid"
LAST_PRIMARY_FILE = "last-primary"
CYCLE_INTERVAL_S = 1.0
"""At most this long between two cycles; a control request or a finished action wakes it sooner."""
BUSY_CYCLE_INTERVAL_S = 0.25
"""The same while starting or stopping, so each stage follows the last one's health sooner."""
MIN_CYCLE_GAP_S = 0.1
PROBE_TIMEOUT_S = 2.0
SETTLE_WAIT_S = 5.0
"""How long a database node's start waits for a newly promoted leader to settle."""
ACTION_WAIT_S = 60.0
"""How long a control request waits for the action it asked for (kill, start)."""
MAX_EVENTS = 1000
STATUS_EVENTS = 200


STEP_WORDS = {
    StepKind.JOIN: "joins its group",
    StepKind.LEAVE: "leaves its group",
    StepKind.ENABLE: "enabled in {lb}",
    StepKind.DRAIN: "draining in {lb}",
    StepKind.DISABLE: "disabled in {lb}",
}
"""What an autoscaler step does to an instance, in words."""

Handler = Callable[["Controller", dict[str, Any]], Awaitable[Any]]


class Controller:
    def __init__(
        self, plan: Plan, tiers: Tiers = Tiers.ALL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.plan = plan
        self.clock = clock
        by_role = kinds()
        self.nodes = {n.name: NodeRuntime(n, by_role[n.role]) for n in plan.nodes}
        self.autoscaler = Autoscaler(
            plan, lambda kind, node, fields: self.emit(EventKind(kind), node, **fields), clock
        )
        self.desired = Desired(tiers=tiers, instances=self.autoscaler.load())
        self.scale_by_hand: dict[tuple[str, str], int] = {}
        self.policy = Policy(preferred_primary=f"{plan.spec.primary_region}-db")
        self.secrets: Secrets | None = None
        self.phase = Phase.STARTING
        self.stage: Stage | None = None
        self.stage_since = 0.0
        self.bring_up_generation = 0
        self.bring_up_started_at = 0.0
        self.rendered_generation = 0
        self.schema_generation = 0
        self.busy: set[str] = set()
        self.error: str | None = None
        self.failed_node: str | None = None
        self.ready_after_s: float | None = None
        self.decision = ""
        self.events: list[Event] = []
        self.event_seq = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.waiters: dict[tuple[str, str], list[asyncio.Future[Any]]] = {}
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self.faults = load_faults(plan.run_dir)
        self.partitioner = Partitioner(plan)
        self.partition_error: str | None = None
        self.dns = GlobalDns(plan, self.on_dns_change)
        self.monitor = Monitor(
            plan,
            Sources(
                dns=self.dns.state,
                checker=self.dns.checker,
                dns_server=f"{self.dns.address}:{self.dns.port}",
                entry_urls={r: check_url(plan, r) for r in plan.spec.data_regions},
                node_health=lambda: {name: rt.health for name, rt in self.nodes.items()},
                phase=lambda: self.phase.value,
                secrets=lambda: self.secrets,
                on_incident=self.on_incident,
                autoscale=lambda: self.autoscaler.status(self.desired.instances or frozenset()),
            ),
        )
        self.fastfail = FastFailover(
            Watched.of(plan),
            self.fence,
            lambda kind, node, fields: self.emit(EventKind(kind), node, **fields),
            etcd_healthy=lambda: sum(self.nodes[n.name].health.healthy for n in plan.etcd_nodes),
            active=lambda: self.phase is Phase.READY,
            confirmed_dead=self.nothing_runs,
        )

    # -- events -------------------------------------------------------------------
    def emit(self, kind: EventKind, node: str | None = None, **fields: FieldValue) -> None:
        """Record one structured event; its sentence goes to the controller's log."""
        self.event_seq += 1
        event = Event(self.event_seq, time.time(), kind, node, fields)
        self.events.append(event)
        del self.events[:-MAX_EVENTS]  # a long-running controller keeps the recent ones
        print(event.line(), flush=True)

    def on_dns_change(self, change: HealthChange) -> None:
        self.emit(
            EventKind.DNS_HEALTH,
            region=change.region,
            health="healthy" if change.healthy else "unhealthy",
            checks=change.checks,
            detail=change.detail,
        )

    def on_incident(self, incident: Incident) -> None:
        if incident.open:
            self.emit(EventKind.INCIDENT_OPENED, subject=incident.subject, cause=incident.cause)
        else:
            self.emit(
                EventKind.INCIDENT_CLOSED,
                subject=incident.subject,
                duration_s=round(incident.duration_s(incident.started_at), 1),
                resolution=incident.resolution or "",
            )

    # -- observe ------------------------------------------------------------------
    async def observe(self, client: httpx.AsyncClient) -> Snapshot:
        """One snapshot of every node: process table, then all probes at once."""
        now = self.clock()
        states = {name: rt.proc_state() for name, rt in self.nodes.items()}
        running = [rt for rt in self.nodes.values() if states[rt.node.name] is ProcState.RUNNING]
        results = await asyncio.gather(*(self.probe(rt, client) for rt in running))
        probed = {rt.node.name: health for rt, health in zip(running, results, strict=True)}
        for name, rt in self.nodes.items():
            self.note_exit(rt, states[name])
            self.note_health(
                rt, probed.get(name) or Health(False, rt.idle_reason(self.desired)), now
            )
        last = self.plan.run_dir / LAST_PRIMARY_FILE
        return Snapshot(
            now=now,
            nodes=tuple(rt.view(states[rt.node.name]) for rt in self.nodes.values()),
            phase=self.phase,
            bring_up_generation=self.bring_up_generation,
            bring_up_started_at=self.bring_up_started_at,
            stage=self.stage,
            stage_since=self.stage_since,
            rendered_generation=self.rendered_generation,
            schema_generation=self.schema_generation,
            busy=frozenset(self.busy),
            error=self.error,
            initialized=any((n.data_dir / "PG_VERSION").exists() for n in self.plan.database_nodes),
            last_primary=last.read_text().strip() if last.exists() else None,
        )

    async def probe(self, rt: NodeRuntime, client: httpx.AsyncClient) -> Health:
        try:
            return await asyncio.wait_for(rt.kind.probe(rt.node, client), PROBE_TIMEOUT_S)
        except TimeoutError:
            return Health(False, f"probe timed out after {PROBE_TIMEOUT_S:.0f} s")
        except Exception as exc:  # a probe that breaks is an unhealthy node, not a dead loop
            return Health(False, f"probe failed: {exc}")

    def note_exit(self, rt: NodeRuntime, state: ProcState) -> None:
        if state is ProcState.EXITED and not rt.exit_reported and not rt.busy:
            rt.exit_reported = True
            code = rt.proc.exit_code() if rt.proc else None
            self.emit(EventKind.NODE_EXITED, rt.node.name, code=code)

    def note_health(self, rt: NodeRuntime, health: Health, now: float) -> None:
        wanted = self.desired.wants(rt.view(ProcState.ABSENT)) and not rt.busy
        if health.healthy != rt.health.healthy and wanted and rt.proc is not None:
            kind = EventKind.NODE_HEALTHY if health.healthy else EventKind.NODE_UNHEALTHY
            self.emit(kind, rt.node.name, detail=health.detail)
        if health.healthy and rt.healthy_since is None:
            rt.healthy_since = now
        elif not health.healthy:
            rt.healthy_since = None
        rt.health = health

    # -- decide and act -------------------------------------------------------------
    async def cycle(self, client: httpx.AsyncClient) -> None:
        snap = await self.observe(client)
        decision = decide(snap, self.desired, self.policy)
        self.follow(decision, snap)
        for action in decision.actions:
            self.act(action)
        if self.phase is Phase.READY and self.desired.goal is Goal.RUN:
            cpu = time.process_time()
            try:
                await self.autoscale(snap)
            except Exception as exc:  # a broken tick is reported, not a dead controller
                self.emit(EventKind.ACTION_FAILED, action="autoscaling", error=str(exc))
            # the whole process's CPU while the tick ran: an upper bound of its own
            self.autoscaler.cpu_s += time.process_time() - cpu

    # -- the autoscaler -----------------------------------------------------------------
    async def autoscale(self, snap: Snapshot) -> None:
        """One autoscaler tick (geoha.runtime.autoscaler) on this cycle's snapshot: observe
        every group, decide, carry out the load balancer steps, and change the desired
        instances. Whether an action is in flight is read live: this cycle's actions may
        have begun one since the snapshot."""
        scaler, desired = self.autoscaler, self.desired
        members = desired.instances or frozenset()
        tiers = {role for stage, role in STAGE_ROLE.items() if stage in TIER_STAGES[desired.tiers]}
        skip = {  # a tier not brought up, or a load balancer held or down (a lost region)
            key
            for key, group in scaler.groups.items()
            if group.slots[0].role not in tiers
            or group.lb.name in desired.held
            or not self.nodes[group.lb.name].health.healthy
        }
        seen = {n.name: n for n in snap.nodes if n.role in SCALED_ROLES}
        pgids = {name: n.pid if n.proc is ProcState.RUNNING else None for name, n in seen.items()}
        problems = await asyncio.to_thread(scaler.observe, skip, pgids)
        now = self.clock()
        join: set[str] = set()
        leave: set[str] = set()
        for key, group in scaler.groups.items():
            if key in skip or problems.get(key) is not None:
                continue
            views = {
                n.name: SlotView(
                    member=n.name in members,
                    running=seen[n.name].proc is ProcState.RUNNING,
                    busy=self.nodes[n.name].busy,
                    held=n.name in desired.held,
                    healthy=seen[n.name].health.healthy,
                )
                for n in group.slots
            }
            sentence, count, move, steps = scaler.plan_group(
                group, views, now, self.scale_by_hand.pop(key, None)
            )
            if move is not Move.HOLD:
                scaler.record(group, sentence, now, count)
            refused: set[str] = set()  # slots whose LB step failed: they stay this tick
            for step in steps:
                if step.kind is StepKind.JOIN:
                    join.add(step.slot)
                elif step.kind is StepKind.LEAVE:
                    if step.slot in refused:
                        continue  # still enabled in the LB: stopping it would cut requests
                    leave.add(step.slot)
                    group.draining.pop(step.slot, None)
                else:
                    error = await asyncio.to_thread(scaler.lb_step, group, step)
                    if error is not None:
                        refused.add(step.slot)
                        self.emit(
                            EventKind.ACTION_FAILED, step.slot, action=step.kind.value, error=error
                        )
                        continue
                    if step.kind is StepKind.DRAIN:
                        group.draining[step.slot] = now
                what = STEP_WORDS[step.kind].format(lb=group.lb.name)
                self.emit(EventKind.INSTANCE_STEP, step.slot, what=what, why=step.why)
            group.serving = sum(
                1
                for n in group.slots
                if n.name in (members | join) - leave
                and self.nodes[n.name].health.healthy
                and group.lb_states.get(n.name) == "ready"
            )
        if join or leave:
            instances = (members | join) - leave
            self.want(instances=instances, by_hand=self.desired.by_hand - leave)
            await asyncio.to_thread(scaler.save, instances)

    def follow(self, decision: Decision, snap: Snapshot) -> None:
        """Keep the decision's stage and phase, and say what is being done when it changes."""
        if decision.stage is not self.stage:
            order = list(Stage)
            forward = decision.stage is None or (
                self.stage is not None and order.index(decision.stage) > order.index(self.stage)
            )
            if self.stage is not None and forward and self.phase is Phase.STARTING:
                self.emit(EventKind.STAGE_DONE, stage=self.stage.value)
            self.stage, self.stage_since = decision.stage, snap.now
        if decision.phase is not None:
            self.phase = decision.phase
        if decision.sentence != self.decision:
            self.decision = decision.sentence
            self.emit(EventKind.DECISION, sentence=decision.sentence)

    def act(self, action: Action) -> None:
        ACTS[type(action)](self, action)

    def spawn(self, key: str, work: Callable[[], Awaitable[None]]) -> None:
        """Run a long action as a task; `key` (a node or a step) is busy until it ends."""
        rt = self.nodes.get(key)
        if rt is not None:
            rt.busy = True
        else:
            self.busy.add(key)

        async def run() -> None:
            try:
                await work()
            finally:
                if rt is not None:
                    rt.busy = False
                else:
                    self.busy.discard(key)
                self._wake.set()

        task = asyncio.create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def resolve(self, verb: str, node: str, result: Any = None, error: str | None = None) -> None:
        """Answer the control requests waiting for this action on this node."""
        for future in self.waiters.pop((verb, node), []):
            if future.done():
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(RuntimeError(error))

    # -- actions ---------------------------------------------------------------------
    def begin_bring_up(self, action: BeginBringUp) -> None:
        self.phase = Phase.STARTING
        self.bring_up_generation = action.generation
        self.bring_up_started_at = self.clock()
        self.error = self.failed_node = None
        self.ready_after_s = None
        self.emit(
            EventKind.BRING_UP_BEGUN, generation=action.generation, tiers=self.desired.tiers.value
        )

    @property
    def tls(self) -> ssl.SSLContext | bool:
        """httpx's `verify` for the controller's clients of etcd and Patroni."""
        return verify(client_tls(self.plan))

    def render_configs(self, action: RenderConfigs) -> None:
        async def work() -> None:
            try:
                count = await asyncio.to_thread(self.render_all)
            except Exception as exc:
                self.error = f"rendering configs: {exc}"
                self.emit(EventKind.ACTION_FAILED, action="rendering configs", error=str(exc))
                return
            self.rendered_generation = action.generation
            self.emit(EventKind.CONFIGS_RENDERED, nodes=count)

        self.spawn("render", work)

    def render_all(self) -> int:
        self.secrets = load_or_create_secrets(self.plan.spec, self.plan.secrets_path)
        spec = self.plan.spec
        hosts = [n.address for n in self.plan.database_nodes]
        pgpass = pgpass_file(
            self.plan.pgpass_path, hosts, spec.database.port, spec.database.name, self.secrets.app
        )
        write_files([pgpass])
        ensure_client_certificate(self.plan)
        for rt in self.nodes.values():
            rt.kind.prepare(rt.node)
            files = rt.kind.render(self.plan, rt.node, self.secrets)
            write_files(files, rt.kind.owner(), check=functools.partial(rt.kind.check, rt.node))
        return len(self.nodes)

    def launch(self, rt: NodeRuntime) -> NodeProcess:
        """Start the node's process (blocking: run in a thread)."""
        node = rt.node
        rt.kind.prepare(node)
        env = {**os.environ, **rt.kind.env(self.plan, node)}
        group = lookup(region_group_name(self.plan.spec.name, node.region))
        return start_process(
            node.command, node.dir, node.log_path, rt.kind.run_as(), env=env, group=group
        )

    def start_node(self, action: StartNode) -> None:
        rt = self.nodes[action.node]
        work = functools.partial(
            self.run_node,
            rt,
            EventKind.NODE_STARTED,
            address=rt.node.address,
            why=action.why,
        )
        self.spawn(rt.node.name, work)

    def restart_node(self, action: RestartNode) -> None:
        rt = self.nodes[action.node]
        rt.restarts = action.attempt
        rt.next_restart_at = self.clock() + action.backoff_s
        work = functools.partial(
            self.run_node,
            rt,
            EventKind.NODE_RESTARTED,
            attempt=action.attempt,
            backoff_s=action.backoff_s,
        )
        self.spawn(rt.node.name, work)

    async def run_node(self, rt: NodeRuntime, kind: EventKind, **fields: FieldValue) -> None:
        """Start the node's process (its leftovers killed first); answer who waits for it."""
        name = rt.node.name
        try:
            if rt.proc is not None:  # leftovers of the node (an orphaned postmaster) go first
                await asyncio.to_thread(rt.kind.kill, rt.node, rt.proc.record)
                clear_record(rt.node.dir)
            if rt.node.role is NodeRole.DATABASE:
                await self.await_settled_leader(name)
            proc = await asyncio.to_thread(self.launch, rt)
        except Exception as exc:
            rt.proc, rt.start_failed, rt.exit_reported = None, True, True
            self.emit(EventKind.ACTION_FAILED, name, action="start", error=str(exc))
            self.resolve("start", name, error=f"{name}: {exc}")
            return
        rt.proc, rt.start_failed, rt.exit_reported = proc, False, False
        rt.health, rt.healthy_since = Health(False, "starting"), None
        self.emit(kind, name, pid=proc.pid, **fields)
        self.resolve("start", name, {"started": True, "pid": proc.pid})

    async def await_settled_leader(self, name: str) -> None:
        """Before a database node starts: while a newly promoted leader has not yet published
        that it runs as primary with its checkpoint done, wait (at most SETTLE_WAIT_S), so
        Patroni rewinds a former primary at once instead of after a start as a secondary."""
        deadline = self.clock() + SETTLE_WAIT_S
        async with httpx.AsyncClient(timeout=1.0, verify=self.tls) as client:
            while self.clock() < deadline:
                if settled_leader(await leader_member(client, self.fastfail.watched), name):
                    return
                await asyncio.sleep(0.1)

    def stop_node(self, action: StopNode) -> None:
        rt = self.nodes[action.node]

        async def work() -> None:
            if rt.proc is not None:
                await asyncio.to_thread(rt.kind.stop, rt.node, rt.proc.record)
                rt.proc.exit_code()  # reap
            self.gone(rt, "stopped")
            self.emit(EventKind.NODE_STOPPED, rt.node.name, why=action.why)

        self.spawn(rt.node.name, work)

    def kill_node(self, action: KillNode) -> None:
        rt = self.nodes[action.node]

        async def work() -> None:
            count = 0
            if rt.proc is not None:
                count = await asyncio.to_thread(rt.kind.kill, rt.node, rt.proc.record)
                rt.proc.exit_code()  # reap
            self.gone(rt, "killed")  # observe names the reason (chaos) from the desired state
            self.emit(EventKind.NODE_KILLED, rt.node.name, why=action.why, processes=count)
            self.resolve("kill", rt.node.name, {"killed": count})

        self.spawn(rt.node.name, work)

    def gone(self, rt: NodeRuntime, detail: str) -> None:
        rt.proc, rt.start_failed, rt.exit_reported = None, False, False
        clear_record(rt.node.dir)
        rt.health, rt.healthy_since = Health(False, detail), None

    def apply_schema(self, action: ApplySchema) -> None:
        primary = self.plan.node(action.primary)

        async def work() -> None:
            try:
                if self.secrets is None:
                    raise RuntimeError("configs are not rendered yet")
                applied = await asyncio.to_thread(
                    bootstrap_application, self.plan, primary, self.secrets
                )
            except Exception as exc:
                self.error = f"applying the schema on {primary.name}: {exc}"
                self.emit(EventKind.ACTION_FAILED, primary.name, action="schema", error=str(exc))
                return
            self.schema_generation = action.generation
            what = f"applied migrations {', '.join(applied)}" if applied else "up to date"
            self.emit(EventKind.SCHEMA_APPLIED, primary.name, migrations=what)

        self.spawn("schema", work)

    def reset_restarts(self, action: ResetRestarts) -> None:
        rt = self.nodes[action.node]
        rt.restarts, rt.next_restart_at = 0, 0.0
        self.emit(EventKind.RESTARTS_RESET, rt.node.name, healthy_for_s=action.healthy_for_s)

    def record_primary(self, action: RecordPrimary) -> None:
        (self.plan.run_dir / LAST_PRIMARY_FILE).write_text(action.node + "\n")
        self.emit(EventKind.PRIMARY_RECORDED, action.node)

    def mark_ready(self, action: MarkReady) -> None:
        self.phase, self.ready_after_s = Phase.READY, action.after_s
        self.emit(EventKind.READY, after_s=action.after_s)

    def mark_failed(self, action: MarkFailed) -> None:
        self.phase, self.error, self.failed_node = Phase.FAILED, action.reason, action.node
        self.emit(EventKind.FAILED, action.node, reason=action.reason)

    def finish_shutdown(self, action: FinishShutdown) -> None:
        if not self._stop.is_set():
            self.emit(EventKind.ALL_STOPPED)
            self._stop.set()

    # -- control: requests change the desired state ---------------------------------------
    async def handle(self, op: str, args: dict[str, Any]) -> Any:
        handler = HANDLERS.get(op)
        if handler is None:
            raise BadInput(f"operation: one of {', '.join(HANDLERS)} (got {op!r})")
        return await handler(self, args)

    def want(self, **changes: Any) -> None:
        self.desired = replace(self.desired, **changes)
        self._wake.set()

    def node_arg(self, args: dict[str, Any]) -> NodeRuntime:
        name = args.get("node")
        if not isinstance(name, str) or name not in self.nodes:
            raise BadInput(f"NODE: one of {', '.join(self.nodes)} (got {name!r})")
        return self.nodes[name]

    def expect(self, verb: str, node: str) -> asyncio.Future[Any]:
        """A future the action's end resolves (registered before the action is asked for)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiters.setdefault((verb, node), []).append(future)
        return future

    async def wait_for_action(self, future: asyncio.Future[Any], node: str) -> Any:
        try:
            return await asyncio.wait_for(future, ACTION_WAIT_S)
        except TimeoutError:
            raise RuntimeError(f"{node}: not done after {ACTION_WAIT_S:.0f} s") from None

    async def op_ping(self, args: dict[str, Any]) -> Any:
        return {"pid": os.getpid()}

    async def op_status(self, args: dict[str, Any]) -> Any:
        return self.status()

    async def op_monitor(self, args: dict[str, Any]) -> Any:
        return await self.monitor.status()

    async def op_up(self, args: dict[str, Any]) -> Any:
        tiers = args.get("tiers", self.desired.tiers.value)
        if tiers not in [t.value for t in Tiers]:
            raise BadInput(f"--tiers: one of {', '.join(t.value for t in Tiers)} (got {tiers!r})")
        if self.desired.goal is Goal.STOP:
            raise BadInput("up: the deployment is shutting down; run `geoha up` once it is down")
        # every node comes back up; partitions stay until `chaos heal` or `down`
        self.record_faults(replace(self.faults, killed_regions=(), killed_nodes={}))
        self.want(
            tiers=Tiers(tiers),
            generation=self.desired.generation + 1,
            held=frozenset(),
        )
        return self.status()

    async def op_kill_node(self, args: dict[str, Any]) -> Any:
        rt = self.node_arg(args)
        name = rt.node.name
        self.record_faults(
            replace(self.faults, killed_nodes={**self.faults.killed_nodes, name: time.time()})
        )
        return {"killed": await self.kill_held([name])}

    async def kill_held(self, names: list[str]) -> int:
        """Hold the nodes down and kill them all at once; how many processes got SIGKILL."""
        waits = []
        for name in names:
            rt = self.nodes[name]
            if rt.proc is None and not rt.busy:
                self.emit(EventKind.NODE_KILLED, name, why=KillNode.why, processes=0)
            else:
                waits.append(self.wait_for_action(self.expect("kill", name), name))
        held = frozenset(names)
        self.want(held=self.desired.held | held, by_hand=self.desired.by_hand - held)
        results = await asyncio.gather(*waits)
        return sum(int(r["killed"]) for r in results)

    def nothing_runs(self, name: str) -> bool:
        """The process table's word for the fast failover: no process of the node runs,
        neither its process group nor one that left it (a database's postmaster), and no
        action is starting it. False whenever that is not certain."""
        rt = self.nodes.get(name)
        if rt is None or rt.busy or rt.proc_state() is ProcState.RUNNING:
            return False
        try:
            return not rt.kind.extra_pids(rt.node)
        except Exception:  # an unreadable process table proves nothing
            return False

    async def fence(self, name: str, hold_s: float) -> str | None:
        """The fast failover's fence: kill whatever is left of the node and hold it down
        until the DCS names another leader, or `hold_s` passes; then the loop starts it
        again and Patroni rejoins it as a replica."""
        if name not in self.nodes:
            return f"no node {name} in the plan"
        if name in self.desired.held:
            return None  # held down already (a chaos kill): nothing of it runs
        await self.kill_held([name])
        self.spawn(f"fence:{name}", lambda: self.release_fence(name, hold_s))
        return None

    async def release_fence(self, name: str, hold_s: float) -> None:
        async with httpx.AsyncClient(timeout=1.0, verify=self.tls) as client:
            why = await new_leader(client, self.fastfail.watched, name, hold_s)
        if name in self.faults.killed_nodes or any(
            name in k.nodes for k in self.faults.killed_regions
        ):
            return  # a chaos fault holds it too: `heal` or `start-node` releases it
        self.want(held=self.desired.held - {name})
        self.emit(EventKind.FENCE_RELEASED, name, why=why)

    def region_arg(self, args: dict[str, Any], key: str = "region") -> str:
        region = args.get(key)
        if not isinstance(region, str) or region not in self.plan.spec.regions:
            regions = ", ".join(self.plan.spec.regions)
            raise BadInput(f"REGION: one of {regions} (got {region!r})")
        return region

    async def op_kill_region(self, args: dict[str, Any]) -> Any:
        region = self.region_arg(args)
        names = [n.name for n in self.plan.nodes if n.region == region]  # standby slots too
        killed = KilledRegion(region, tuple(names), time.time())
        others = tuple(k for k in self.faults.killed_regions if k.region != region)
        self.record_faults(replace(self.faults, killed_regions=(*others, killed)))
        self.emit(EventKind.FAULT_INJECTED, fault="kill-region", target=region, detail="SIGKILL")
        return {"region": region, "nodes": names, "killed": await self.kill_held(names)}

    async def op_partition(self, args: dict[str, Any]) -> Any:
        region = self.region_arg(args)
        others_arg = args.get("others") or [r for r in self.plan.spec.regions if r != region]
        if not isinstance(others_arg, list):
            raise BadInput(f"--from: a list of regions (got {others_arg!r})")
        others = tuple(self.region_arg({"region": r}) for r in others_arg)
        if region in others:
            raise BadInput(f"--from: regions other than {region} (got {', '.join(others)})")
        if self.partition_error is not None:
            raise GeohaError(f"cannot partition: {self.partition_error}")
        await asyncio.to_thread(self.partitioner.cut, Cut(region, others))
        self.record_faults(self.faults.with_partition(region, others))
        detail = "from " + ", ".join(others)
        self.emit(EventKind.FAULT_INJECTED, fault="partition", target=region, detail=detail)
        return {"region": region, "others": list(others)}

    async def op_heal(self, args: dict[str, Any]) -> Any:
        region = None if args.get("region") is None else self.region_arg(args)
        region_of = {n.name: n.region for n in self.plan.nodes}
        faults, mend, start = self.faults.healed(region, region_of)
        for partition in mend:
            await asyncio.to_thread(self.partitioner.mend, partition.cut)
        self.record_faults(faults)
        released = frozenset(start)
        by_tiers = replace(
            self.desired, held=self.desired.held - released, by_hand=self.desired.by_hand - released
        )
        starting = [  # a standby slot or a tier not brought up stays down
            n for n in start if by_tiers.wants(self.nodes[n].view(ProcState.ABSENT))
        ]
        waits = [self.wait_for_action(self.expect("start", n), n) for n in starting]
        # a ready controller starts only what is asked for by hand (as `start-node` does)
        self.want(held=by_tiers.held, by_hand=self.desired.by_hand | frozenset(starting))
        await asyncio.gather(*waits)
        what = f"{region or 'every region'}: {len(mend)} partitions, {len(starting)} nodes started"
        self.emit(EventKind.FAULT_HEALED, what=what)
        return {"partitions": [p.region for p in mend], "started": starting}

    def record_faults(self, faults: Faults) -> None:
        self.faults = faults
        save_faults(self.plan.run_dir, faults)

    async def op_start_node(self, args: dict[str, Any]) -> Any:
        rt = self.node_arg(args)
        name = rt.node.name
        if rt.proc is not None and rt.proc.running():
            return {"started": False, "message": f"{name} is already running"}
        killed = {n: t for n, t in self.faults.killed_nodes.items() if n != name}
        self.record_faults(replace(self.faults, killed_nodes=killed))
        started = self.expect("start", name)
        held = self.desired.held - {name}
        if rt.node.role in SCALED_ROLES and self.desired.instances is not None:
            # an instance joins its group: the autoscaler enables it once it is healthy
            instances = self.desired.instances | {name}
            self.want(held=held, instances=instances)
            await asyncio.to_thread(self.autoscaler.save, instances)
        else:
            self.want(held=held, by_hand=self.desired.by_hand | {name})
        return await self.wait_for_action(started, name)

    async def op_scale(self, args: dict[str, Any]) -> Any:
        """`geoha scale REGION TIER N`: the group's size set by hand, within min and max;
        the next autoscaler tick carries it out."""
        regions = list(self.plan.spec.data_regions)
        region = args.get("region")
        if region not in regions:
            raise BadInput(f"REGION: one of the data regions {', '.join(regions)} (got {region!r})")
        tier = args.get("tier")
        if tier not in TIERS:
            raise BadInput(f"TIER: one of {', '.join(TIERS)} (got {tier!r})")
        group = self.autoscaler.groups[(region, tier)]
        count = args.get("count")
        low, high = group.scale.min, group.scale.max
        if isinstance(count, bool) or not isinstance(count, int) or not low <= count <= high:
            raise BadInput(
                f"N: {tier}/{region} runs from {low} (min) to {high} (max) instances "
                f"(got {count!r}); change regions.{region}.{tier}.autoscale to go further"
            )
        if self.phase is not Phase.READY:
            raise GeohaError(f"scale: the deployment is {self.phase.value}, not ready")
        self.scale_by_hand[(region, tier)] = count
        self._wake.set()
        return {"region": region, "tier": tier, "count": count, "was": group.desired}

    async def op_rotate_secrets(self, args: dict[str, Any]) -> Any:
        """`geoha secrets rotate [--user NAME]`: new passwords on the running deployment.

        Each database user's new password is set on the primary (as its SCRAM verifier),
        then the secrets file, the pgpass file the API instances read at each new
        connection, and every node's config are rewritten, and every Patroni reloads its
        config (SIGHUP): its connections, the replicas' primary_conninfo and its REST
        API's credentials move to the new values. Open connections stay as they are."""
        users = rotation_users(args.get("users"), self.plan.spec)
        if self.phase is not Phase.READY or self.secrets is None:
            raise GeohaError(f"secrets rotate: the deployment is {self.phase.value}, not ready")
        old = self.secrets
        new = replace(old, **{user: generate_password() for user in users})
        # The new values are on disk (0600) before any role has them, and replace the
        # secrets file only once every role has them: a failure on the way loses nothing.
        pending = self.plan.secrets_path.with_name("secrets.json.rotating")
        await asyncio.to_thread(store_secrets, pending, new)
        try:
            await asyncio.to_thread(self.set_database_passwords, old, new, users)
        except BaseException:
            pending.unlink(missing_ok=True)
            raise
        os.replace(pending, self.plan.secrets_path)
        await asyncio.to_thread(self.render_all)
        reloaded = []
        for rt in self.nodes.values():
            if rt.node.role is NodeRole.DATABASE and rt.proc is not None and rt.proc.record.alive():
                os.kill(rt.proc.pid, signal.SIGHUP)  # Patroni reloads its config
                reloaded.append(rt.node.name)
        self.emit(EventKind.SECRETS_ROTATED, users=", ".join(users))
        return {"rotated": users, "reloaded": reloaded}

    def set_database_passwords(self, old: Secrets, new: Secrets, users: list[str]) -> None:
        """ALTER ROLE on the primary for each rotated database user (blocking)."""
        roles = {"app": APP_USER, "replication": REPLICATION_USER, "superuser": SUPERUSER}
        primary = cluster.primary_node(self.plan)
        if primary is None:
            raise GeohaError("secrets rotate: no primary runs, so no password can change")
        with superuser_conn(primary, old) as conn, conn.transaction():  # all or none
            for user in users:
                if user in roles:
                    set_password(conn, roles[user], getattr(new, user))

    async def op_shutdown(self, args: dict[str, Any]) -> Any:
        fast = args.get("fast", False)
        if not isinstance(fast, bool):
            raise BadInput(f"fast: true or false (got {fast!r})")
        self.request_shutdown(fast)
        return {"stopping": True}

    def request_shutdown(self, fast: bool = False) -> None:
        self.want(goal=Goal.STOP, stop_fast=fast or self.desired.stop_fast)

    def remove_faults(self) -> None:
        """The deployment stops: no partition outlives it (nor its record)."""
        try:
            self.partitioner.remove()
        except GeohaError as exc:
            print(f"could not remove the partition rules: {exc}", flush=True)
        (self.plan.run_dir / FAULTS_FILE).unlink(missing_ok=True)

    # -- status -----------------------------------------------------------------------
    def status(self) -> ControllerStatus:
        desired = self.desired
        nodes = {name: rt.status(desired) for name, rt in self.nodes.items()}
        return {
            "pid": os.getpid(),
            "phase": self.phase.value,
            "generation": self.bring_up_generation,
            "stage": self.stage.value if self.stage else None,
            "error": self.error,
            "failed_node": self.failed_node,
            "ready_after_s": self.ready_after_s,
            "decision": self.decision,
            "desired": {
                "goal": desired.goal.value,
                "tiers": desired.tiers.value,
                "generation": desired.generation,
                "held": sorted(desired.held),
                "by_hand": sorted(desired.by_hand),
                "stop_fast": desired.stop_fast,
            },
            "events": [e.record() for e in self.events[-STATUS_EVENTS:]],
            "nodes": nodes,
            "dns": self.dns.status(),
            "monitor": self.monitor.summary(),
            "faults": self.faults.statuses(),
            "fast_failover": self.fastfail.status(),
            "autoscale": self.autoscaler.status(desired.instances or frozenset()),
            "autoscaler_cpu_s": round(self.autoscaler.cpu_s, 3),
        }

    # -- main loop --------------------------------------------------------------------
    def adopt(self) -> int:
        """Take over the nodes a previous controller left running (pid + start time match)."""
        adopted = 0
        for rt in self.nodes.values():
            proc = adopt_process(rt.node.dir)
            if proc is not None:
                rt.proc = proc
                adopted += 1
                self.emit(EventKind.NODE_ADOPTED, rt.node.name, pid=proc.pid)
        return adopted

    async def run(self) -> None:
        server = await control.serve(self.plan.run_dir, self.handle)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_shutdown)
        adopted = self.adopt()
        self.emit(EventKind.CONTROLLER_STARTED, pid=os.getpid(), adopted=adopted)
        # Before any client of etcd starts: the watcher's and the probes' certificate.
        await asyncio.to_thread(ensure_client_certificate, self.plan)
        try:
            cuts = [p.cut for p in self.faults.partitions]
            await asyncio.to_thread(self.partitioner.prepare, cuts)
        except GeohaError as exc:
            self.partition_error = str(exc)
            self.emit(EventKind.PARTITIONS_UNAVAILABLE, error=str(exc))
        await self.dns.start()
        dns = self.dns.status()
        state = "running" if dns["running"] else f"not serving: {dns['error']}"
        self.emit(EventKind.DNS_SERVING, name=dns["name"], server=dns["server"], state=state)
        await self.monitor.start()
        self.fastfail.start()
        monitor = self.monitor.summary()
        state = "running" if monitor["running"] else f"not serving: {monitor['error']}"
        self.emit(EventKind.MONITOR_SERVING, url=monitor["dashboard_url"], state=state)
        async with httpx.AsyncClient(timeout=1.0, verify=self.tls) as client:
            while not self._stop.is_set():
                await self.cycle(client)
                busy = self.phase in (Phase.STARTING, Phase.STOPPING)
                interval = BUSY_CYCLE_INTERVAL_S if busy else CYCLE_INTERVAL_S
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), interval)
                self._wake.clear()
                await asyncio.sleep(MIN_CYCLE_GAP_S)
        await self.fastfail.stop()
        await self.monitor.close()
        await self.dns.close()
        await asyncio.to_thread(self.remove_faults)
        server.close()
        with contextlib.suppress(FileNotFoundError):
            control.socket_path(self.plan.run_dir).unlink()


HANDLERS: dict[str, Handler] = {
    "ping": Controller.op_ping,
    "status": Controller.op_status,
    "monitor": Controller.op_monitor,
    "up": Controller.op_up,
    "kill_node": Controller.op_kill_node,
    "kill_region": Controller.op_kill_region,
    "partition": Controller.op_partition,
    "heal": Controller.op_heal,
    "start_node": Controller.op_start_node,
    "scale": Controller.op_scale,
    "rotate_secrets": Controller.op_rotate_secrets,
    "shutdown": Controller.op_shutdown,
}
"""Every control operation; each changes the desired state, the loop does the rest."""

ACTS: dict[type[Any], Callable[[Controller, Any], None]] = {
    BeginBringUp: Controller.begin_bring_up,
    RenderConfigs: Controller.render_configs,
    StartNode: Controller.start_node,
    RestartNode: Controller.restart_node,
    StopNode: Controller.stop_node,
    KillNode: Controller.kill_node,
    ApplySchema: Controller.apply_schema,
    ResetRestarts: Controller.reset_restarts,
    RecordPrimary: Controller.record_primary,
    MarkReady: Controller.mark_ready,
    MarkFailed: Controller.mark_failed,
    FinishShutdown: Controller.finish_shutdown,
}


def controller_pid(run_dir: Path) -> int | None:
    """The pid the run directory's controller recorded, if it recorded one."""
    try:
        return int(json.loads((run_dir / PID_FILE).read_text(encoding="utf-8"))["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def load_plan(run_dir: Path) -> Plan:
    spec = Spec.model_validate_json((run_dir / SPEC_FILE).read_text(encoding="utf-8"))
    return expand(spec, run_dir, Tools.discover())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="geoha.runtime.controller")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--tiers", choices=[t.value for t in Tiers], default=Tiers.ALL.value)
    args = parser.parse_args(argv)
    run_dir = args.run_dir.resolve()
    plan = load_plan(run_dir)
    pid_path = run_dir / PID_FILE
    pid_path.write_text(json.dumps({"pid": os.getpid(), "started": time.time()}))
    try:
        asyncio.run(Controller(plan, Tiers(args.tiers)).run())
    finally:
        pid_path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
