"""A whole local deployment driven through the real `geoha` command line.

The scenario tests and the benchmarks both use it. Each deployment lives in a
temporary directory of its own (topology file and run directory) and on the
loopback nets it is given, so it never meets a developer's `geoha up`
(127.10/20/30) nor another user of this helper on other nets. `close()` runs
`geoha down --purge` and fails when a node it planned is still running.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.conninfo import make_conninfo

from geoha.db_access import libpq_tls, node_dsn
from geoha.health import trust
from geoha.plan import NodeRole, Plan, Tools, expand
from geoha.runtime import control
from geoha.runtime.process import node_processes, read_record
from geoha.spec import load_spec

REPO = Path(__file__).resolve().parent.parent

TOPOLOGY = """
name = "{name}"
run_dir = "{run_dir}"
replication = "{replication}"

[regions.delhi]
role = "primary"
cidr = "10.10.0.0/16"
local_net = "{nets.delhi}"

[regions.chennai]
role = "replica"
cidr = "10.20.0.0/16"
local_net = "{nets.chennai}"

[regions.mumbai]
role = "witness"
cidr = "10.30.0.0/16"
local_net = "{nets.mumbai}"

[monitor]
local_address = "{nets.dns}"

[dns]
local_address = "{nets.dns}"
local_port = 5353
"""
# [dns] comes last: `extra` may start with more of its keys (e.g. `ttl_s = 5`)
PINNED_TIER = """
[regions.{region}.{tier}.autoscale]
min = 2
desired = 2
"""
"""A tier the test does not scale: kept at its 2 instances (the autoscaler would shrink an
idle one to 1 after a minute, and tests count on both)."""


def pinned_tiers(extra: str) -> str:
    """The pinned table of every data region's tier whose autoscale table `extra` lacks."""
    return "".join(
        PINNED_TIER.format(region=region, tier=tier)
        for region in ("delhi", "chennai")
        for tier in ("web", "api")
        if f"[regions.{region}.{tier}.autoscale]" not in extra
    )


@contextmanager
def stopped_at_exit(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """The process is asked to stop (SIGINT, then SIGKILL after 10 s) when the block ends."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass(frozen=True)
class LoopbackNets:
    """The local_net (a 127.x.0.0/16) of each region of the reference topology, and the
    control-range address of its DNS server and monitor (apart from a developer's
    127.0.0.10)."""

    delhi: str
    chennai: str
    mumbai: str
    dns: str


class CommandFailed(AssertionError):
    """A `geoha` command exited non-zero (an AssertionError: a test reports it as a failure)."""


def unique_name(label: str) -> str:
    """`label` with a random suffix: data written into a shared deployment never collides."""
    return f"{label} {secrets.token_hex(4)}"


class Deployment:
    """The reference topology (delhi primary, chennai replica, mumbai witness) on given nets.

    `base` is a directory the deployment owns: the topology file and the run
    directory go there, and `close()` removes it. `replication` is "sync" or
    "async"; `extra` is TOML appended to the topology (more `[dns]` keys
    first, then tables: autoscale counts, traffic settings; every tier whose autoscale
    table it does not give is pinned at 2 instances); `tiers` is what
    `up()` brings up ("all", the default, passes nothing; any other value
    goes to `geoha up --tiers`). `wait_for` asks again every `poll_s` seconds
    and gives up after `wait_timeout_s` unless told otherwise.
    """

    def __init__(
        self,
        base: Path,
        nets: LoopbackNets,
        *,
        name: str,
        replication: str = "sync",
        extra: str = "",
        tiers: str = "all",
        poll_s: float = 0.5,
        wait_timeout_s: float = 90.0,
    ) -> None:
        self.base = base
        self.run_dir = base / "run"
        self.topology = base / "geoha.toml"
        self.replication = replication
        self.tiers = tiers
        self.poll_s = poll_s
        self.wait_timeout_s = wait_timeout_s
        text = TOPOLOGY.format(name=name, run_dir=self.run_dir, replication=replication, nets=nets)
        self.topology.write_text(text + extra + pinned_tiers(extra))
        spec = load_spec(self.topology)
        self.plan: Plan = expand(spec, Path(spec.run_dir), Tools.discover())

    @classmethod
    def in_temp_dir(cls, prefix: str, nets: LoopbackNets, **options: Any) -> Deployment:
        """A deployment in a fresh temporary directory; `options` as for the constructor."""
        # As root the database runs as `postgres`, which must traverse to its folder.
        base = Path(tempfile.mkdtemp(prefix=prefix))
        base.chmod(0o711)
        try:
            return cls(base, nets, **options)
        except BaseException:
            shutil.rmtree(base, ignore_errors=True)
            raise

    # -- the command line --------------------------------------------------

    def geoha(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """`python -m geoha COMMAND --file TOPOLOGY ARGS...` run from `base`.

        The subprocess imports the same geoha as this process (the repository
        this helper lives in). Raises CommandFailed on a non-zero exit when `check`.
        """
        command, *rest = args
        argv = [sys.executable, "-m", "geoha", command, "--file", str(self.topology), *rest]
        pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
        result = subprocess.run(
            argv,
            cwd=self.base,
            env={**os.environ, "PYTHONPATH": pythonpath},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise CommandFailed(
                f"geoha {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def up(self) -> None:
        """`geoha up` (with `--tiers` unless all tiers); returns once the controller is ready."""
        tiers = [] if self.tiers == "all" else ["--tiers", self.tiers]
        self.geoha("up", *tiers, timeout=600)

    def still_running(self) -> list[str]:
        """Names of the planned nodes of which a process is alive (the leader, or what is
        left of its process group)."""
        return [
            n.name
            for n in self.plan.nodes
            if (r := read_record(n.dir)) is not None and node_processes(r)
        ]

    def close(self) -> None:
        """`geoha down --purge` whatever state it is in, remove `base`, then check nothing
        is left running (CommandFailed naming the nodes otherwise)."""
        self.geoha("down", "--purge", check=False)
        leftovers = self.still_running()
        shutil.rmtree(self.base, ignore_errors=True)
        if leftovers:
            raise CommandFailed(f"still running after geoha down --purge: {leftovers}")

    # -- what it reports ---------------------------------------------------

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.geoha("status", "--json").stdout)
        return data

    def database(self, name: str) -> dict[str, Any]:
        """The status of one database node (StopIteration when there is none)."""
        return next(d for d in self.status()["databases"] if d["name"] == name)

    def primary(self) -> str | None:
        primary: str | None = self.status()["cluster"]["primary"]
        return primary

    def replica_streaming(self, name: str) -> bool:
        db = self.database(name)
        return bool(db["role"] == "replica" and db["replication_state"] == "streaming")

    def can_take_over(self, name: str) -> bool:
        """A streaming replica that Patroni may promote: in sync mode, the sync standby only."""
        db = self.database(name)
        streaming = db["role"] == "replica" and db["replication_state"] == "streaming"
        return bool(streaming and (db["sync"] or self.replication == "async"))

    def entry_url(self, region: str) -> str:
        """The region's public entry over plain HTTP (its frontend LB)."""
        fe = self.plan.only(region, NodeRole.FRONTEND_LB)
        return f"http://{fe.address}:{fe.ports['http']}"

    def dsn(self, region: str, write: bool = False) -> str:
        args = ["dsn", "--region", region] + (["--write"] if write else [])
        return self.geoha(*args).stdout.strip()

    def node_dsn(self, name: str) -> str:
        """The application user's URI for exactly one database node."""
        return node_dsn(self.plan, self.plan.node(name)) + "&connect_timeout=2"

    def connect_as(
        self, name: str, user: str, password: str, dbname: str, tls: bool = True
    ) -> psycopg.Connection[Any]:
        """A connection to database node `name` as `user`: over TLS verified against the
        deployment's CA, or (`tls=False`) asking for none at all (sslmode=disable)."""
        node = self.plan.node(name)
        conninfo = make_conninfo(
            "",
            host=node.address,
            port=node.ports["postgres"],
            user=user,
            password=password,
            dbname=dbname,
            connect_timeout=3,
            **libpq_tls(node.ca if tls else None),
        )
        return psycopg.connect(conninfo)

    def patroni(self, name: str) -> httpx.Client:
        """A client of the node's Patroni REST API (HTTPS verified against the CA)."""
        node = self.plan.node(name)
        return httpx.Client(base_url=node.url("patroni"), verify=trust(node), timeout=10)

    def event_time(self, kind: str, node: str) -> float:
        """time.monotonic() of the controller's last event of `kind` about `node`.

        Matches the structured fields only, never the message prose.
        """
        events: list[dict[str, Any]] = control.call(self.run_dir, "status")["events"]
        event = next(
            (e for e in reversed(events) if e.get("kind") == kind and e.get("node") == node),
            None,
        )
        if event is None:
            raise LookupError(f"no {kind!r} event for {node} among the controller's events")
        return float(event["t"]) - (time.time() - time.monotonic())

    # -- waiting -----------------------------------------------------------

    def wait_for(
        self, what: str, predicate: Callable[[], Any], timeout_s: float | None = None
    ) -> float:
        """Poll `predicate()` until true; returns the seconds it took.

        A failed command, a database error or a node missing from the status
        counts as "not yet"; the last one is named when the deadline passes.
        """
        timeout_s = self.wait_timeout_s if timeout_s is None else timeout_s
        started = time.monotonic()
        last: Any = None
        while time.monotonic() - started < timeout_s:
            try:
                last = predicate()
                if last:
                    return time.monotonic() - started
            except (AssertionError, psycopg.Error, KeyError, StopIteration) as exc:
                last = exc
            time.sleep(self.poll_s)
        raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last: {last!r})")
