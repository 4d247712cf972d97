"""Commands that drive a local deployment through its controller."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from geoha.cli import load, print_table
from geoha.data import cluster
from geoha.data.secrets import load_or_create_secrets
from geoha.errors import EXIT_FAILED, EXIT_OK, BadInput, GeohaError
from geoha.plan import NodeRole, Plan
from geoha.render.haproxy import ADMIN_SOCKET
from geoha.runtime import control
from geoha.runtime.controller import PID_FILE, SPEC_FILE
from geoha.runtime.kinds import kinds
from geoha.runtime.process import RunAs, adopt_process, clear_record
from geoha.spec import Spec
from geoha.traffic.lb_admin import LbAdminError, server_states

UP_TIMEOUT_S = 300.0


def say(message: str) -> None:
    print(message, flush=True)


# -- preflight ---------------------------------------------------------------
def check_tools(plan: Plan) -> None:
    missing = []
    commands = {n.command[0] for n in plan.nodes}
    for path in sorted(commands):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            missing.append(path)
    if not Path(plan.pg_bin_dir, "postgres").exists():
        missing.append(f"{plan.pg_bin_dir}/postgres")
    if missing:
        raise GeohaError(
            f"missing executables: {', '.join(missing)} -- run scripts/setup.sh (make up does)"
        )


def check_database_user_access(plan: Plan) -> None:
    """As root, PostgreSQL runs as `postgres`: it must reach the virtualenv and run directory."""
    if os.geteuid() != 0:
        return
    user = RunAs.database_user()
    patroni = next(n.command[0] for n in plan.database_nodes)
    probe = [patroni, "--version"]
    result = subprocess.run(
        probe,
        user=user.uid,
        group=user.gid,
        extra_groups=[],
        capture_output=True,
        check=False,
        cwd="/",
    )
    if result.returncode != 0:
        raise GeohaError(
            f"user {user.name} cannot run {patroni}: every folder above the repository must be "
            "traversable by others (chmod o+x), or clone it somewhere that is"
        )
    for parent in [plan.run_dir, *plan.run_dir.parents]:
        if parent.exists() and not os.stat(parent).st_mode & 0o001:
            raise GeohaError(
                f"user {user.name} cannot reach the run directory {plan.run_dir}: {parent} is not "
                "traversable by others (chmod o+x it, or set run_dir elsewhere)"
            )


def prepare_run_dir(spec: Spec, plan: Plan) -> None:
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(plan.run_dir, 0o755)
    spec_path = plan.run_dir / SPEC_FILE
    text = spec.model_dump_json(indent=2)
    changed = spec_path.exists() and spec_path.read_text(encoding="utf-8") != text
    if changed and (control.controller_running(plan.run_dir) or any_node_running(plan)):
        raise GeohaError(
            f"a deployment with a different topology is running in {plan.run_dir}: "
            "run `geoha down` first"
        )
    spec_path.write_text(text, encoding="utf-8")


def any_node_running(plan: Plan) -> bool:
    return any(adopt_process(n.dir) is not None for n in plan.nodes)


def spawn_controller(plan: Plan) -> None:
    log = open(plan.run_dir / "controller.log", "ab")  # noqa: SIM115 -- handed to the child
    try:
        subprocess.Popen(
            [sys.executable, "-m", "geoha.runtime.controller", str(plan.run_dir)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=plan.run_dir,
        )
    finally:
        log.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if control.controller_running(plan.run_dir):
            return
        time.sleep(0.1)
    raise GeohaError(f"the controller did not start; see {plan.run_dir / 'controller.log'}")


# -- up ------------------------------------------------------------------------
def tail(path: Path, lines: int = 20) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def follow_bring_up(plan: Plan, since_seq: int) -> dict[str, Any]:
    seen = since_seq
    deadline = time.monotonic() + UP_TIMEOUT_S
    while time.monotonic() < deadline:
        snap = control.call(plan.run_dir, "status")
        for event in snap["events"]:
            if event["seq"] > seen:
                seen = event["seq"]
                say(f"  {event['message']}")
        if snap["phase"] in ("ready", "failed"):
            return dict(snap)
        time.sleep(0.3)
    raise GeohaError(f"not every node was healthy after {UP_TIMEOUT_S:.0f} s; see `geoha status`")


def cmd_up(args: argparse.Namespace) -> int:
    spec, plan = load(args)
    check_tools(plan)
    prepare_run_dir(spec, plan)
    check_database_user_access(plan)
    say(f"geoha up: {len(plan.nodes)} nodes, run directory {plan.run_dir}")
    if control.controller_running(plan.run_dir):
        since = control.call(plan.run_dir, "status")["events"]
        seq = since[-1]["seq"] if since else 0
        control.call(plan.run_dir, "up")
    else:
        spawn_controller(plan)
        seq = 0
    snap = follow_bring_up(plan, seq)
    if snap["phase"] == "failed":
        failed = snap.get("failed_node")
        say(f"geoha up failed: {snap['error']}")
        if failed:
            node = plan.node(failed)
            say(f"last lines of {node.log_path}:")
            for line in tail(node.log_path):
                say(f"  | {line}")
        say(
            "the deployment is left as it is for inspection: "
            "`geoha status`, `geoha logs NODE`, `geoha down`"
        )
        return EXIT_FAILED
    status = cluster.database_status(plan, load_or_create_secrets(spec, plan.secrets_path))
    say(f"ready in {snap['ready_after_s']} s: primary {status['primary']}")
    for region in plan.spec.data_regions:
        http, https = region_urls(plan, region)
        say(f"  open {http}  ({region}; HTTPS: {https}, CA: geoha ca)")
    say("  status: geoha status    write DSN: geoha dsn --region REGION --write")
    return EXIT_OK


def region_urls(plan: Plan, region: str) -> tuple[str, str]:
    """The HTTP and HTTPS entry of a data region: its frontend LB."""
    fe = plan.only(region, NodeRole.FRONTEND_LB)
    return (
        f"http://{fe.address}:{fe.ports['http']}/",
        f"https://{fe.address}:{fe.ports['https']}/",
    )


def cmd_open(args: argparse.Namespace) -> int:
    _, plan = load(args)
    regions = [args.region] if args.region else list(plan.spec.data_regions)
    for region in regions:
        if region not in plan.spec.data_regions:
            raise BadInput(
                f"REGION: a data region ({', '.join(plan.spec.data_regions)}) (got {region!r})"
            )
        http, https = region_urls(plan, region)
        print(http if args.region else f"{region}: {http}  {https}")
    return EXIT_OK


def cmd_ca(args: argparse.Namespace) -> int:
    _, plan = load(args)
    path = plan.run_dir / "tls" / "ca.pem"
    if not path.exists():
        raise GeohaError(f"no CA yet ({path}): it is created by `geoha up`")
    if args.path:
        print(path)
    else:
        print(path.read_text(), end="")
    return EXIT_OK


# -- down ----------------------------------------------------------------------
def cmd_down(args: argparse.Namespace) -> int:
    _, plan = load(args)
    if control.controller_running(plan.run_dir):
        say("stopping every node (data is kept unless --purge)...")
        control.call(plan.run_dir, "shutdown")
        deadline = time.monotonic() + 90
        while control.controller_running(plan.run_dir) and time.monotonic() < deadline:
            time.sleep(0.3)
    # Whatever is still running (no controller, or a controller that died) is stopped here.
    by_role = kinds()
    for node in reversed(plan.nodes):
        proc = adopt_process(node.dir)
        if proc is not None:
            by_role[node.role].stop(node, proc.record)
            clear_record(node.dir)
            say(f"  {node.name}: stopped")
    stop_stray_controller(plan.run_dir)
    if args.purge and plan.run_dir.exists():
        shutil.rmtree(plan.run_dir)
        say(f"removed {plan.run_dir}")
    say("down")
    return EXIT_OK


def stop_stray_controller(run_dir: Path) -> None:
    try:
        pid = int(json.loads((run_dir / PID_FILE).read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return
    import psutil

    try:
        proc = psutil.Process(pid)
        if "geoha.runtime.controller" in " ".join(proc.cmdline()):
            proc.terminate()
            proc.wait(10)
    except psutil.Error:
        pass
    (run_dir / PID_FILE).unlink(missing_ok=True)


# -- status / ps / logs ----------------------------------------------------------
def controller_snapshot(plan: Plan) -> dict[str, Any] | None:
    try:
        return dict(control.call(plan.run_dir, "status"))
    except control.ControlError:
        return None


def gather_status(spec: Spec, plan: Plan) -> dict[str, Any]:
    snap = controller_snapshot(plan)
    secrets = (
        load_or_create_secrets(spec, plan.secrets_path) if plan.secrets_path.exists() else None
    )
    databases = (
        cluster.database_status(plan, secrets) if secrets else {"primary": None, "nodes": []}
    )
    processes = (snap or {}).get("nodes", {})
    for entry in databases["nodes"]:
        entry["process"] = processes.get(entry["name"], {})
    etcd = cluster.etcd_status(plan)
    for member in etcd:
        member["process"] = processes.get(member["name"], {})
    return {
        "deployment": spec.name,
        "run_dir": str(plan.run_dir),
        "controller": {
            "running": snap is not None,
            "pid": snap["pid"] if snap else None,
            "phase": snap["phase"] if snap else None,
            "error": snap["error"] if snap else None,
        },
        "cluster": {"primary": databases["primary"], "replication": spec.replication.value},
        "databases": databases["nodes"],
        "etcd": etcd,
        "traffic": traffic_status(plan, processes),
    }


def traffic_status(plan: Plan, processes: dict[str, Any]) -> dict[str, Any]:
    """Per data region: its entry URLs, every LB with its servers' states, every instance."""
    regions: dict[str, Any] = {}
    for region in plan.spec.data_regions:
        lbs = []
        for role in (NodeRole.FRONTEND_LB, NodeRole.BACKEND_LB):
            lb = plan.only(region, role)
            try:
                servers = server_states(lb.dir / ADMIN_SOCKET)
            except LbAdminError:
                servers = {}
            proc = processes.get(lb.name, {})
            lbs.append(
                {
                    "name": lb.name,
                    "role": role.value,
                    "address": lb.address,
                    "healthy": bool(proc.get("healthy")),
                    "servers": servers,
                }
            )
        instances = [
            {
                "name": n.name,
                "role": n.role.value,
                "address": n.address,
                "running": bool(processes.get(n.name, {}).get("running")),
                "healthy": bool(processes.get(n.name, {}).get("healthy")),
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
    healthy = sum(1 for m in status["etcd"] if m["healthy"])
    say(
        f"etcd: {healthy}/{len(status['etcd'])} healthy  "
        + "  ".join(f"{m['name']}={'ok' if m['healthy'] else 'DOWN'}" for m in status["etcd"])
    )
    return EXIT_OK


def cmd_ps(args: argparse.Namespace) -> int:
    _, plan = load(args)
    snap = controller_snapshot(plan)
    processes = (snap or {}).get("nodes", {})
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


def cmd_logs(args: argparse.Namespace) -> int:
    _, plan = load(args)
    try:
        node = plan.node(args.node)
    except KeyError:
        raise BadInput(
            f"NODE: one of {', '.join(n.name for n in plan.nodes)} (got {args.node!r})"
        ) from None
    if not node.log_path.exists():
        raise GeohaError(f"{node.name} has no log yet ({node.log_path})")
    for line in tail(node.log_path, args.lines):
        print(line)
    if args.follow:
        with open(node.log_path, encoding="utf-8", errors="replace") as f:
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


# -- data tier -----------------------------------------------------------------
def cmd_dsn(args: argparse.Namespace) -> int:
    _, plan = load(args)
    print(cluster.dsn(plan, args.region, args.write))
    return EXIT_OK


def cmd_switchover(args: argparse.Namespace) -> int:
    _, plan = load(args)
    say(f"switching over to {args.to}...")
    started = time.monotonic()
    message = cluster.switchover(plan, args.to)
    say(f"{message} ({time.monotonic() - started:.1f} s)")
    return EXIT_OK


def cmd_chaos(args: argparse.Namespace) -> int:
    _, plan = load(args)
    op = {"kill-node": "kill_node", "start-node": "start_node"}[args.action]
    result = control.call(plan.run_dir, op, timeout_s=30.0, node=args.node)
    if op == "kill_node":
        say(
            f"{args.node}: killed ({result['killed']} processes); "
            "the controller will not restart it"
        )
    else:
        say(result.get("message") or f"{args.node}: started")
    return EXIT_OK


Command = Callable[[argparse.Namespace], int]


def register(sub: Any, add_file_arg: Callable[[argparse.ArgumentParser, bool], None]) -> None:
    """Add the runtime commands to the `geoha` parser."""

    def add(name: str, func: Command, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
        add_file_arg(p, name != "logs")  # `logs -f` follows, as tail -f does
        p.set_defaults(func=func)
        return p

    add("up", cmd_up, "start (or complete) the local deployment and wait until it is healthy")
    p = add("down", cmd_down, "stop every node of the local deployment")
    p.add_argument("--purge", action="store_true", help="also remove data, logs and secrets")
    p = add("status", cmd_status, "roles, replication lag, etcd health")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add("ps", cmd_ps, "every node's process and health")
    p = add("logs", cmd_logs, "a node's log")
    p.add_argument("node", metavar="NODE")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    p.add_argument("-n", "--lines", type=int, default=50, help="lines to show (default 50)")
    p = add("dsn", cmd_dsn, "the libpq URI an application in a region uses")
    p.add_argument("--region", required=True)
    p.add_argument("--write", action="store_true", help="the read-write URI (all nodes)")
    p = add("open", cmd_open, "the URL of a region's frontend LB (every region's without REGION)")
    p.add_argument("region", metavar="REGION", nargs="?")
    p = add("ca", cmd_ca, "the deployment's CA certificate (PEM), for HTTPS clients")
    p.add_argument("--path", action="store_true", help="print its path instead")
    p = add("switchover", cmd_switchover, "planned switchover of the primary to another region")
    p.add_argument("--to", required=True, metavar="REGION")
    p = add("chaos", cmd_chaos, "inject faults")
    p.add_argument("action", choices=["kill-node", "start-node"])
    p.add_argument("node", metavar="NODE")
