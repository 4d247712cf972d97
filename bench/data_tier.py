"""Data tier benchmark: `geoha up` time, kill-primary failover, rejoin, switchover gap.

Reproduce: .venv/bin/python -m bench.data_tier [--runs 5] [--up-runs 3]
Results: docs/BENCHMARKS.md (section data-tier) and bench/results/data_tier.json.
Targets (issue "Foundation"): up <= 30 s, failover median <= 20 s, switchover gap <= 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

from bench.common import (
    REPO,
    bench_deployment,
    machine_facts,
    min_median_max,
    write_json,
    write_section,
)
from geoha.ops.writer import WriterLoop, count_present
from tests.deployment import Deployment

WRITE_INTERVAL_S = 0.02
RESULTS = REPO / "bench" / "results" / "data_tier.json"


def measure_up(runs: int) -> list[dict[str, float]]:
    results = []
    for i in range(runs):
        dep = bench_deployment()
        try:
            started = time.monotonic()
            dep.up()
            wall = time.monotonic() - started
            ready = float(dep.status()["controller"]["phase"] == "ready")
            results.append({"wall_s": round(wall, 2), "ready": ready})
            print(f"up run {i + 1}: {wall:.2f} s", flush=True)
        finally:
            dep.close()
    return results


def other_db(name: str) -> str:
    return "chennai-db" if name == "delhi-db" else "delhi-db"


def start_writer(dep: Deployment, dsn: str, standby: str) -> WriterLoop:
    """A writer loop under way, once `standby` is a replica Patroni may promote."""
    dep.wait_for("a replica that can take over", lambda: dep.can_take_over(standby))
    writer = WriterLoop(dsn, interval_s=WRITE_INTERVAL_S, max_s=120).start()
    try:
        dep.wait_for("writes flowing", lambda: len(writer.acks) >= 50)
    except BaseException:
        writer.stop()
        raise
    return writer


def one_failover(dep: Deployment, dsn: str) -> dict[str, Any]:
    victim = dep.primary()
    assert victim is not None
    survivor = other_db(victim)
    writer = start_writer(dep, dsn, survivor)
    try:
        dep.geoha("chaos", "kill-node", victim)
        killed_at = dep.event_time("node_killed", victim)
        dep.wait_for("new primary", lambda: dep.primary() == survivor)
        dep.wait_for(
            "a write after the kill", lambda: writer.first_ack_after(killed_at) is not None
        )
    finally:
        writer.stop()
    first = writer.first_ack_after(killed_at)
    assert first is not None
    present = count_present(dsn, writer.acked)
    restarted_at = time.monotonic()
    dep.geoha("chaos", "start-node", victim)
    rejoin = dep.wait_for("rejoin", lambda: dep.replica_streaming(victim), 180)
    return {
        "killed": victim,
        "failover_s": round(first.at - killed_at, 2),
        "acked": len(writer.acks),
        "lost": len(writer.acks) - present,
        "rejoin_s": round(time.monotonic() - restarted_at if rejoin else 0.0, 2),
    }


def one_switchover(dep: Deployment, dsn: str) -> dict[str, Any]:
    current = dep.primary()
    assert current is not None
    target = other_db(current)
    writer = start_writer(dep, dsn, target)
    try:
        started = time.monotonic()
        dep.geoha("switchover", "--to", target.removesuffix("-db"))
        command_s = time.monotonic() - started
        dep.wait_for(
            "writes after", lambda: writer.first_ack_after(time.monotonic() - 0.1) is not None
        )
        ended = time.monotonic()
    finally:
        writer.stop()
    return {
        "to": target,
        "gap_s": round(writer.longest_gap_between(started, ended), 2),
        "command_s": round(command_s, 2),
        "lost": len(writer.acks) - count_present(dsn, writer.acked),
    }


def measure_data_tier(runs: int, switchovers: int, replication: str) -> dict[str, Any]:
    dep = bench_deployment(replication)
    try:
        dep.up()
        dsn = dep.dsn("chennai", write=True)
        failovers = []
        for i in range(runs):
            result = one_failover(dep, dsn)
            failovers.append(result)
            print(f"{replication} failover {i + 1}: {result}", flush=True)
        switches = []
        for i in range(switchovers):
            result = one_switchover(dep, dsn)
            switches.append(result)
            print(f"{replication} switchover {i + 1}: {result}", flush=True)
    finally:
        dep.close()
    return {"failovers": failovers, "switchovers": switches}


METHOD = (
    "Method: each deployment is the reference topology on its own loopback nets. A writer "
    "inserts a row every {interval_ms:.0f} ms through `geoha dsn --region chennai --write` "
    "(all nodes, target_session_attrs=read-write, connect_timeout=2), reconnecting after each "
    "error. Failover: `geoha chaos kill-node` on the current primary (SIGKILL to Patroni, the "
    "postmaster and every child); time from the controller's kill event (logged once every "
    "process of the node is gone) to the first acknowledged insert. Rejoin: `geoha chaos "
    "start-node` until the node streams as a replica. Lost: acknowledged inserts missing "
    "afterwards. Switchover gap: longest time without an acknowledged insert while `geoha "
    "switchover` runs. Runs alternate the primary."
)


def row(label: str, values: list[float], target: str) -> str:
    return f"| {label} | {min_median_max(values)} | {target} | {len(values)} |"


def report(
    up: list[dict[str, float]], tiers: dict[str, dict[str, Any]], facts: dict[str, Any]
) -> str:
    lines = [
        "## Data tier (issue: foundation)",
        "",
        f"Machine: {facts['cores']} cores ({facts['cpu']}), {facts['memory_gib']} GiB, "
        f"kernel {facts['kernel']}; {facts['postgres']}; {facts['etcd']}; {facts['patroni']}. "
        f"Measured {time.strftime('%Y-%m-%d')}.",
        "",
        "Reproduce: `.venv/bin/python -m bench.data_tier` (add `--runs N`).",
        "",
        METHOD.format(interval_ms=WRITE_INTERVAL_S * 1000),
        "",
        "| measurement | min / median / max | target | runs |",
        "|---|---|---|---|",
        row("`geoha up` to all healthy, fresh run dir (s)", [u["wall_s"] for u in up], "<= 30"),
    ]
    for mode, data in tiers.items():
        fo, sw = data["failovers"], data["switchovers"]
        lost, acked = sum(f["lost"] for f in fo), sum(f["acked"] for f in fo)
        lines += [
            row(
                f"{mode}: kill primary -> first acknowledged write (s)",
                [f["failover_s"] for f in fo],
                "median <= 20",
            ),
            row(f"{mode}: killed primary rejoins as replica (s)", [f["rejoin_s"] for f in fo], "-"),
            f"| {mode}: acknowledged writes lost | {lost} of {acked} | 0 | {len(fo)} |",
            row(f"{mode}: switchover write gap (s)", [s["gap_s"] for s in sw], "<= 2"),
            row(f"{mode}: `geoha switchover` command (s)", [s["command_s"] for s in sw], "-"),
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="failovers per replication mode")
    parser.add_argument("--switchovers", type=int, default=4)
    parser.add_argument("--up-runs", type=int, default=3)
    parser.add_argument("--modes", default="sync,async")
    parser.add_argument(
        "--only-up",
        action="store_true",
        help="measure `geoha up` only; keep the failover results of the last full run",
    )
    args = parser.parse_args()
    facts = machine_facts()
    up = measure_up(args.up_runs)
    if args.only_up:
        tiers = json.loads(RESULTS.read_text())["tiers"]
    else:
        tiers = {
            m: measure_data_tier(args.runs, args.switchovers, m) for m in args.modes.split(",")
        }
    facts["load_average_after"] = list(os.getloadavg())
    write_json("data_tier", {"machine": facts, "up": up, "tiers": tiers})
    markdown = report(up, tiers, facts)
    write_section("data-tier", markdown)
    print(markdown)
    medians = {
        m: statistics.median([f["failover_s"] for f in t["failovers"]]) for m, t in tiers.items()
    }
    print(f"failover medians: {medians}")


if __name__ == "__main__":
    main()
