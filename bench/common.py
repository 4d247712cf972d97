"""Shared helpers for benchmarks: machine facts, a deployment on the benchmarks' own nets."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.deployment import Deployment, LoopbackNets

REPO = Path(__file__).resolve().parent.parent


def machine_facts() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        first = Path("/proc/meminfo").read_text().splitlines()[0]
        mem_kb = int(first.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgres": version(["/usr/lib/postgresql/15/bin/postgres", "--version"]),
        "etcd": version(["etcd", "--version"]).splitlines()[0] if shutil.which("etcd") else "none",
        "patroni": version([str(Path(sys.executable).parent / "patroni"), "--version"]),
        "commit": version(["git", "-C", str(REPO), "describe", "--always", "--dirty"]),
    }


def version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        return (out.stdout or out.stderr).strip()
    except OSError:
        return "none"


def min_median_max_of(values: list[float | None], missing_word: str) -> str:
    """min / median / max of the known values, "-" without one; how many are unknown."""
    known = [v for v in values if v is not None]
    if not known:
        return "-"
    missing = len(values) - len(known)
    text = f"{min(known):.2f} / {statistics.median(known):.2f} / {max(known):.2f}"
    return text + (f" ({missing} {missing_word})" if missing else "")


def min_median_max(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


BENCH_NETS = LoopbackNets(
    delhi="127.150.0.0/16", chennai="127.160.0.0/16", mumbai="127.170.0.0/16", dns="127.0.0.12"
)


def bench_deployment(replication: str = "sync", extra: str = "", tiers: str = "all") -> Deployment:
    """The reference topology on the benchmarks' own loopback nets, in a fresh directory;
    `tiers` as for `geoha up --tiers` ("data": etcd, the databases and the schema only)."""
    return Deployment.in_temp_dir(
        "geoha-bench-",
        BENCH_NETS,
        name="bench",
        replication=replication,
        extra=extra,
        tiers=tiers,
        poll_s=0.25,
        wait_timeout_s=120,
    )


BENCHMARKS_MD = REPO / "docs" / "BENCHMARKS.md"


def write_section(name: str, markdown: str) -> None:
    """Replace (or append) the section between `<!-- NAME:start -->` and `<!-- NAME:end -->`."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else "# Benchmarks\n"
    block = f"{start}\n{markdown.strip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    BENCHMARKS_MD.parent.mkdir(parents=True, exist_ok=True)
    BENCHMARKS_MD.write_text(text)


def write_json(name: str, data: dict[str, Any]) -> Path:
    path = REPO / "bench" / "results" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
