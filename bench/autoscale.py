"""The autoscaler: a load step to a new API instance serving, a scale-in under a light load,
and what the autoscalers cost the controller.

Reproduce: .venv/bin/python -m bench.autoscale [--runs 5] [--connections 8]
           [--light-rate 40] [--light-duration 90] [--idle-window 60] [--load-window 30]
           [--profile-window 30]
Results: docs/BENCHMARKS.md (section autoscale), bench/results/autoscale.json.
Targets (issue "autoscaling"): load step -> new instance serving traffic <= 5 s (>= 5 runs);
0 failed requests during scale-in; the autoscalers' overhead < 2 % of one core. The seed's
cloud figures, for comparison: 5-10 min with cloud-init, < 2 min with pre-baked images.

Method (in full in the section): delhi's API tier from one instance, the reference policy;
wrk is the load step, a prober at delhi's entry and the controller's events time the new
instance; `geoha load --region delhi` runs through the scale-in.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.autoscale_report import report, summary
from bench.common import REPO, bench_deployment, machine_facts, write_json, write_section
from bench.dns import PROFILE_RATE_HZ, profile_bucket, py_spy
from geoha.plan import NodeRole
from geoha.runtime import control
from tests.deployment import Deployment, stopped_at_exit

REGION = "delhi"
TIER = "api"
POLICY = {
    "min": 1,
    "desired": 1,
    "max": 3,
    "scale_up_cpu_percent": 70,
    "scale_down_cpu_percent": 30,
    "window_s": 10,
    "scale_out_cooldown_s": 5,
    "scale_in_stabilization_s": 60,
}
HEAVY_READ = "/api/v1/themes?limit=100"
PROBE = "/api/v1/themes?limit=1"
PROBE_INTERVAL_S = 0.1
POLL_S = 0.1
THEMES = 100
WRK_LIMIT_S = 90
"""wrk's own bound (-d): it stops by itself even if this process is gone."""
GROW_TIMEOUT_S = 60.0
SETTLE_TIMEOUT_S = 240.0
AUTOSCALER_FRAMES = (
    "geoha/runtime/autoscaler.py",
    "geoha/ops/autoscale.py",
    "geoha/traffic/lb_admin.py",
    "autoscale (geoha/runtime/controller.py",
)
"""A profile sample with one of these in its stack is the autoscalers' work."""


def policy_toml(policy: dict[str, float]) -> str:
    lines = [f"{key} = {value:g}" for key, value in policy.items()]
    return f"\n[regions.{REGION}.{TIER}.autoscale]\n" + "\n".join(lines) + "\n"


# -- the controller's view ----------------------------------------------------------------
def controller(dep: Deployment) -> dict[str, Any]:
    status: dict[str, Any] = control.call(dep.run_dir, "status")
    return status


def group_of(status: dict[str, Any], region: str = REGION, tier: str = TIER) -> dict[str, Any]:
    return next(g for g in status["autoscale"] if g["region"] == region and g["tier"] == tier)


def at_rest(group: dict[str, Any]) -> bool:
    """At its min, every member serving, nothing draining."""
    n = group["min"]
    return bool(
        group["desired"] == n
        and group["current"] == n
        and len(group["instances"]) == n
        and not group["draining"]
    )


@dataclass
class EventLog:
    """The controller's events after a given sequence number, gathered poll after poll."""

    after: int
    events: dict[int, dict[str, Any]] = field(default_factory=dict)

    def add(self, status: dict[str, Any]) -> None:
        for event in status["events"]:
            if event["seq"] > self.after:
                self.events.setdefault(event["seq"], event)

    def first(self, kind: str, node: str | None = None, **fields: Any) -> dict[str, Any] | None:
        for seq in sorted(self.events):
            event = self.events[seq]
            if event["kind"] != kind or (node is not None and event["node"] != node):
                continue
            if all(event["fields"].get(k) == v for k, v in fields.items()):
                return event
        return None

    def scaled(self, grow: bool) -> dict[str, Any] | None:
        """The first `autoscaled` decision of delhi's API tier growing (or shrinking to 1)."""
        for seq in sorted(self.events):
            event = self.events[seq]
            f = event["fields"]
            if event["kind"] != "autoscaled" or (f.get("region"), f.get("tier")) != (REGION, TIER):
                continue
            if (f["desired"] >= 2) if grow else (f["desired"] == 1):
                return event
        return None


def last_seq(dep: Deployment) -> int:
    events = controller(dep)["events"]
    return int(events[-1]["seq"]) if events else 0


def wait_at_rest(dep: Deployment, everyone: bool, timeout_s: float) -> dict[str, Any]:
    """Until delhi's API tier (`everyone`: every group) is at its min and no instance that
    left is still running; the controller's status then."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = controller(dep)
        groups = status["autoscale"] if everyone else [group_of(status)]
        members = {name for g in status["autoscale"] for name in g["instances"]}
        slots = {n.name for n in dep.plan.in_region(REGION, NodeRole.API)}
        strays = [n for n in slots - members if status["nodes"][n]["running"]]
        if all(at_rest(g) for g in groups) and not strays:
            return status
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the autoscaler's groups not at rest after {timeout_s:g} s: "
                f"{[(g['region'], g['tier'], g['last_decision']) for g in groups]}, "
                f"still running: {strays}"
            )
        time.sleep(0.5)


# -- load ---------------------------------------------------------------------------------
def start_wrk(dep: Deployment, connections: int) -> subprocess.Popen[str]:
    url = dep.entry_url(REGION) + HEAVY_READ
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{WRK_LIMIT_S}s", url]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)


def start_light_load(dep: Deployment, rate: float, duration: float) -> subprocess.Popen[str]:
    """`geoha load --region delhi` as Deployment.geoha runs a command, in the background."""
    argv = [
        sys.executable, "-m", "geoha", "load", "--file", str(dep.topology),
        "--region", REGION, "--rate", f"{rate:g}", "--duration", f"{duration:g}", "--json",
    ]  # fmt: skip
    pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    return subprocess.Popen(
        argv,
        cwd=dep.base,
        env={**os.environ, "PYTHONPATH": pythonpath},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def seed_themes(dep: Deployment) -> None:
    """Enough themes that a page of 100 is the API's heaviest read."""
    with httpx.Client(base_url=dep.entry_url(REGION), timeout=10) as client:
        for i in range(THEMES):
            answer = client.post(
                "/api/v1/themes",
                json={"name": f"bench-autoscale-{i}", "config": {"primary": "#112233"}},
            )
            answer.raise_for_status()


class Prober(threading.Thread):
    """Reads one theme at delhi's entry every PROBE_INTERVAL_S: who answered, and when."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.halt = threading.Event()
        self.answers: list[tuple[float, str | None]] = []
        """(wall-clock time the answer arrived, its X-Served-By instance or None)."""
        self.failed = 0

    def run(self) -> None:
        with httpx.Client(timeout=2) as client:
            while not self.halt.is_set():
                try:
                    answer = client.get(self.url)
                    who = answer.headers.get("x-served-by", "").split("/", 1)[-1] or None
                    if answer.status_code != 200:
                        self.failed += 1
                    self.answers.append((time.time(), who))
                except httpx.HTTPError:
                    self.failed += 1
                self.halt.wait(PROBE_INTERVAL_S)

    def first_from(self, name: str) -> float | None:
        """When the first answer from `name` arrived."""
        return next((t for t, who in list(self.answers) if who == name), None)


# -- one run ------------------------------------------------------------------------------
def grow(dep: Deployment, args: argparse.Namespace, baseline: set[str]) -> dict[str, Any]:
    """wrk until an instance that was not serving answers the prober; the marks found."""
    log = EventLog(last_seq(dep))
    with stopped_at_exit(start_wrk(dep, args.connections)) as wrk:
        prober = Prober(dep.entry_url(REGION) + PROBE)
        marks: dict[str, Any] = {"t0": time.time()}
        prober.start()
        try:
            marks |= watch_growth(dep, log, prober, baseline, wrk)
        finally:
            prober.halt.set()
            prober.join()
    marks["t_wrk_stop"] = time.time()
    marks["prober_failed"] = prober.failed
    marks["prober_answers"] = len(prober.answers)
    return marks


def joined(log: EventLog, baseline: set[str]) -> str | None:
    """The first delhi API instance that joined its group since the load step."""
    steps = (log.events[seq] for seq in sorted(log.events))
    return next(
        (
            str(e["node"])
            for e in steps
            if e["kind"] == "instance_step"
            and e["fields"].get("what") == "joins its group"
            and e["node"] not in baseline
            and e["node"].startswith(f"{REGION}-{TIER}-")
        ),
        None,
    )


def watch_growth(
    dep: Deployment,
    log: EventLog,
    prober: Prober,
    baseline: set[str],
    wrk: subprocess.Popen[str],
) -> dict[str, Any]:
    """Poll the controller until the decision, the new instance enabled in the backend LB
    and its first answer to the prober are all seen (or GROW_TIMEOUT_S passed)."""
    enable = f"enabled in {dep.plan.only(REGION, NodeRole.BACKEND_LB).name}"
    t0 = time.time()
    marks: dict[str, Any] = {}
    while True:
        log.add(controller(dep))
        decision, new = log.scaled(grow=True), joined(log, baseline)
        first = prober.first_from(new) if new is not None else None
        enabled = log.first("instance_step", new, what=enable) if new else None
        if decision is not None and enabled is not None and first is not None:
            break
        if wrk.poll() is not None or time.time() - t0 > GROW_TIMEOUT_S:
            marks["error"] = f"no new instance answered within {time.time() - t0:.0f} s"
            break
        time.sleep(POLL_S)
    if decision is not None:
        marks["t_decision"] = decision["t"]
        marks["decision"] = decision["fields"]["sentence"]
        cpu = re.search(r"CPU (\d+) %", marks["decision"])
        marks["decision_cpu_percent"] = int(cpu.group(1)) if cpu else None
    if new is not None:
        marks["new"] = new
        for key, kind in (("t_started", "node_started"), ("t_healthy", "node_healthy")):
            event = log.first(kind, new)
            marks[key] = event["t"] if event else None
        marks["t_enabled"] = enabled["t"] if enabled else None
        marks["t_first"] = first
    return marks


def shrink(
    dep: Deployment, args: argparse.Namespace, new: str | None, after: int
) -> dict[str, Any]:
    """The light load while the tier goes back to one; its report and the marks."""
    log = EventLog(after)
    with stopped_at_exit(start_light_load(dep, args.light_rate, args.light_duration)) as load:
        t_load0 = time.time()
        while load.poll() is None:
            log.add(controller(dep))
            time.sleep(0.5)
        t_load1 = time.time()
        out = load.stdout.read() if load.stdout else ""
    report = json.loads(out) if out.strip() else {}
    log.add(wait_at_rest(dep, everyone=False, timeout_s=SETTLE_TIMEOUT_S))
    decision = log.scaled(grow=False)
    lb = dep.plan.only(REGION, NodeRole.BACKEND_LB).name
    draining = log.first("instance_step", new, what=f"draining in {lb}") if new else None
    left = log.first("instance_step", new, what="leaves its group") if new else None
    return {
        "t_load_start": t_load0,
        "t_load_end": t_load1,
        "t_shrink_decision": decision["t"] if decision else None,
        "shrink_decision": decision["fields"]["sentence"] if decision else None,
        "t_draining": draining["t"] if draining else None,
        "t_left": left["t"] if left else None,
        "light": {k: report.get(k) for k in ("requests", "ok", "failed", "outcomes", "ran_s")}
        | {"latency_ms": report.get("latency_ms")},
        "light_exit": load.returncode,
    }


def one_run(dep: Deployment, args: argparse.Namespace, number: int) -> dict[str, Any]:
    status = wait_at_rest(dep, everyone=False, timeout_s=SETTLE_TIMEOUT_S)
    baseline = set(group_of(status)["instances"])
    marks = grow(dep, args, baseline)
    marks |= shrink(dep, args, marks.get("new"), after=last_seq(dep))
    figures = run_figures(marks)
    print(f"run {number}: " + ", ".join(f"{k} {v}" for k, v in figures.items()), flush=True)
    return {"run": number, "baseline": sorted(baseline), **marks, "figures": figures}


def since(marks: dict[str, Any], end: str, start: str) -> float | None:
    a, b = marks.get(start), marks.get(end)
    return None if a is None or b is None else round(b - a, 2)


def run_figures(m: dict[str, Any]) -> dict[str, Any]:
    light = m.get("light", {})
    shrink_at = m.get("t_shrink_decision")
    return {
        "step_to_decision_s": since(m, "t_decision", "t0"),
        "decision_to_started_s": since(m, "t_started", "t_decision"),
        "decision_to_healthy_s": since(m, "t_healthy", "t_decision"),
        "decision_to_enabled_s": since(m, "t_enabled", "t_decision"),
        "decision_to_first_answer_s": since(m, "t_first", "t_decision"),
        "step_to_first_answer_s": since(m, "t_first", "t0"),
        "wrk_stop_to_shrink_decision_s": since(m, "t_shrink_decision", "t_wrk_stop"),
        "draining_to_left_s": since(m, "t_left", "t_draining"),
        "wrk_stop_to_left_s": since(m, "t_left", "t_wrk_stop"),
        "light_requests": light.get("requests"),
        "light_failed": light.get("failed"),
        "shrink_inside_load": shrink_at is not None
        and m["t_load_start"] < shrink_at < m["t_load_end"],
        "left_inside_load": m.get("t_left") is not None
        and m["t_load_start"] < m["t_left"] < m["t_load_end"],
    }


# -- overhead -----------------------------------------------------------------------------
def measure_overhead(dep: Deployment, seconds: float, connections: int | None) -> dict[str, Any]:
    """The autoscalers' CPU (`autoscaler_cpu_s`) and the controller process's over
    `seconds`, idle or under wrk (`connections`), as percent of one core."""
    with wrk_during(dep, connections):
        status = controller(dep)
        proc = psutil.Process(status["pid"])
        log = EventLog(status["events"][-1]["seq"] if status["events"] else 0)
        scaler0, whole0, t0 = status["autoscaler_cpu_s"], process_cpu_s(proc), time.monotonic()
        time.sleep(seconds)
        whole1, t1 = process_cpu_s(proc), time.monotonic()
        status = controller(dep)
        scaler1 = status["autoscaler_cpu_s"]
    log.add(status)
    elapsed = t1 - t0
    figures = {
        "window_s": round(elapsed, 1),
        "under_wrk": connections is not None,
        "groups": len(status["autoscale"]),
        "autoscaler_cpu_s": round(scaler1 - scaler0, 3),
        "autoscaler_percent": round((scaler1 - scaler0) / elapsed * 100, 3),
        "controller_cpu_s": round(whole1 - whole0, 3),
        "controller_percent": round((whole1 - whole0) / elapsed * 100, 3),
        "decisions": [
            e["fields"]["sentence"] for e in log.events.values() if e["kind"] == "autoscaled"
        ],
    }
    print(f"overhead ({'wrk' if connections else 'idle'}): {figures}", flush=True)
    return figures


@contextmanager
def wrk_during(dep: Deployment, connections: int | None) -> Iterator[None]:
    """wrk on delhi's entry for the block's length, or nothing when `connections` is None."""
    if connections is None:
        yield
        return
    with stopped_at_exit(start_wrk(dep, connections)):
        yield


def profile_idle(dep: Deployment, seconds: float) -> dict[str, Any] | None:
    """py-spy's on-CPU samples of the idle controller over `seconds`: the autoscalers'
    share, the rest in bench/dns.py's buckets; None without py-spy."""
    spy = py_spy()
    if spy is None:
        return None
    pid = controller(dep)["pid"]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "controller.raw"
        argv = [spy, "record", "-p", str(pid), "-d", str(round(seconds)), "-r"]
        argv += [str(PROFILE_RATE_HZ), "--nonblocking", "-f", "raw", "-o", str(out)]
        subprocess.run(argv, capture_output=True, timeout=seconds + 60, check=True)
        raw = out.read_text()
    where: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        if any(frame in stack for frame in AUTOSCALER_FRAMES):
            label = "the autoscalers"
        elif "fastfail" in stack:
            label = "fast failover watch"
        else:
            label = profile_bucket(stack.split(";"))
        where[label] += int(count)
    profile = {"seconds": seconds, "rate_hz": PROFILE_RATE_HZ, "where": dict(where)}
    print(f"controller idle profile: {profile}", flush=True)
    return profile | {"samples": sum(where.values())}


def process_cpu_s(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.autoscale", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8, help="wrk's connections")
    parser.add_argument("--light-rate", type=float, default=40.0)
    parser.add_argument("--light-duration", type=float, default=90.0)
    parser.add_argument("--idle-window", type=float, default=60.0)
    parser.add_argument("--load-window", type=float, default=30.0)
    parser.add_argument("--profile-window", type=float, default=30.0, help="0: no profile")
    parser.add_argument(
        "--window",
        type=float,
        default=POLICY["window_s"],
        help="the policy's CPU window, s (default: the reference 10; another value writes "
        "a section of its own)",
    )
    args = parser.parse_args()
    if not 1 <= args.window <= 600:
        parser.error(f"--window: 1 to 600 seconds (got {args.window:g})")
    policy = {**POLICY, "window_s": args.window}
    name = (
        "autoscale" if args.window == POLICY["window_s"] else f"autoscale-window-{args.window:g}s"
    )
    facts = machine_facts()
    dep = bench_deployment(extra=policy_toml(policy))
    runs: list[dict[str, Any]] = []
    overhead: dict[str, Any] = {}
    profile = None
    try:
        dep.up()
        seed_themes(dep)
        wait_at_rest(dep, everyone=True, timeout_s=SETTLE_TIMEOUT_S)
        overhead["idle"] = measure_overhead(dep, args.idle_window, None)
        profile = profile_idle(dep, args.profile_window) if args.profile_window else None
        for number in range(1, args.runs + 1):
            runs.append(one_run(dep, args, number))
        overhead["load"] = measure_overhead(dep, args.load_window, args.connections)
    finally:
        dep.close()
    data: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": facts,
        "args": vars(args),
        "policy": policy,
        "settings": {"probe_interval_s": PROBE_INTERVAL_S, "poll_s": POLL_S, "themes": THEMES},
        "runs": runs,
        "overhead": overhead,
        "idle_profile": profile,
    }
    data["summary"] = summary(data)
    write_json(name, data)
    markdown = report(data)
    write_section(name, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
