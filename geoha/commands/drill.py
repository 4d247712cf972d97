"""`geoha drill failover`: a failover drill against the running deployment, measured as its
users see it; `geoha drill verify`: check a saved drill's writes again.

The drill itself (load, sampler, report) is geoha.ops.drill; this module gives
it the deployment: faults through the real `geoha chaos` command line, the
controller's events and DNS health through the control socket, and the
cluster's state as `geoha status` reads it.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg

import geoha
from geoha.commands.clients import client_target
from geoha.commands.common import load, say
from geoha.commands.controller_view import controller_snapshot
from geoha.data import cluster
from geoha.data.cluster import DatabaseEntry, EtcdMember
from geoha.data.secrets import load_or_create_secrets
from geoha.db_access import node_dsn
from geoha.errors import EXIT_OK, BadInput, GeohaError
from geoha.health import trust
from geoha.ops.drill import Drill, DrillTargets, SettleState, count_names
from geoha.ops.drill_analysis import check_writes
from geoha.ops.drill_model import (
    ControllerEvent,
    DrillSettings,
    WriteOutcome,
    WriteRecord,
    chaos_plan,
    parse_fault,
    warmup_s,
)
from geoha.ops.drill_render import write_report, write_summary
from geoha.ops.drill_report import DrillReport, summary, written_names
from geoha.ops.drill_sampler import DatabaseTarget
from geoha.plan import Plan
from geoha.runtime.events import ControllerStatus
from geoha.spec import ReplicationMode, Spec

MAX_RATE = 200.0
MAX_DURATION_S = 1800.0
MAX_REPEAT = 20
CHAOS_TIMEOUT_S = 120.0

Say = Callable[[str], None]


class DrillFailed(GeohaError):
    """A drill found a promise broken: each one is a line of its own."""

    def __init__(self, broken: list[str]) -> None:
        super().__init__("; ".join(broken))
        self.broken = broken

    def lines(self) -> list[str]:
        return [f"geoha: drill failed: {line}" for line in self.broken]


# -- arguments ---------------------------------------------------------------------------


def check_numbers(args: argparse.Namespace) -> float:
    """BadInput naming the first argument out of range; the heal delay to use."""
    if not 1 <= args.rate <= MAX_RATE:
        raise BadInput(f"--rate: 1 to {MAX_RATE:g} operations per second (got {args.rate:g})")
    if not 10 <= args.duration <= MAX_DURATION_S:
        raise BadInput(f"--duration: 10 to {MAX_DURATION_S:g} seconds (got {args.duration:g})")
    heal_after: float = args.duration / 2 if args.heal_after is None else args.heal_after
    if not 1 <= heal_after <= MAX_DURATION_S:
        raise BadInput(f"--heal-after: 1 to {MAX_DURATION_S:g} seconds (got {heal_after:g})")
    if not 1 <= args.repeat <= MAX_REPEAT:
        raise BadInput(f"--repeat: 1 to {MAX_REPEAT} drills (got {args.repeat})")
    if args.report is not None and Path(args.report).exists() and not Path(args.report).is_dir():
        raise BadInput(f"--report: a folder to write the reports in (got the file {args.report})")
    return heal_after


def drill_settings(args: argparse.Namespace, spec: Spec, plan: Plan) -> DrillSettings:
    if args.fault is None:
        raise BadInput(f"--fault: required with `drill {args.action}`")
    fault = parse_fault(args.fault)
    heal_after = check_numbers(args)
    regions = {name: region.role.value for name, region in spec.regions.items()}
    chaos = chaos_plan(fault, regions, {n.name: n.region for n in plan.nodes if not n.standby})
    return DrillSettings(
        fault=fault,
        chaos=chaos,
        rate=args.rate,
        duration_s=args.duration,
        heal_after_s=heal_after,
        warmup_s=warmup_s(args.duration),
        data_regions=tuple(spec.data_regions),
        sync=spec.replication is ReplicationMode.SYNC,
        seed=secrets.randbits(31),
        tag=secrets.token_hex(4),
    )


# -- the deployment, as the drill sees it ------------------------------------------------


def settle_problems(
    databases: Sequence[DatabaseEntry],
    primary: str | None,
    etcd: Sequence[EtcdMember],
    snap: ControllerStatus,
    sync: bool,
) -> list[str]:
    """What keeps the cluster from counting as settled (empty: settled)."""
    problems = []
    if snap["faults"]:
        problems.append("faults active: " + ", ".join(f["kind"] for f in snap["faults"]))
    if primary is None:
        problems.append("no primary")
    for db in databases:
        if db["name"] == primary:
            continue
        if db["role"] != "replica" or db["replication_state"] != "streaming":
            problems.append(f"{db['name']} {db['role']}, {db['replication_state'] or 'no state'}")
        elif sync and not db["sync"]:
            problems.append(f"{db['name']} not yet the synchronous standby")
    problems += [f"{m['name']} unhealthy" for m in etcd if not m["healthy"]]
    problems += [
        f"DNS: {r['region']} unhealthy" for r in snap["dns"]["records"] if not r["healthy"]
    ]
    unhealthy = [n for n, s in snap["nodes"].items() if s["wanted"] and not s["healthy"]]
    if unhealthy:
        problems.append("not healthy: " + ", ".join(sorted(unhealthy)))
    return problems


class CliControl:
    """The deployment through `geoha chaos` and the controller's control socket."""

    def __init__(self, args: argparse.Namespace, spec: Spec, plan: Plan) -> None:
        self.file: str | None = args.file
        self.spec = spec
        self.plan = plan
        self.secrets = load_or_create_secrets(spec, plan.secrets_path)

    def snapshot(self) -> ControllerStatus:
        snap = controller_snapshot(self.plan)
        if snap is None:
            raise GeohaError("no controller is running: a drill needs the deployment up")
        return snap

    def chaos(self, args: Sequence[str]) -> None:
        """`geoha chaos ARGS` as a user would run it (this geoha, this topology file)."""
        self.geoha("chaos", *args)

    def geoha(self, command: str, *args: str) -> None:
        """`geoha COMMAND ARGS` as a user would run it (this geoha, this topology file)."""
        argv = [sys.executable, "-m", "geoha", command, *args]
        if self.file is not None:
            argv += ["--file", self.file]
        package_root = str(Path(geoha.__file__).resolve().parent.parent)
        path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
        result = subprocess.run(
            argv,
            env={**os.environ, "PYTHONPATH": path},
            capture_output=True,
            text=True,
            timeout=CHAOS_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            raise GeohaError(
                f"geoha {command} {' '.join(args)} exited {result.returncode}: "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )

    def events(self) -> list[ControllerEvent]:
        return [
            ControllerEvent(
                e["t"],
                e["kind"],
                e["node"],
                None if (target := e["fields"].get("target")) is None else str(target),
            )
            for e in self.snapshot()["events"]
        ]

    def dns_health(self) -> dict[str, bool]:
        return {r["region"]: r["healthy"] for r in self.snapshot()["dns"]["records"]}

    def settle_state(self) -> SettleState:
        try:
            snap = self.snapshot()
        except GeohaError as exc:
            return SettleState(str(exc), None)
        databases = cluster.database_status(self.plan, self.secrets)
        sync = self.spec.replication is ReplicationMode.SYNC
        problems = settle_problems(
            databases["nodes"], databases["primary"], cluster.etcd_status(self.plan), snap, sync
        )
        return SettleState("; ".join(problems) or None, databases["primary"])


def drill_targets(spec: Spec, plan: Plan, snap: ControllerStatus) -> DrillTargets:
    databases = [
        DatabaseTarget(
            node.name, node_dsn(plan, node), node.url("patroni", "/patroni"), trust(node)
        )
        for node in plan.database_nodes
    ]
    return DrillTargets(
        clients=client_target(plan, snap),
        databases=databases,
        write_dsn=cluster.dsn(plan, next(iter(spec.data_regions)), write=True),
    )


# -- the commands ------------------------------------------------------------------------


def cmd_drill(args: argparse.Namespace) -> int:
    if args.action == "verify":
        return cmd_verify(args)
    spec, plan = load(args)
    settings = drill_settings(args, spec, plan)
    report_dir = None if args.report is None else Path(args.report)
    if report_dir is not None and importlib.util.find_spec("matplotlib") is None:
        raise GeohaError(
            "--report: timeline.png needs matplotlib, missing from this environment "
            "(scripts/setup.sh installs the project's dependencies)"
        )
    progress = to_stderr if args.json else say
    control = CliControl(args, spec, plan)
    targets = drill_targets(spec, plan, control.snapshot())
    reports: list[DrillReport] = []
    for run in range(1, args.repeat + 1):
        label = f"drill {run}/{args.repeat}" if args.repeat > 1 else "drill"
        wait_until_ready(control, settings.settle_timeout_s, prefixed(progress, f"{label}:"))
        restore_primary(control, settings.settle_timeout_s, prefixed(progress, f"{label}:"))
        drill = Drill(settings, targets, control, prefixed(progress, label))
        report = drill.run()
        reports.append(report)
        if report_dir is not None:
            write_report(report_dir / f"run-{run}" if args.repeat > 1 else report_dir, report)
        progress(f"{label}: {headline(report)}")
        settings = replace_seed(settings)
    result: Any = reports[0]
    if args.repeat > 1:
        result = {"summary": summary(reports), "reports": reports}
        if report_dir is not None:
            write_summary(report_dir, result["summary"])
    if args.json:
        print(json.dumps(result, indent=2))
    elif report_dir is not None:
        say(f"reports in {report_dir}")
    broken = [line for r in reports for line in r["verdict"]["broken"]]
    if broken:
        raise DrillFailed(broken)
    return EXIT_OK


def restore_primary(control: CliControl, timeout_s: float, progress: Say) -> None:
    """Every drill starts from the reference state: the primary in the spec's primary
    region (an earlier drill's failover moved it), switched back over if it is not."""
    region = control.spec.primary_region
    reference = control.plan.database_node(region).name
    if control.settle_state().primary == reference:
        return
    progress(f"switching the primary back to {reference}, as the spec has it")
    control.geoha("switchover", "--to", region)
    wait_until_ready(control, timeout_s, progress)


def to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def prefixed(progress: Say, prefix: str) -> Say:
    return lambda line: progress(f"{prefix} {line}")


def wait_until_ready(control: CliControl, timeout_s: float, progress: Say) -> None:
    """A drill starts from a settled cluster with no fault injected."""
    snap = control.snapshot()
    if snap["faults"]:
        active = ", ".join(f"{f['kind']} {f['target']}" for f in snap["faults"])
        raise GeohaError(f"faults are active ({active}): `geoha chaos heal` first")
    deadline = time.monotonic() + timeout_s
    said = False
    while (state := control.settle_state()).missing is not None:
        if time.monotonic() >= deadline:
            raise GeohaError(f"the deployment is not ready for a drill: {state.missing}")
        if not said:
            progress(f"waiting for the deployment to be ready: {state.missing}")
            said = True
        time.sleep(1.0)


def replace_seed(settings: DrillSettings) -> DrillSettings:
    """The next drill of a series: new clients' randomness and new theme names."""
    return dataclasses.replace(settings, seed=secrets.randbits(31), tag=secrets.token_hex(4))


def headline(report: DrillReport) -> str:
    def rtos(values: dict[str, float | None]) -> str:
        return ", ".join(f"{r} {'-' if v is None else f'{v:.1f} s'}" for r, v in values.items())

    dns = report["dns_rto_s"]
    verdict = "PASSED" if report["verdict"]["ok"] else "FAILED"
    return (
        f"{verdict}: write RTO {rtos(report['write_rto_s'])}; read RTO "
        f"{rtos(report['read_rto_s'])}; DNS RTO {'-' if dns is None else f'{dns:.1f} s'}; "
        f"{report['acked_writes']} acknowledged writes, {report['acked_lost']} lost, "
        f"{report['duplicated']} duplicated; split-brain moments {report['split_brain_moments']}"
    )


def saved_reports(folder: Path) -> list[Path]:
    """report.json in `folder`, or in each of its run-N folders."""
    if (folder / "report.json").is_file():
        return [folder / "report.json"]
    runs = sorted(folder.glob("run-*/report.json"), key=lambda p: int(p.parent.name[4:] or 0))
    if not runs:
        raise BadInput(f"--report: a folder with report.json or run-N/report.json (got {folder})")
    return runs


def cmd_verify(args: argparse.Namespace) -> int:
    """Every write a saved drill report lists, counted again on the current primary."""
    if args.report is None:
        raise BadInput("--report: required with `drill verify` (the folder a drill wrote)")
    spec, plan = load(args)
    sync = spec.replication is ReplicationMode.SYNC
    broken: list[str] = []
    for path in saved_reports(Path(args.report)):
        try:
            writes = [
                WriteRecord(name, -1, 0.0, WriteOutcome(outcome))
                for name, outcome in written_names(json.loads(path.read_text(encoding="utf-8")))
            ]
        except (OSError, ValueError, KeyError) as exc:
            raise BadInput(f"--report: {path} is no drill report ({exc})") from None
        dsn = cluster.dsn(plan, next(iter(spec.data_regions)), write=True)
        try:
            check = check_writes(writes, count_names(dsn, [w.name for w in writes]))
        except psycopg.Error as exc:
            raise GeohaError(f"cannot reach the primary: {exc}".strip()) from None
        say(
            f"{path}: {check.acked} acknowledged writes: {len(check.lost)} missing, "
            f"{len(check.duplicated)} stored more than once"
        )
        if check.lost and sync:
            broken.append(f"{path}: acknowledged writes missing: {', '.join(check.lost)}")
        if check.duplicated:
            broken.append(f"{path}: stored more than once: {', '.join(check.duplicated)}")
    if broken:
        raise DrillFailed(broken)
    return EXIT_OK
