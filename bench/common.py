"""Shared helpers for benchmarks: machine facts, a deployment driven through the CLI."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from geoha.runtime import control

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
    }


def version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        return (out.stdout or out.stderr).strip()
    except OSError:
        return "none"


def min_median_max(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


class BenchDeployment:
    """A local deployment on its own loopback nets and run directory, driven through the CLI."""

    TOPOLOGY = """
name = "bench"
run_dir = "{run_dir}"
replication = "{replication}"
[regions.delhi]
role = "primary"
cidr = "10.10.0.0/16"
local_net = "127.150.0.0/16"
[regions.chennai]
role = "replica"
cidr = "10.20.0.0/16"
local_net = "127.160.0.0/16"
[regions.mumbai]
role = "witness"
cidr = "10.30.0.0/16"
local_net = "127.170.0.0/16"
"""

    def __init__(self, replication: str = "sync", extra: str = "") -> None:
        self.replication = replication
        self.base = Path(tempfile.mkdtemp(prefix="geoha-bench-"))
        self.base.chmod(0o711)
        self.topology = self.base / "geoha.toml"
        self.topology.write_text(
            self.TOPOLOGY.format(run_dir=self.base / "run", replication=replication) + extra
        )

    def geoha(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "geoha", args[0], "-f", str(self.topology), *args[1:]]
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=600, check=False, cwd=self.base
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"geoha {' '.join(args)}: {result.stderr or result.stdout}")
        return result

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.geoha("status", "--json").stdout)
        return data

    def primary(self) -> str | None:
        primary: str | None = self.status()["cluster"]["primary"]
        return primary

    def replica_streaming(self, name: str) -> bool:
        db = next(d for d in self.status()["databases"] if d["name"] == name)
        return bool(db["role"] == "replica" and db["replication_state"] == "streaming")

    def can_take_over(self, name: str) -> bool:
        """A streaming replica that Patroni may promote: in sync mode, the sync standby only."""
        db = next(d for d in self.status()["databases"] if d["name"] == name)
        streaming = db["role"] == "replica" and db["replication_state"] == "streaming"
        return bool(streaming and (db["sync"] or self.replication == "async"))

    def wait_for(self, what: str, predicate: Callable[[], bool], timeout_s: float = 120) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            try:
                if predicate():
                    return time.monotonic() - started
            except (RuntimeError, StopIteration, KeyError):
                pass
            time.sleep(0.25)
        raise RuntimeError(f"timed out waiting for {what}")

    def event_time(self, prefix: str) -> float:
        """time.monotonic() of the controller's last event starting with `prefix`."""
        snap = control.call(self.base / "run", "status")
        event = next(e for e in reversed(snap["events"]) if e["message"].startswith(prefix))
        return float(event["t"]) - (time.time() - time.monotonic())

    def close(self) -> None:
        self.geoha("down", "--purge", check=False)
        shutil.rmtree(self.base, ignore_errors=True)


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
