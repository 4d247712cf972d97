"""Commands that change the local deployment: up, down, switchover, chaos."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import psutil

from geoha.commands.common import load, region_urls, say, tail
from geoha.data import cluster
from geoha.data.secrets import ROTATABLE, load_or_create_secrets
from geoha.data.write_hold import WriteHold
from geoha.errors import EXIT_FAILED, EXIT_OK, BadInput, GeohaError
from geoha.plan import Plan
from geoha.runtime import control
from geoha.runtime.controller import PID_FILE, SPEC_FILE, controller_pid
from geoha.runtime.events import ControllerStatus
from geoha.runtime.faults import FAULTS_FILE, Partitioner, load_faults, save_faults
from geoha.runtime.groups import ensure_groups, region_group_name
from geoha.runtime.kinds import kinds
from geoha.runtime.partition import PartitionError
from geoha.runtime.process import RunAs, adopt_process, clear_record
from geoha.spec import Spec

UP_TIMEOUT_S = 300.0


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


def spawn_controller(plan: Plan, tiers: str) -> None:
    log = open(plan.run_dir / "controller.log", "ab")  # noqa: SIM115 -- handed to the child
    argv = [sys.executable, "-m", "geoha.runtime.controller", str(plan.run_dir), "--tiers", tiers]
    try:
        subprocess.Popen(
            argv,
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
def follow_bring_up(plan: Plan, since_seq: int, generation: int) -> ControllerStatus:
    """Print the controller's events until the bring-up of `generation` is ready or failed."""
    seen = since_seq
    deadline = time.monotonic() + UP_TIMEOUT_S
    while time.monotonic() < deadline:
        snap: ControllerStatus = control.call(plan.run_dir, "status")
        for event in snap["events"]:
            if event["seq"] > seen and event["kind"] != "decision":
                seen = event["seq"]
                say(f"  {event['message']}")
        if snap["generation"] >= generation and snap["phase"] in ("ready", "failed"):
            return snap
        time.sleep(0.3)
    raise GeohaError(f"not every node was healthy after {UP_TIMEOUT_S:.0f} s; see `geoha status`")


def cmd_up(args: argparse.Namespace) -> int:
    spec, plan = load(args)
    check_tools(plan)
    prepare_run_dir(spec, plan)
    check_database_user_access(plan)
    for step in ensure_groups(region_group_name(spec.name, r) for r in spec.regions):
        say(f"region groups: {step}")
    say(f"geoha up: {len(plan.nodes)} nodes, tiers {args.tiers}, run directory {plan.run_dir}")
    if control.controller_running(plan.run_dir):
        since = control.call(plan.run_dir, "status")["events"]
        seq = since[-1]["seq"] if since else 0
        answer: ControllerStatus = control.call(plan.run_dir, "up", tiers=args.tiers)
        generation = answer["desired"]["generation"]
    else:
        spawn_controller(plan, args.tiers)
        seq, generation = 0, 1
    snap = follow_bring_up(plan, seq, generation)
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
    if args.tiers == "all":
        for region in plan.spec.data_regions:
            http, https = region_urls(plan, region)
            say(f"  open {http}  ({region}; HTTPS: {https}, CA: geoha ca)")
        dns = snap["dns"]
        host, _, port = dns["server"].rpartition(":")
        say(
            f"  global DNS: {dns['name']} on {dns['server']} (weighted, health-checked): "
            f"dig @{host} -p {port} {dns['name']}   or   curl --resolve "
            f"{dns['name']}:{plan.spec.traffic.frontend_http_port}:ADDRESS "
            f"http://{dns['name']}:{plan.spec.traffic.frontend_http_port}/"
        )
        monitor = snap["monitor"]
        serving = "" if monitor["running"] else f" NOT SERVING ({monitor['error']})"
        say(
            f"  dashboard: {monitor['dashboard_url']}{serving}  "
            f"(metrics {monitor['metrics_url']}; geoha monitor)"
        )
    else:
        say(f"  tiers {args.tiers} only: `geoha up` brings up the rest")
    say("  status: geoha status    write DSN: geoha dsn --region REGION --write")
    return EXIT_OK


# -- down ----------------------------------------------------------------------
def cmd_down(args: argparse.Namespace) -> int:
    _, plan = load(args)
    if control.controller_running(plan.run_dir):
        if args.purge:
            say("killing every node (--purge: its data is removed next)...")
        else:
            say("stopping every node (data is kept unless --purge)...")
        control.call(plan.run_dir, "shutdown", fast=args.purge)
        deadline = time.monotonic() + 90
        while control.controller_running(plan.run_dir) and time.monotonic() < deadline:
            time.sleep(0.3)
    # Whatever is still running (no controller, or a controller that died) is stopped here.
    by_role = kinds()
    for node in reversed(plan.nodes):
        proc = adopt_process(node.dir)
        if proc is not None:
            kind = by_role[node.role]
            if args.purge:
                kind.kill(node, proc.record)
            else:
                kind.stop(node, proc.record)
            clear_record(node.dir)
            say(f"  {node.name}: {'killed' if args.purge else 'stopped'}")
    stop_stray_controller(plan.run_dir)
    remove_faults(plan)
    if args.purge and plan.run_dir.exists():
        shutil.rmtree(plan.run_dir)
        say(f"removed {plan.run_dir}")
    say("down")
    return EXIT_OK


def remove_faults(plan: Plan) -> None:
    """No partition outlives the deployment, even when its controller died."""
    iptables = Partitioner(plan).iptables
    try:
        if (plan.run_dir / FAULTS_FILE).exists() or iptables.exists():
            iptables.remove()
            say(f"removed the partition rules ({iptables.chain})")
    except PartitionError as exc:
        say(f"could not remove the partition rules: {exc}")
    (plan.run_dir / FAULTS_FILE).unlink(missing_ok=True)


def stop_stray_controller(run_dir: Path) -> None:
    pid = controller_pid(run_dir)
    if pid is None:
        return
    try:
        proc = psutil.Process(pid)
        if "geoha.runtime.controller" in " ".join(proc.cmdline()):
            proc.terminate()
            proc.wait(10)
    except psutil.Error:
        pass
    (run_dir / PID_FILE).unlink(missing_ok=True)


# -- planned and unplanned role changes ------------------------------------------
def cmd_switchover(args: argparse.Namespace) -> int:
    _, plan = load(args)
    say(f"switching over to {args.to}...")
    started = time.monotonic()
    if not plan.secrets_path.exists():
        raise cluster.ClusterError(f"no deployment in {plan.run_dir}: run `geoha up` first")
    secrets = load_or_create_secrets(plan.spec, plan.secrets_path)
    message = cluster.switchover(plan, args.to, secrets, hold=WriteHold(plan))
    say(f"{message} ({time.monotonic() - started:.1f} s)")
    return EXIT_OK


def cmd_chaos(args: argparse.Namespace) -> int:
    _, plan = load(args)
    action, target = args.action, args.target
    if action != "heal" and target is None:
        what = "NODE" if action.endswith("-node") else "REGION"
        raise BadInput(f"chaos {action}: {what} is required")
    if args.others and action != "partition":
        raise BadInput(f"--from: only with `chaos partition` (got `chaos {action}`)")
    if action == "heal" and not control.controller_running(plan.run_dir):
        return heal_without_controller(plan, target)
    # the controller answers once the kills or starts are done (it waits up to 60 s for each)
    if action in ("kill-node", "start-node"):
        op = action.replace("-", "_")
        result = control.call(plan.run_dir, op, timeout_s=75.0, node=target)
        if op == "kill_node":
            say(
                f"{target}: killed ({result['killed']} processes); "
                "the controller will not restart it"
            )
        else:
            say(result.get("message") or f"{target}: started")
    elif action == "kill-region":
        result = control.call(plan.run_dir, "kill_region", timeout_s=75.0, region=target)
        say(
            f"{target}: every node killed at once ({result['killed']} processes); "
            f"the controller will not restart them until `geoha chaos heal {target}`"
        )
    elif action == "partition":
        result = control.call(
            plan.run_dir, "partition", timeout_s=75.0, region=target, others=args.others
        )
        say(
            f"{target}: cut off from {', '.join(result['others'])}, both ways; its processes "
            f"keep running and clients on this machine still reach it (`geoha chaos heal {target}`)"
        )
    else:
        result = control.call(plan.run_dir, "heal", timeout_s=75.0, region=target)
        mended = ", ".join(result["partitions"]) or "none"
        started = ", ".join(result["started"]) or "none"
        say(f"healed: partitions of {mended} removed; started {started}")
    return EXIT_OK


def cmd_scale(args: argparse.Namespace) -> int:
    _, plan = load(args)
    if not control.controller_running(plan.run_dir):
        raise GeohaError("scale: no controller runs for this deployment (`geoha up` first)")
    result = control.call(
        plan.run_dir, "scale", region=args.region, tier=args.tier, count=args.count
    )
    say(
        f"{result['tier']}/{result['region']}: {result['was']} -> {result['count']} instances "
        "asked for; new ones serve once healthy, removed ones are drained first "
        "(`geoha status` shows the group)"
    )
    return EXIT_OK


def cmd_secrets(args: argparse.Namespace) -> int:
    """`geoha secrets rotate [--user NAME]...`: the controller changes them (it holds them)."""
    _, plan = load(args)
    if not control.controller_running(plan.run_dir):
        raise GeohaError("secrets: no controller runs for this deployment (`geoha up` first)")
    users = args.users or list(ROTATABLE)
    say(f"rotating {', '.join(users)}...")
    result = control.call(plan.run_dir, "rotate_secrets", timeout_s=60.0, users=users)
    say(
        f"rotated {', '.join(result['rotated'])}; Patroni reloaded on "
        f"{', '.join(result['reloaded']) or 'no node'}; new values are in "
        f"{plan.secrets_path} (0600) and {plan.pgpass_path} (0600)"
    )
    return EXIT_OK


def heal_without_controller(plan: Plan, region: str | None) -> int:
    """Remove recorded partitions a dead controller left behind; nodes wait for `geoha up`."""
    if region is not None and region not in plan.spec.regions:
        raise BadInput(f"REGION: one of {', '.join(plan.spec.regions)} (got {region!r})")
    faults = load_faults(plan.run_dir)
    region_of = {n.name: n.region for n in plan.nodes}
    left, mend, _ = faults.healed(region, region_of)
    partitioner = Partitioner(plan)
    for partition in mend:
        partitioner.mend(partition.cut)
    # killed nodes stay recorded: only a controller starts them (`geoha up`)
    kept = replace(left, killed_regions=faults.killed_regions, killed_nodes=faults.killed_nodes)
    save_faults(plan.run_dir, kept)
    say(f"no controller runs: removed {len(mend)} partition(s); killed nodes start with `geoha up`")
    return EXIT_OK
