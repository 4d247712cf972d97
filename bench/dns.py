"""Global DNS benchmark: server throughput and latency, failover detection, controller idle CPU.

Reproduce: .venv/bin/python -m bench.dns [--runs 5] [--seconds 10] [--inflight 1,16,64]
Results: docs/BENCHMARKS.md (section dns) and bench/results/dns.json.
Targets (issue "Global DNS and monitor"): >= 5,000 queries/s on one core; a dead region's
entry out of the answers within interval x threshold + 1 s (4 s with the reference 1 s x 3);
controller idle CPU < 2 % of one core.

1. Throughput: a load client (`python -m bench.dns_load`, its own process on core 1) keeps K
   UDP queries for `app.geoha.test A` in flight for a fixed time, dnsperf-style: each answer
   sends the next query, a query unanswered after 1 s counts as lost and is replaced. Against
   (a) a standalone `DnsServer` (`python -m bench.dns serve`, its own process on core 0) and
   (b) the controller's server in a running bench deployment.
2. Failover detection: `geoha chaos kill-node delhi-fe` while one query goes every 50 ms
   (200 ms timeout) until delhi's address has been absent for 3 s; the time from issuing the
   command to the last answer naming delhi and to the controller's `dns_health` event (and
   to its `node_killed` event, which comes late here: see `reap_wait`).
3. Idle CPU: the controller process's CPU time (reconcile loop, DNS server and health
   checks, health monitor) over 30 s of a ready, unloaded deployment, then where it goes
   (py-spy, when installed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from dnslib import DNSRecord  # type: ignore[import-untyped]

from bench.common import (
    BENCH_NETS,
    REPO,
    bench_deployment,
    machine_facts,
    min_median_max,
    write_json,
    write_section,
)
from bench.dns_load import CLIENT_CORE, QUERY_TIMEOUT_S, WARMUP_S, bench_env, run_client
from geoha.plan import NodeRole
from geoha.runtime import control
from geoha.runtime.controller import controller_pid as recorded_controller_pid
from geoha.spec import Dns
from geoha.traffic.dns import WeightedRecord, ZoneConfig
from geoha.traffic.dns_server import DnsServer, DnsState
from tests.deployment import Deployment

PROBE_EVERY_S = 0.05
PROBE_TIMEOUT_S = 0.2
QUIET_AFTER_S = 3.0
"""Failover: stop querying once delhi's address has been absent this long."""
FAILOVER_MAX_S = 30.0
IDLE_SETTLE_S = 5.0
PROFILE_RATE_HZ = 500
SERVER_CORE = "0"
"""The core the standalone server is pinned to (the load client has the other)."""
DNS_DEFAULTS = Dns()
QPS_TARGET = 5000
IDLE_TARGET_PCT = 2.0


# -- the standalone server (its own process) ---------------------------------------------------


def standalone_zone(address: str) -> tuple[ZoneConfig, list[WeightedRecord]]:
    """The reference zone and records (weights 50/50), as the controller builds them."""
    zone = ZoneConfig(
        zone=DNS_DEFAULTS.zone, name=DNS_DEFAULTS.fqdn, ttl_s=DNS_DEFAULTS.ttl_s, ns_address=address
    )
    records = [
        WeightedRecord(set_id=region, region=region, address=addr, weight=50)
        for region, addr in (("delhi", "127.150.0.5"), ("chennai", "127.160.0.5"))
    ]
    return zone, records


async def serve(address: str) -> None:
    """A DnsServer on `address`, a free port printed on stdout; until SIGTERM."""
    zone, records = standalone_zone(address)
    state = DnsState()
    state.set_records(records)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with DnsServer(address, 0, zone, state) as server:
        print(server.port, flush=True)
        await stop.wait()
    print(json.dumps({"rcodes": dict(state.rcodes), "dropped": dict(state.dropped)}), flush=True)


@contextlib.contextmanager
def standalone_server(address: str) -> Iterator[tuple[str, int]]:
    """`python -m bench.dns serve` on SERVER_CORE: its HOST:PORT and pid."""
    argv = [sys.executable, "-m", "bench.dns", "serve", "--address", address]
    proc = subprocess.Popen(
        ["taskset", "-c", SERVER_CORE, *argv],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=bench_env(),
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"{address}:{port}", proc.pid
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def measure_standalone(inflights: list[int], seconds: float) -> list[dict[str, Any]]:
    results = []
    with standalone_server(BENCH_NETS.dns) as (server, pid):
        for k in inflights:
            result = run_client(server, DNS_DEFAULTS.fqdn, k, seconds, pid)
            results.append(result)
            print(f"standalone K={k}: {result}", flush=True)
    return results


# -- the deployment: idle CPU, the controller's server, failover detection ---------------------


def dns_status(dep: Deployment) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(dep.geoha("dns", "--json").stdout)
    return data


def all_healthy(dep: Deployment) -> bool:
    return all(r["healthy"] for r in dns_status(dep)["records"])


def controller_pid(dep: Deployment) -> int:
    pid = recorded_controller_pid(dep.run_dir)
    if pid is None:
        raise RuntimeError(f"no controller pid recorded in {dep.run_dir}")
    return pid


def measure_idle(dep: Deployment, seconds: float, windows: int) -> dict[str, Any]:
    """The controller's CPU in `windows` back-to-back windows of `seconds`, with nothing asking
    it anything; per second too (psutil counts in 10 ms ticks: 1 % steps per second)."""
    proc = psutil.Process(controller_pid(dep))
    time.sleep(IDLE_SETTLE_S)
    per_second: list[float] = []
    per_window: list[float] = []
    last_cpu, last = cpu_seconds(proc), time.monotonic()
    for _ in range(windows):
        window_cpu, window_start = last_cpu, last
        while last - window_start < seconds:
            time.sleep(1.0)
            cpu, now = cpu_seconds(proc), time.monotonic()
            per_second.append(round(100 * (cpu - last_cpu) / (now - last), 2))
            last_cpu, last = cpu, now
        per_window.append(round(100 * (last_cpu - window_cpu) / (last - window_start), 2))
    return {
        "seconds": seconds,
        "windows_pct": per_window,
        "cpu_pct": round(statistics.mean(per_window), 2),
        "per_second_pct": per_second,
        "threads": proc.num_threads(),
    }


def cpu_seconds(proc: psutil.Process) -> float:
    """User + system CPU time of `proc`."""
    return float(sum(proc.cpu_times()[:2]))


def py_spy() -> str | None:
    """The py-spy beside this interpreter or on PATH (not a dependency: `pip install py-spy`)."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


# Where a sample of the controller was: the first bucket with a pattern in its stack names it.
PROFILE_BUCKETS = [
    ("node health probes of the reconcile loop (httpx)", ("RoleKind.probe",)),
    ("DNS health checks (httpx)", ("GlobalDns.probe", "HealthChecker")),
    (
        "health monitor (API checks, pg_stat_replication, SQLite)",
        ("Monitor.", "MonitorStore", "geoha/ops/"),
    ),
    ("DNS server", ("DnsServer", "_UdpProtocol")),
    ("HTTP client, its caller cut off the sample", ("httpx/", "httpcore/", "anyio/", "h11/")),
]
# Costs inside the buckets, counted wherever every pattern of one is in a stack.
PROFILE_ACROSS = [
    (
        "httpcore's failed `import sniffio` (on every call)",
        ("current_async_library", "_find_and_load"),
    ),
    ("opening TCP connections", ("connect_tcp",)),
    ("closing connections", ("_close_connections",)),
]
CONTROLLER_ENTRY = ("main (geoha/runtime/controller.py", "<module> (geoha/runtime/controller.py")


def profile_bucket(frames: list[str]) -> str:
    stack = ";".join(frames)
    for label, needles in PROFILE_BUCKETS:
        if any(x in stack for x in needles):
            return label
    if any("geoha/" in f and not f.startswith(CONTROLLER_ENTRY) for f in frames):
        return "other geoha code"
    return "asyncio event loop and the rest"


def profile_buckets(raw: str) -> dict[str, Any]:
    """py-spy's raw (collapsed) stacks sorted into PROFILE_BUCKETS and PROFILE_ACROSS."""
    buckets: Counter[str] = Counter()
    across: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        buckets[profile_bucket(stack.split(";"))] += n
        for label, needles in PROFILE_ACROSS:
            if all(x in stack for x in needles):
                across[label] += n
    return {"samples": total, "buckets": dict(buckets), "across": dict(across)}


def profile_controller(pid: int, seconds: float) -> dict[str, Any] | None:
    """py-spy's on-CPU samples of the controller over `seconds`, bucketed; None without py-spy."""
    spy = py_spy()
    if spy is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "controller.raw"
        argv = [spy, "record", "-p", str(pid), "-d", str(round(seconds)), "-r"]
        argv += [str(PROFILE_RATE_HZ), "--nonblocking", "-f", "raw", "-o", str(out)]
        subprocess.run(argv, capture_output=True, timeout=seconds + 60, check=True)
        result = profile_buckets(out.read_text())
    version = subprocess.run([spy, "--version"], capture_output=True, text=True, check=False)
    return {
        **result,
        "seconds": seconds,
        "rate_hz": PROFILE_RATE_HZ,
        "py_spy": version.stdout.strip(),
    }


def reap_wait(samples: int) -> list[float]:
    """How long `psutil.wait_procs` takes for a SIGKILLed parent and its SIGKILLed child (the
    way the controller kills a node), on this machine: the child waits for init to reap it."""
    waits = []
    for _ in range(samples):
        parent = subprocess.Popen(["bash", "-c", "sleep 60 & wait"])
        time.sleep(0.2)
        procs = [psutil.Process(parent.pid), *psutil.Process(parent.pid).children()]
        for proc in procs:
            proc.send_signal(signal.SIGKILL)
        started = time.monotonic()
        psutil.wait_procs(procs, timeout=5)
        waits.append(round(time.monotonic() - started, 3))
        parent.wait()
    return waits


def measure_controller_server(
    dep: Deployment, inflights: list[int], seconds: float
) -> list[dict[str, Any]]:
    status = dns_status(dep)
    results = []
    for k in inflights:
        result = run_client(status["server"], status["name"], k, seconds, controller_pid(dep))
        results.append(result)
        print(f"controller K={k}: {result}", flush=True)
    return results


@dataclass
class Prober:
    """One A query every PROBE_EVERY_S from a thread, each answer's time and address kept."""

    server: str
    name: str
    answers: list[tuple[float, str]] = field(default_factory=list)
    """(time.monotonic() of the answer, the address or "error: ...")."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Prober:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        host, _, port = self.server.rpartition(":")
        question = DNSRecord.question(self.name, "A")
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                reply = DNSRecord.parse(question.send(host, int(port), timeout=PROBE_TIMEOUT_S))
                rdata = [str(r.rdata) for r in reply.rr]
                got = rdata[0] if rdata else "error: empty"
            except (OSError, ValueError) as exc:
                got = f"error: {type(exc).__name__}"
            self.answers.append((time.monotonic(), got))
            next_at += PROBE_EVERY_S
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def last(self, address: str) -> float | None:
        times = [t for t, got in list(self.answers) if got == address]
        return times[-1] if times else None


def dns_event_time(dep: Deployment, region: str, health: str, since: float) -> float | None:
    """time.monotonic() of the controller's last `dns_health` event for `region` to `health`,
    if it came after `since` (a time.monotonic())."""
    events = control.call(dep.run_dir, "status")["events"]
    offset = time.time() - time.monotonic()
    for event in reversed(events):
        fields = event.get("fields", {})
        if (
            event["kind"] == "dns_health"
            and fields.get("region") == region
            and fields.get("health") == health
        ):
            at = float(event["t"]) - offset
            return at if at > since else None
    return None


def one_failover(dep: Deployment, server: str, name: str) -> dict[str, Any]:
    """Kill delhi's frontend LB while probing; every time is from the command being issued."""
    delhi, chennai = (dep.plan.only(r, NodeRole.FRONTEND_LB).address for r in ("delhi", "chennai"))
    dep.wait_for("both regions healthy in DNS", lambda: all_healthy(dep))
    prober = Prober(server, name).start()
    try:
        dep.wait_for("delhi in the answers", lambda: prober.last(delhi) is not None, 10)
        issued = time.monotonic()
        dep.geoha("chaos", "kill-node", "delhi-fe")
        returned = time.monotonic()
        dep.wait_for(
            "delhi out of the answers",
            lambda: (
                (last := prober.last(delhi)) is not None
                and time.monotonic() - max(last, issued) >= QUIET_AFTER_S
            ),
            FAILOVER_MAX_S,
        )
    finally:
        prober.stop()
    killed = dep.event_time("node_killed", "delhi-fe")
    last_delhi = prober.last(delhi)
    assert last_delhi is not None
    after = [got for t, got in prober.answers if t > issued]
    unhealthy = dns_event_time(dep, "delhi", "unhealthy", issued)
    health_now = {r["region"]: r["healthy"] for r in dns_status(dep)["records"]}
    dep.geoha("chaos", "start-node", "delhi-fe")
    started = time.monotonic()
    back_s = dep.wait_for("delhi healthy again in DNS", lambda: all_healthy(dep))
    healthy_again = dns_event_time(dep, "delhi", "healthy", started)
    return {
        "last_delhi_answer_s": round(last_delhi - issued, 3),
        "last_delhi_answer_after_event_s": round(last_delhi - killed, 3),
        "dns_unhealthy_event_s": None if unhealthy is None else round(unhealthy - issued, 3),
        "node_killed_event_s": round(killed - issued, 3),
        "kill_command_s": round(returned - issued, 3),
        "answers_after_kill": {
            "delhi": after.count(delhi),
            "chennai": after.count(chennai),
            "error": sum(1 for got in after if got.startswith("error")),
        },
        "health_after": health_now,
        "healthy_again_s": round(healthy_again - started if healthy_again else back_s, 2),
    }


def measure_deployment(
    runs: int, inflights: list[int], seconds: float, idle_s: float, idle_windows: int
) -> dict[str, Any]:
    dep = bench_deployment()
    try:
        up_started = time.monotonic()
        dep.up()
        dep.wait_for("both regions healthy in DNS", lambda: all_healthy(dep))
        print(f"up and healthy in DNS after {time.monotonic() - up_started:.1f} s", flush=True)
        status = dns_status(dep)
        idle = measure_idle(dep, idle_s, idle_windows)
        print(f"controller idle: {idle}", flush=True)
        idle["profile"] = profile_controller(controller_pid(dep), idle_s)
        print(f"controller idle profile: {idle['profile']}", flush=True)
        controller = measure_controller_server(dep, inflights, seconds)
        failovers = []
        for i in range(runs):
            result = one_failover(dep, status["server"], status["name"])
            failovers.append(result)
            print(f"failover {i + 1}: {result}", flush=True)
        config = {
            "server": status["server"],
            "interval_s": status["interval_s"],
            "failure_threshold": status["failure_threshold"],
            "ttl": status["ttl"],
        }
    finally:
        dep.close()
    return {"config": config, "idle": idle, "controller": controller, "failovers": failovers}


# -- the report ---------------------------------------------------------------------------------


def load_rows(label: str, results: list[dict[str, Any]]) -> list[str]:
    rows = []
    for r in results:
        rows.append(
            f"| {label} | {r['inflight']} | {r['qps']:,.0f} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['lost']} / {r['not_answer']} | {r['server_cpu_pct']:.0f} | "
            f"{r['client_cpu_pct']:.0f} |"
        )
    return rows


def throughput_part(data: dict[str, Any]) -> list[str]:
    server = data["deployment"]["config"]["server"]
    return [
        f"Throughput method: a load client of its own (`python -m bench.dns_load`, pinned to "
        f"core {CLIENT_CORE} with taskset) keeps K UDP queries for `{data['name']} A` (no EDNS) "
        f"in flight, dnsperf-style: each answer sends the next query; a query unanswered after "
        f"{QUERY_TIMEOUT_S:g} s counts as lost and is replaced. {WARMUP_S:g} s of warm-up, then "
        f"{data['seconds']:g} s counted; latency is the client's send-to-receive time. "
        f"Standalone: one `DnsServer` (the reference zone, two weighted records) in its own "
        f"process pinned to core {SERVER_CORE}. Controller: the server of the running bench "
        f"deployment ({server}), not pinned, sharing the cores with the whole idle stack. CPU "
        f"columns are % of one core over the counted window (server: the server's or the "
        f"controller's process; client: the load client itself). With K = 1 the rate is bound "
        f"by the round trip between two processes, not by the server's CPU.",
        "",
        "| server | K in flight | queries/s | p50 ms | p99 ms | lost / not an answer "
        "| server CPU % | client CPU % |",
        "|---|---|---|---|---|---|---|---|",
        *load_rows(f"standalone, core {SERVER_CORE}", data["standalone"]),
        *load_rows("controller's", data["deployment"]["controller"]),
        "",
        f"Target: >= {QPS_TARGET:,} queries/s on one core; the standalone server's best here "
        f"is {max(r['qps'] for r in data['standalone']):,.0f}.",
    ]


def failover_part(data: dict[str, Any]) -> list[str]:
    config, failovers = data["deployment"]["config"], data["deployment"]["failovers"]
    target_s = config["interval_s"] * config["failure_threshold"] + 1

    def row(label: str, key: str, target: str = "-") -> str:
        values = [f[key] for f in failovers if f[key] is not None]
        return f"| {label} | {min_median_max(values)} | {target} | {len(values)} |"

    return [
        f"Failover method: the bench deployment (whole stack; DNS checks every "
        f"{config['interval_s']} s, unhealthy after {config['failure_threshold']} failures), "
        f"both regions healthy in `geoha dns --json`; a prober thread asks `{data['name']} A` "
        f"every {PROBE_EVERY_S * 1000:.0f} ms ({PROBE_TIMEOUT_S * 1000:.0f} ms timeout) while "
        f"`geoha chaos kill-node delhi-fe` runs, until delhi's address has been absent for "
        f"{QUIET_AFTER_S:g} s; then `geoha chaos start-node` and a wait for both regions "
        f"healthy. Times are from the moment the kill command was issued (before its process "
        f"starts), so they include the command's own startup and the controller's decision: an "
        f"upper bound of the time after the real kill. The controller's `node_killed` event is "
        f"no better a start on this machine: it is logged once every process of the node is "
        f"gone, and the haproxy worker, orphaned by the kill, stays a zombie until the init "
        f"process reaps it. `psutil.wait_procs` on a SIGKILLed parent and child, as the "
        f"controller's kill does, returned after {min_median_max(data['reap_wait_s'])} s here "
        f"(min / median / max of {len(data['reap_wait_s'])}); the unhealthy event, three failed "
        f"checks {config['interval_s']} s apart, shows the LB was gone well before the "
        f"`node_killed` event. The prober's resolution is {PROBE_EVERY_S * 1000:.0f} ms.",
        "",
        "| measurement | min / median / max | target | runs |",
        "|---|---|---|---|",
        row(
            "kill issued -> last answer naming delhi (s)", "last_delhi_answer_s", f"<= {target_s:g}"
        ),
        row("kill issued -> `dns_health` event: delhi unhealthy (s)", "dns_unhealthy_event_s"),
        row("kill issued -> `geoha chaos kill-node` returned (s)", "kill_command_s"),
        row("kill issued -> `node_killed` event (s)", "node_killed_event_s"),
        row(
            "`node_killed` event -> last answer naming delhi (s)", "last_delhi_answer_after_event_s"
        ),
        row("`start-node` returned -> `dns_health` event: delhi healthy (s)", "healthy_again_s"),
    ]


def idle_part(data: dict[str, Any]) -> list[str]:
    idle = data["deployment"]["idle"]
    n = len(idle["windows_pct"])
    lines = [
        f"Idle method: with the deployment ready, both regions healthy and nothing asking the "
        f"controller anything ({IDLE_SETTLE_S:g} s settle), the controller process's user + "
        f"system CPU time (psutil, the pid in `RUN_DIR/controller.pid`) over "
        f"{n} back-to-back windows of {idle['seconds']:.0f} s. The controller runs the "
        f"reconcile loop (every node's health probed each cycle, at most 1 s apart), the DNS "
        f"server, the DNS health checks and the health monitor (each round: one API check per "
        f"region, pg_stat_replication on the primary, one SQLite insert).",
        "",
        "| measurement | min / median / max | mean | target | windows |",
        "|---|---|---|---|---|",
        f"| controller idle CPU, % of one core, per {idle['seconds']:.0f} s window | "
        f"{min_median_max(idle['windows_pct'])} | {idle['cpu_pct']:.2f} | "
        f"< {IDLE_TARGET_PCT:g} | {n} |",
    ]
    profile = idle.get("profile")
    if not profile or not profile["samples"]:
        return [*lines, "", "No profile: py-spy is not installed (`pip install py-spy`)."]
    total = profile["samples"]
    lines += [
        "",
        f"Where the idle time goes: {profile['py_spy']} sampled the idle controller "
        f"({profile['rate_hz']} Hz, `--nonblocking`, {profile['seconds']:.0f} s right after the "
        f"measurement above) and kept {total} on-CPU samples. Each sample is put in the first "
        f"bucket whose function is in its stack; the last rows are costs inside those buckets.",
        "",
        "| where | share of on-CPU samples |",
        "|---|---|",
    ]
    for label, n in sorted(profile["buckets"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| {label} | {100 * n / total:.0f} % |")
    for label, n in sorted(profile["across"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| (within the above) {label} | {100 * n / total:.0f} % |")
    return lines


def report(data: dict[str, Any]) -> str:
    facts = data["machine"]
    return "\n".join(
        [
            "## Global DNS (issue: global DNS and monitor)",
            "",
            f"Machine: {facts['cores']} cores ({facts['cpu']}), {facts['memory_gib']} GiB, "
            f"kernel {facts['kernel']}, Python {facts['python']}; load average after the run "
            f"{[round(x, 2) for x in facts['load_average_after']]}. Measured {data['date']}.",
            "",
            "Reproduce: `.venv/bin/python -m bench.dns` (add `--runs N`, `--seconds S`, "
            "`--inflight 1,16,64`; the idle profile needs `pip install py-spy`).",
            "",
            *throughput_part(data),
            "",
            *failover_part(data),
            "",
            *idle_part(data),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    srv = sub.add_parser("serve", help="a standalone DnsServer on a free port, until SIGTERM")
    srv.add_argument("--address", required=True)
    parser.add_argument("--runs", type=int, default=5, help="failover runs")
    parser.add_argument("--seconds", type=float, default=10.0, help="counted load per run")
    parser.add_argument("--inflight", default="1,16,64", help="queries in flight, per run")
    parser.add_argument("--idle-seconds", type=float, default=30.0, help="one idle window")
    parser.add_argument("--idle-windows", type=int, default=3)
    args = parser.parse_args()
    if args.command == "serve":
        asyncio.run(serve(args.address))
        return
    inflights = [int(k) for k in args.inflight.split(",")]
    facts = machine_facts()
    standalone = measure_standalone(inflights, args.seconds)
    reap = reap_wait(3)
    print(f"wait_procs after SIGKILL of a parent and child: {reap}", flush=True)
    deployment = measure_deployment(
        args.runs, inflights, args.seconds, args.idle_seconds, args.idle_windows
    )
    facts["load_average_after"] = list(os.getloadavg())
    data = {
        "machine": facts,
        "date": time.strftime("%Y-%m-%d"),
        "name": DNS_DEFAULTS.fqdn,
        "seconds": args.seconds,
        "standalone": standalone,
        "reap_wait_s": reap,
        "deployment": deployment,
    }
    write_json("dns", data)
    markdown = report(data)
    write_section("dns", markdown)
    print(markdown)
    last = [f["last_delhi_answer_s"] for f in deployment["failovers"]]
    print(f"failover median {statistics.median(last):.2f} s", flush=True)


if __name__ == "__main__":
    main()
