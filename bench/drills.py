"""Failover drills: what users see when a region, or its primary, is lost.

Reproduce: .venv/bin/python -m bench.drills [--runs 10] [--duration 30] [--rate 20]
           [--faults kill-region:delhi,partition:delhi,kill-node:delhi-db]
           [--ttl-faults kill-region:delhi]
Results: docs/BENCHMARKS.md (section drills), bench/results/drills.json and a typical run's
timeline per fault in docs/drill-FAULT.png.
Targets (issue "Region-level faults and failover drills"): write RTO median <= 20 s; 0 failed
reads for clients of the surviving region; clients of the lost region reading again through
DNS <= 10 s after the fault (reference checks 1 s x 3, TTL <= 5 s); 0 acknowledged writes
lost; 0 split-brain moments.

Method: one bench deployment (whole stack, sync replication, DNS TTL 5 s). For each fault,
`geoha drill failover --fault F --repeat N --report DIR --json`: every drill starts from
the reference state (delhi-db primary: a drill that moved it switches it back), runs the
browser-like clients for `--duration` seconds, injects the fault after a warm-up (a fifth
of the run, at most 5 s), heals it `--heal-after` seconds later, waits for the cluster to
settle and checks every write. The `--ttl-faults` are then drilled again the same way on a
second deployment with `failover.fast = false` (Patroni's ttl alone), for comparison.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    REPO,
    bench_deployment,
    machine_facts,
    min_median_max_of,
    write_json,
    write_section,
)

DEFAULT_FAULTS = "kill-region:delhi,partition:delhi,kill-node:delhi-db"
DEFAULT_TTL_FAULTS = "kill-region:delhi"
MODES = {"fast": "", "ttl": "[failover]\nfast = false\n"}
"""Each mode's extra topology (after `[dns]`): the default, and Patroni's ttl alone."""
SURVIVOR = "chennai"
"""The region whose clients must never see a failed read (delhi is the one lost)."""
TTL_S = 5


def stats(values: list[float | None]) -> str:
    return min_median_max_of(values, "none")


def run_fault(dep: Any, fault: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    report_dir = out / fault.replace(":", "-")
    argv = [
        "drill", "failover", "--fault", fault, "--rate", str(args.rate),
        "--duration", str(args.duration), "--heal-after", str(args.heal_after),
        "--repeat", str(args.runs), "--report", str(report_dir), "--json",
    ]  # fmt: skip
    started = time.monotonic()
    result = dep.geoha(*argv, check=False, timeout=args.runs * 600)
    elapsed = time.monotonic() - started
    data: dict[str, Any] = json.loads(result.stdout)
    if args.runs == 1:
        data = {"summary": None, "reports": [data]}
    print(f"{fault}: {args.runs} drills in {elapsed:.0f} s, exit {result.returncode}", flush=True)
    return {"fault": fault, "exit": result.returncode, "dir": str(report_dir), **data}


def figures(reports: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {
        "write_rto_s": [r["write_rto_s"].get(SURVIVOR) for r in reports],
        "read_rto_s": [r["read_rto_s"].get(SURVIVOR) for r in reports],
        "lost_region_read_rto_s": [r["read_rto_s"].get("delhi") for r in reports],
        "dns_rto_s": [r["dns_rto_s"] for r in reports],
        "survivor_failed_reads": [
            r["regions"][SURVIVOR]["reads"].get("failed", 0) for r in reports
        ],
        "acked_writes": [r["acked_writes"] for r in reports],
        "acked_lost": [r["acked_lost"] for r in reports],
        "lost_read_back": [r["writes"].get("lost_read_back", 0) for r in reports],
        "duplicated": [r["duplicated"] for r in reports],
        "split_brain_moments": [r["split_brain_moments"] for r in reports],
        "broken": [r["verdict"]["broken"] for r in reports],
    }


def typical_timeline(result: dict[str, Any], docs: Path) -> str | None:
    """Copy the timeline of the drill with the median survivor write RTO into docs/."""
    reports = result["reports"]
    rtos = [(r["write_rto_s"].get(SURVIVOR) or 0.0, i) for i, r in enumerate(reports, 1)]
    _, run = sorted(rtos)[len(rtos) // 2]
    folder = Path(result["dir"]) / (f"run-{run}" if len(reports) > 1 else "")
    source = folder / "timeline.png"
    if not source.exists():
        return None
    name = f"drill-{result['fault'].replace(':', '-')}.png"
    shutil.copyfile(source, docs / name)
    return name


def row(result: dict[str, Any]) -> str:
    f = result["figures"]
    n = len(f["acked_writes"])
    mode = "" if result["mode"] == "fast" else " with `failover.fast = false`"
    return (
        f"| {result['fault']}{mode} | {n} | {stats(f['write_rto_s'])} | {stats(f['read_rto_s'])} | "
        f"{sum(f['survivor_failed_reads'])} | {stats(f['dns_rto_s'])} | "
        f"{sum(f['acked_lost'])} of {sum(f['acked_writes'])} "
        f"({sum(f['lost_read_back'])} read back) | {sum(f['duplicated'])} | "
        f"{sum(f['split_brain_moments'])} | {sum(1 for b in f['broken'] if b)} |"
    )


def report(data: dict[str, Any]) -> str:
    facts = data["machine"]
    a = data["args"]
    lines = [
        "## Failover drills (issue: region faults and drills)",
        "",
        f"Machine: {facts['cores']} cores ({facts['cpu']}), {facts['memory_gib']} GiB, kernel "
        f"{facts['kernel']}, Python {facts['python']}. Measured {data['date']} at commit "
        f"{facts.get('commit', 'unknown')}.",
        "",
        "Reproduce: `.venv/bin/python -m bench.drills` (add `--runs N`, `--duration S`, "
        "`--rate R`, `--faults F,...`, `--ttl-faults F,...`).",
        "",
        f"Method: one bench deployment (whole stack, sync replication, DNS checks every 1 s, "
        f"3 to change health, TTL {TTL_S} s). Per fault, `geoha drill failover --fault F "
        f"--rate {a['rate']:g} --duration {a['duration']:g} --heal-after {a['heal_after']:g} "
        f"--repeat {a['runs']}`: browser-like clients resolve `app.geoha.test` through geoha's "
        "DNS honouring the TTL, read and write through the entry it names, retry reads, never "
        "retry a write blindly (an unknown outcome is read back). Every drill starts with "
        "delhi-db primary. RTOs are from the fault to the first success after the last "
        f"failure, for clients of the surviving region ({SURVIVOR}); the DNS RTO is for "
        "clients that held delhi's address at the fault. Lost writes: acknowledged (201, or "
        "found by reading back) and missing on the primary after the heal. Rows marked "
        "`failover.fast = false` ran on a second deployment without the fast failover.",
        "",
        "| fault | drills | survivor write RTO s (min / median / max) | survivor read RTO s "
        "| survivor failed reads | lost region's clients reading again via DNS, s "
        "| acknowledged writes lost | duplicated | split-brain moments | drills with a "
        "broken promise |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in data["results"]:
        lines.append(row(result))
    lines.append("")
    for result in data["results"]:
        if result.get("timeline"):
            lines.append(f"A typical {result['fault']} drill: ![timeline]({result['timeline']})")
            lines.append("")
        broken = sorted({line for b in result["figures"]["broken"] for line in b})
        if broken:
            lines.append(f"Promises broken in {result['fault']} drills:")
            lines += [f"- {line}" for line in broken[:6]]
            lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.drills")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--duration", type=float, default=40.0)
    parser.add_argument("--heal-after", type=float, default=25.0)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--faults", default=DEFAULT_FAULTS)
    parser.add_argument("--ttl-faults", default=DEFAULT_TTL_FAULTS, help="'' for none")
    args = parser.parse_args()
    docs = REPO / "docs"
    results = []
    with tempfile.TemporaryDirectory(prefix="geoha-drills-") as tmp:
        for mode, faults in (("fast", args.faults), ("ttl", args.ttl_faults)):
            if not faults:
                continue
            dep = bench_deployment(extra=f"ttl_s = {TTL_S}\n{MODES[mode]}")
            try:
                dep.up()
                for fault in faults.split(","):
                    result = run_fault(dep, fault, args, Path(tmp) / mode)
                    result["mode"] = mode
                    result["figures"] = figures(result["reports"])
                    if mode == "fast":
                        result["timeline"] = typical_timeline(result, docs)
                    del result["dir"]  # a temporary folder, gone with this run
                    for r in result["reports"]:  # the raw logs stay in the report folders
                        r.pop("write_log", None)
                        r.pop("timeline", None)
                    results.append(result)
            finally:
                dep.close()
    data = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine_facts(),
        "args": vars(args),
        "results": results,
    }
    write_json("drills", data)
    write_section("drills", report(data))


if __name__ == "__main__":
    main()
