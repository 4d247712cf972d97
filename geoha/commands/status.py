"""Commands that look at the local deployment: status, ps, logs."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any, TypedDict

from geoha.commands.common import load, print_table, region_urls, say, tail
from geoha.commands.controller_view import controller_snapshot
from geoha.data import cluster
from geoha.data.cluster import DatabaseEntry, DatabaseStatus, EtcdMember
from geoha.data.secrets import load_or_create_secrets
from geoha.errors import EXIT_OK, BadInput, GeohaError
from geoha.ops.autoscale import GroupStatus
from geoha.ops.fencing import FastFailoverStatus
from geoha.ops.monitor_status import MonitorSummary
from geoha.plan import NodeRole, Plan
from geoha.render.haproxy import ADMIN_SOCKET
from geoha.runtime.events import ControllerStatus, NodeStatus
from geoha.runtime.faults import FaultStatus, load_faults
from geoha.runtime.global_dns import DnsStatus
from geoha.runtime.process import adopt_process
from geoha.spec import Spec
from geoha.traffic.lb_admin import LbAdminError, server_states

CONTROLLER_LOG_NAME = "controller"


class ControllerSummary(TypedDict):
    running: bool
    pid: int | None
    phase: str | None
    stage: str | None
    error: str | None
    decision: str | None
    nodes_running: int
    """Nodes whose recorded process is alive, with or without a controller."""


class DatabaseReport(DatabaseEntry):
    process: NodeStatus | dict[str, Any]
    """The controller's view of the node's process ({} without a controller)."""


class EtcdReport(EtcdMember):
    process: NodeStatus | dict[str, Any]


class LbReport(TypedDict):
    name: str
    role: str
    address: str
    healthy: bool
    servers: dict[str, dict[str, str]]
    """Backend -> server -> HAProxy status (UP, DOWN, MAINT, ...)."""


class InstanceReport(TypedDict):
    name: str
    role: str
    address: str
    running: bool
    healthy: bool
    standby: bool


class RegionTraffic(TypedDict):
    url: str
    https_url: str
    lbs: list[LbReport]
    instances: list[InstanceReport]


class ClusterSummary(TypedDict):
    primary: str | None
    replication: str


class StatusReport(TypedDict):
    """`geoha status --json`."""

    deployment: str
    run_dir: str
    controller: ControllerSummary
    cluster: ClusterSummary
    databases: list[DatabaseReport]
    etcd: list[EtcdReport]
    traffic: dict[str, RegionTraffic]
    dns: DnsStatus | None
    """The global DNS the controller runs (None without a controller)."""
    monitor: MonitorSummary | None
    """The health monitor the controller runs (None without a controller)."""
    faults: list[FaultStatus]
    """Active faults (`geoha chaos`); without a controller, those recorded on disk."""
    fast_failover: FastFailoverStatus | None
    """geoha's fast failover watcher (None without a controller)."""
    autoscale: list[GroupStatus]
    """Each region's web and API groups as the autoscaler runs them (none without a
    controller)."""


def gather_status(spec: Spec, plan: Plan) -> StatusReport:
    snap = controller_snapshot(plan)
    secrets = (
        load_or_create_secrets(spec, plan.secrets_path) if plan.secrets_path.exists() else None
    )
    databases: DatabaseStatus = (
        cluster.database_status(plan, secrets) if secrets else {"primary": None, "nodes": []}
    )
    processes = dict(snap["nodes"]) if snap else {}
    return {
        "deployment": spec.name,
        "run_dir": str(plan.run_dir),
        "controller": controller_summary(plan, snap),
        "cluster": {"primary": databases["primary"], "replication": spec.replication.value},
        "databases": [
            {**entry, "process": processes.get(entry["name"], {})} for entry in databases["nodes"]
        ],
        "etcd": [
            {**member, "process": processes.get(member["name"], {})}
            for member in cluster.etcd_status(plan)
        ],
        "traffic": traffic_status(plan, processes),
        "dns": snap["dns"] if snap else None,
        "monitor": snap["monitor"] if snap else None,
        "faults": snap["faults"] if snap else load_faults(plan.run_dir).statuses(),
        "fast_failover": snap["fast_failover"] if snap else None,
        "autoscale": snap["autoscale"] if snap else [],
    }


def controller_summary(plan: Plan, snap: ControllerStatus | None) -> ControllerSummary:
    return {
        "running": snap is not None,
        "pid": snap["pid"] if snap else None,
        "phase": snap["phase"] if snap else None,
        "stage": snap["stage"] if snap else None,
        "error": snap["error"] if snap else None,
        "decision": snap["decision"] if snap else None,
        "nodes_running": (
            sum(1 for n in snap["nodes"].values() if n["running"])
            if snap
            else sum(1 for n in plan.nodes if adopt_process(n.dir) is not None)
        ),
    }


def traffic_status(plan: Plan, processes: dict[str, NodeStatus]) -> dict[str, RegionTraffic]:
    """Per data region: its entry URLs, every LB with its servers' states, every instance."""
    regions: dict[str, RegionTraffic] = {}
    for region in plan.spec.data_regions:
        lbs: list[LbReport] = []
        for role in (NodeRole.FRONTEND_LB, NodeRole.BACKEND_LB):
            lb = plan.only(region, role)
            try:
                servers = server_states(lb.dir / ADMIN_SOCKET)
            except LbAdminError:
                servers = {}
            proc = processes.get(lb.name)
            lbs.append(
                {
                    "name": lb.name,
                    "role": role.value,
                    "address": lb.address,
                    "healthy": proc is not None and proc["healthy"],
                    "servers": servers,
                }
            )
        instances: list[InstanceReport] = [
            {
                "name": n.name,
                "role": n.role.value,
                "address": n.address,
                "running": (p := processes.get(n.name)) is not None and p["running"],
                "healthy": p is not None and p["healthy"],
                "standby": n.standby,
            }
            for role in (NodeRole.WEB, NodeRole.API)
            for n in plan.in_region(region, role)
        ]
        http, https = region_urls(plan, region)
        regions[region] = {"url": http, "https_url": https, "lbs": lbs, "instances": instances}
    return regions


def cmd_status(args: argparse.Namespace) -> int:
    spec, plan = load(args)
    status = gather_status(spec, plan)
    if args.json:
        print(json.dumps(status, indent=2))
        return EXIT_OK
    ctl = status["controller"]
    say(
        f"deployment {status['deployment']} ({status['run_dir']}): controller "
        + (f"{ctl['phase']} (pid {ctl['pid']})" if ctl["running"] else "not running")
    )
    if not ctl["running"] and ctl["nodes_running"]:
        say(
            f"  {ctl['nodes_running']} nodes run unsupervised (no restarts, no health "
            "checks): `geoha up` starts a controller that adopts them"
        )
    elif ctl["running"] and ctl["decision"]:
        say(f"  {ctl['decision']}")
    if ctl.get("error"):
        say(f"  last error: {ctl['error']}")
    say(f"primary: {status['cluster']['primary'] or 'none'}")
    say(f"replication: {status['cluster']['replication']}")
    print_table(
        ["DATABASE", "REGION", "ROLE", "TL", "REPLICATION", "SYNC", "LAG B", "LAG MS"],
        [
            [
                d["name"],
                d["region"],
                d["role"],
                d["timeline"],
                d["replication_state"],
                None if d["sync"] is None else ("yes" if d["sync"] else "no"),
                d["lag_bytes"],
                d["lag_ms"],
            ]
            for d in status["databases"]
        ],
    )
    for region, info in status["traffic"].items():
        say(f"{region}: {info['url']}  {info['https_url']}")
        for lb in info["lbs"]:
            pools = "; ".join(
                f"{backend}: " + ", ".join(f"{s}={st}" for s, st in servers.items())
                for backend, servers in lb["servers"].items()
            )
            say(f"  {lb['name']:<12} {'ok' if lb['healthy'] else 'DOWN':<5} {pools}")
        running = [i for i in info["instances"] if i["running"]]
        say(
            "  instances: "
            + ", ".join(f"{i['name']}={'ok' if i['healthy'] else 'DOWN'}" for i in running)
        )
        for group in status["autoscale"]:
            if group["region"] == region:
                say("  " + autoscale_line(group))
    dns = status["dns"]
    if dns is not None:
        regions = "  ".join(
            f"{r['region']}={'ok' if r['healthy'] else 'DOWN'} (weight {r['weight']}, "
            f"{r['answers']} answers)"
            for r in dns["records"]
        )
        serving = "" if dns["running"] else f" NOT SERVING ({dns['error']})"
        say(f"dns: {dns['name']} @{dns['server']}{serving}  {regions}")
    monitor = status["monitor"]
    if monitor is not None:
        serving = "" if monitor["running"] else " NOT SERVING"
        problem = f" ({monitor['error']})" if monitor["error"] else ""
        say(
            f"monitor: {monitor['dashboard_url']}{serving}{problem}  "
            f"{monitor['incidents_open']} open incident(s) (geoha monitor)"
        )
    fast = status["fast_failover"]
    if fast is not None:
        state = (
            f"on, fences after {fast['fence_after_s']:g} s unreachable from every region"
            if fast["enabled"]
            else "off (Patroni's ttl alone decides)"
        )
        latest = f"; {fast['decision']}: {fast['reason']}" if fast["decision"] else ""
        say(f"fast failover: {state}{latest}")
    for fault in status["faults"]:
        since = time.strftime("%H:%M:%S", time.localtime(fault["since"])) if fault["since"] else "?"
        others = f" from {', '.join(fault['others'])}" if fault["others"] else ""
        say(f"FAULT: {fault['kind']} {fault['target']}{others} since {since} (geoha chaos heal)")
    healthy = sum(1 for m in status["etcd"] if m["healthy"])
    say(
        f"etcd: {healthy}/{len(status['etcd'])} healthy  "
        + "  ".join(f"{m['name']}={'ok' if m['healthy'] else 'DOWN'}" for m in status["etcd"])
    )
    return EXIT_OK


def autoscale_line(group: GroupStatus) -> str:
    """One group: serving/desired (min, max), CPU, requests in flight, the last change."""
    cpu = "CPU n/a" if group["cpu_percent"] is None else f"CPU {group['cpu_percent']:.0f} %"
    draining = f", draining {', '.join(group['draining'])}" if group["draining"] else ""
    last = group["last_decision"] or "no change yet"
    return (
        f"autoscale {group['tier']}: {group['current']} serving / {group['desired']} desired "
        f"(min {group['min']}, max {group['max']}), {cpu}, {group['in_flight']} in flight"
        f"{draining}; last: {last}"
    )


def cmd_ps(args: argparse.Namespace) -> int:
    _, plan = load(args)
    snap = controller_snapshot(plan)
    processes: dict[str, Any] = dict(snap["nodes"]) if snap else {}
    if snap is None:
        say("controller: not running")
    rows = []
    for node in plan.nodes:
        p = processes.get(node.name, {})
        proc = adopt_process(node.dir)
        if p.get("stopped_by_chaos"):
            state = "stopped (chaos)"
        elif p.get("running") or proc is not None:
            state = "running"
        else:
            state = "stopped"
        pid = p.get("pid") or (proc.pid if proc else None)
        rows.append(
            [
                node.name,
                node.role.value,
                node.address,
                pid,
                state,
                p.get("restarts", 0),
                p.get("detail"),
            ]
        )
    print_table(["NODE", "ROLE", "ADDRESS", "PID", "STATE", "RESTARTS", "HEALTH"], rows)
    return EXIT_OK


def log_path(plan: Plan, name: str) -> Path:
    """A node's log, or the controller's (`controller`)."""
    if name == CONTROLLER_LOG_NAME:
        return plan.run_dir / "controller.log"
    try:
        return plan.node(name).log_path
    except KeyError:
        names = [CONTROLLER_LOG_NAME, *(n.name for n in plan.nodes)]
        raise BadInput(f"NODE: one of {', '.join(names)} (got {name!r})") from None


def cmd_logs(args: argparse.Namespace) -> int:
    _, plan = load(args)
    path = log_path(plan, args.node)
    if args.json:
        if args.node != CONTROLLER_LOG_NAME:
            raise BadInput("--json: only with NODE controller (its events are structured)")
        snap = controller_snapshot(plan)
        if snap is None:
            raise GeohaError("no controller is running: its past events are in its log")
        for event in snap["events"][-args.lines :]:
            print(json.dumps(event))
        return EXIT_OK
    if not path.exists():
        raise GeohaError(f"{args.node} has no log yet ({path})")
    for line in tail(path, args.lines):
        print(line)
    if args.follow:
        with open(path, encoding="utf-8", errors="replace") as f:
            f.seek(0, os.SEEK_END)
            try:
                while True:
                    line = f.readline()
                    if line:
                        print(line, end="", flush=True)
                    else:
                        time.sleep(0.3)
            except KeyboardInterrupt:
                return EXIT_OK
    return EXIT_OK
