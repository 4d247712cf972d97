"""Scenario fixtures: a whole local deployment per test, on loopback nets of its own.

Each deployment lives in the test's own run directory and uses 127.11x.0.0/16
nets, so it never meets a developer's `geoha up` (127.10/20/30). Teardown runs
`geoha down --purge` whatever the test did, then checks nothing it started
is left running.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from geoha.plan import Plan, Tools, expand
from geoha.runtime.process import read_record
from geoha.spec import load_spec

TOPOLOGY = """
name = "scenario"
run_dir = "{run_dir}"

[regions.delhi]
role = "primary"
cidr = "10.10.0.0/16"
local_net = "127.110.0.0/16"

[regions.chennai]
role = "replica"
cidr = "10.20.0.0/16"
local_net = "127.120.0.0/16"

[regions.mumbai]
role = "witness"
cidr = "10.30.0.0/16"
local_net = "127.130.0.0/16"
"""


class Deployment:
    """A running local deployment driven through the real `geoha` CLI."""

    def __init__(self, topology: Path, cwd: Path) -> None:
        self.topology = topology
        self.cwd = cwd
        spec = load_spec(topology)
        self.plan: Plan = expand(spec, Path(spec.run_dir), Tools.discover())

    def geoha(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "geoha", args[0], "-f", str(self.topology), *args[1:]]
        if args[0] == "logs":
            argv = [sys.executable, "-m", "geoha", *args, "--file", str(self.topology)]
        result = subprocess.run(
            argv, cwd=self.cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"geoha {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.geoha("status", "--json").stdout)
        return data

    def database(self, name: str) -> dict[str, Any]:
        status = self.status()
        return next(d for d in status["databases"] if d["name"] == name)

    def dsn(self, region: str, write: bool = False) -> str:
        args = ["dsn", "--region", region] + (["--write"] if write else [])
        return self.geoha(*args).stdout.strip()

    def node_dsn(self, name: str) -> str:
        """The application user's URI for exactly one database node."""
        node = self.plan.node(name)
        return (
            f"postgresql://geoha_app@{node.endpoint('postgres')}/geoha"
            f"?connect_timeout=2&passfile={self.plan.pgpass_path}"
        )

    def wait_for(self, what: str, predicate: Any, timeout_s: float = 90.0) -> float:
        """Poll `predicate()` until true; returns the seconds it took."""
        started = time.monotonic()
        last: Any = None
        while time.monotonic() - started < timeout_s:
            try:
                last = predicate()
                if last:
                    return time.monotonic() - started
            except (AssertionError, psycopg.Error, KeyError, StopIteration) as exc:
                last = exc
            time.sleep(0.5)
        raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last: {last!r})")


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    # pytest's tmp_path is private (0700); as root the database runs as `postgres`,
    # which must reach its folder, so the run directory gets a traversable parent.
    base = Path(tempfile.mkdtemp(prefix="geoha-scenario-"))
    base.chmod(0o711)
    run_dir = base / "run"
    topology = tmp_path / "geoha.toml"
    topology.write_text(TOPOLOGY.format(run_dir=run_dir))
    dep = Deployment(topology, tmp_path)
    try:
        dep.geoha("up")
        yield dep
    finally:
        dep.geoha("down", "--purge", check=False)
        leftovers = [
            n.name for n in dep.plan.nodes if (r := read_record(n.dir)) is not None and r.alive()
        ]
        shutil.rmtree(base, ignore_errors=True)
        assert not leftovers, f"still running after geoha down: {leftovers}"
