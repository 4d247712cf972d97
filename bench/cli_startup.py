"""Command line startup: how long `geoha --help`, `geoha validate` and `geoha status` take.

Reproduce: .venv/bin/python -m bench.cli_startup [--runs 10]
Results: docs/BENCHMARKS.md (section cli-startup) and bench/results/cli_startup.json.
Targets: `geoha --help` and `geoha validate` <= 0.3 s; `geoha status` <= 0.5 s.

Each sample is the wall time of a new process, as a user starts it (`python -m geoha
ARGS`, output discarded). The topology file names loopback nets no deployment uses and a
run directory that does not exist, so `status` finds no controller, no database, no etcd
member and no load balancer: it measures startup plus the probes that find nothing.
Then `geoha status` is timed again against a running deployment (the reference
topology on the benchmarks' own nets), where it asks every node for real.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import REPO, bench_deployment, machine_facts, write_json, write_section

TOPOLOGY = """
name = "startup"
run_dir = "{run_dir}"
[regions.delhi]
role = "primary"
cidr = "10.10.0.0/16"
local_net = "127.180.0.0/16"
[regions.chennai]
role = "replica"
cidr = "10.20.0.0/16"
local_net = "127.190.0.0/16"
[regions.mumbai]
role = "witness"
cidr = "10.30.0.0/16"
local_net = "127.200.0.0/16"
"""

# (name, arguments after `python`, target in seconds or None); {file} is the topology.
# `python -c pass` is the interpreter alone, for reference.
COMMANDS: list[tuple[str, list[str], float | None]] = [
    ("python -c pass", ["-c", "pass"], None),
    ("geoha --help", ["-m", "geoha", "--help"], 0.3),
    ("geoha validate", ["-m", "geoha", "validate", "-f", "{file}"], 0.3),
    ("geoha status", ["-m", "geoha", "status", "-f", "{file}"], 0.5),
]


def run_once(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"python {' '.join(argv)}: exit {result.returncode}: {result.stderr}")
    return elapsed


def measure(runs: int) -> dict[str, Any]:
    """Every command `runs` times after one warm-up run, the commands taking turns."""
    base = Path(tempfile.mkdtemp(prefix="geoha-startup-"))
    try:
        run_dir = base / "run"
        topology = base / "geoha.toml"
        topology.write_text(TOPOLOGY.format(run_dir=run_dir), encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        argvs = [[a.format(file=topology) for a in argv] for _, argv, _ in COMMANDS]
        samples: list[list[float]] = [[] for _ in COMMANDS]
        for argv in argvs:
            run_once(argv, base, env)
        for _ in range(runs):
            for argv, mine in zip(argvs, samples, strict=True):
                mine.append(run_once(argv, base, env))
        if run_dir.exists():
            raise RuntimeError(f"{run_dir} was created: the runs did not measure startup alone")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return {
        name: {
            "argv": ["python", *argv],
            "target_s": target,
            "samples_s": [round(s, 4) for s in mine],
        }
        for (name, argv, target), mine in zip(COMMANDS, samples, strict=True)
    }


STATUS_RUNNING = "geoha status (running deployment)"


def measure_running_status(runs: int) -> dict[str, Any]:
    """`geoha status` against a whole running deployment, `runs` times after one warm-up."""
    dep = bench_deployment()
    try:
        dep.up()
        argv = ["-m", "geoha", "status", "-f", str(dep.topology)]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        run_once(argv, dep.base, env)
        samples = [run_once(argv, dep.base, env) for _ in range(runs)]
    finally:
        dep.close()
    return {
        STATUS_RUNNING: {
            # run from the deployment's folder: its temporary path is not worth keeping
            "argv": ["python", *argv[:-1], "geoha.toml"],
            "target_s": 0.5,
            "samples_s": [round(s, 4) for s in samples],
        }
    }


def verdict(median: float, target: float | None) -> str:
    if target is None:
        return "-"
    return "met" if median <= target else "**missed**"


def report(results: dict[str, Any], facts: dict[str, Any], runs: int) -> str:
    lines = [
        "## Command line startup",
        "",
        f"Machine: {facts['cores']} cores ({facts['cpu']}), {facts['memory_gib']} GiB, "
        f"kernel {facts['kernel']}, Python {facts['python']}; load average before the runs "
        f"{facts['load_average_before']}, after {facts['load_average_after']}. "
        f"Measured {facts['date']}.",
        "",
        "Reproduce: `.venv/bin/python -m bench.cli_startup` (add `--runs N`).",
        "",
        f"Method: wall time of a new process per sample (`python -m geoha ARGS`, output "
        f"discarded), {runs} samples per command after one warm-up, the commands taking turns; "
        "`python -c pass` is the interpreter alone. `validate` and `status` read a topology "
        "file (`-f FILE`) with loopback nets no deployment uses "
        "and a run directory that does not exist, so `status` finds no controller, "
        "database, etcd member or load balancer. The last row is `geoha status` against a "
        "whole running deployment (both data regions with their traffic tier, and the "
        "witness), where it asks Patroni, PostgreSQL, etcd, every LB and the controller. "
        "Building the parser imports no command; each "
        "command imports its own module when it runs (geoha/cli.py).",
        "",
        "| command | min / median / max (s) | target (s) | verdict |",
        "|---|---|---|---|",
    ]
    for name, result in results.items():
        samples = result["samples_s"]
        median = statistics.median(samples)
        target = result["target_s"]
        lines.append(
            f"| `{name}` | {min(samples):.3f} / {median:.3f} / {max(samples):.3f} | "
            f"{'-' if target is None else f'<= {target}'} | {verdict(median, target)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="samples per command")
    args = parser.parse_args()
    facts = machine_facts()
    facts["date"] = datetime.date.today().isoformat()
    facts["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
    results = measure(args.runs) | measure_running_status(args.runs)
    facts["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    write_json("cli_startup", {"machine": facts, "runs": args.runs, "commands": results})
    markdown = report(results, facts, args.runs)
    write_section("cli-startup", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
