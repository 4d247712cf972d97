"""Node kinds: how each kind of node is rendered, run, probed and stopped.

The controller drives every node through this one contract and never
branches on which kind it holds.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from geoha.db_access import Secrets
from geoha.plan import Node, NodeRole, Plan
from geoha.render.etcd import render_etcd
from geoha.render.files import File
from geoha.render.patroni import render_patroni
from geoha.runtime.process import ProcessRecord, RunAs, kill_node, stop_node


@dataclass(frozen=True)
class Health:
    healthy: bool
    detail: str
    info: dict[str, Any] | None = None


class NodeKind(ABC):
    """One kind of managed node."""

    @abstractmethod
    def render(self, plan: Plan, node: Node, secrets: Secrets) -> list[File]:
        """The node's configuration files."""

    @abstractmethod
    def run_as(self) -> RunAs | None:
        """The user the node runs as; None for the invoking user."""

    @abstractmethod
    async def probe(self, node: Node, client: httpx.AsyncClient) -> Health:
        """Whether the node is serving, with a short human detail."""

    stop_timeout_s = 30.0
    """How long a node may take to stop after SIGTERM before it is killed."""

    def env(self, plan: Plan, node: Node) -> dict[str, str]:
        """Environment variables the node's process gets on top of the controller's."""
        return {}

    def check(self, node: Node, path: Path) -> None:
        """Validate a rendered config file before it replaces the live one; raise if bad."""
        return None  # etcd and Patroni configs have no checker of their own

    def extra_pids(self, node: Node) -> list[int]:
        """Processes of the node that left its process group (they are killed with it)."""
        return []

    def stop(self, node: Node, record: ProcessRecord) -> None:
        """SIGTERM, wait up to stop_timeout_s, then SIGKILL whatever of the node is left."""
        stop_node(record, lambda: self.extra_pids(node), self.stop_timeout_s)

    def kill(self, node: Node, record: ProcessRecord) -> int:
        """SIGKILL every process of the node at once; returns how many there were."""
        return kill_node(record, lambda: self.extra_pids(node))

    def prepare(self, node: Node) -> None:
        """Create the node's folder with the ownership its user needs."""
        node.dir.mkdir(parents=True, exist_ok=True)
        user = self.run_as()
        if user is not None and os.geteuid() == 0:
            os.chown(node.dir, user.uid, user.gid)
        os.chmod(node.dir, 0o700)


class EtcdKind(NodeKind):
    # etcd is crash-safe; a leader stopped last waits for a leadership transfer to
    # members that are already gone, so it is not given long.
    stop_timeout_s = 3.0

    def render(self, plan: Plan, node: Node, secrets: Secrets) -> list[File]:
        return render_etcd(plan, node)

    def run_as(self) -> RunAs | None:
        return None

    async def probe(self, node: Node, client: httpx.AsyncClient) -> Health:
        try:
            resp = await client.get(node.health_url)
            body = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            return Health(False, f"not answering ({type(exc).__name__})")
        if resp.status_code == 200 and str(body.get("health")) == "true":
            return Health(True, "healthy member")
        return Health(False, f"unhealthy: {body.get('reason') or resp.status_code}")


class DatabaseKind(NodeKind):
    """PostgreSQL under Patroni; runs as the unprivileged database user."""

    def __init__(self) -> None:
        self._user: RunAs | None = None

    def render(self, plan: Plan, node: Node, secrets: Secrets) -> list[File]:
        return render_patroni(plan, node, secrets)

    def run_as(self) -> RunAs | None:
        if self._user is None:
            self._user = RunAs.database_user()
        return self._user

    async def probe(self, node: Node, client: httpx.AsyncClient) -> Health:
        url = f"http://{node.endpoint('patroni')}/patroni"
        try:
            resp = await client.get(url)
            body: dict[str, Any] = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            return Health(False, f"Patroni not answering ({type(exc).__name__})")
        state = str(body.get("state", "unknown"))
        role = str(body.get("role", "unknown"))
        if state != "running":
            return Health(False, f"PostgreSQL {state}", body)
        if role in ("primary", "master"):
            return Health(True, "primary", body)
        replication = str(body.get("replication_state", "not streaming"))
        return Health(replication == "streaming", f"replica, {replication}", body)

    def extra_pids(self, node: Node) -> list[int]:
        # Patroni starts the postmaster in a session of its own, so the node's
        # process group does not hold PostgreSQL: find it by its pid file.
        return [pid] if (pid := postmaster_pid(node.data_dir)) else []


def postmaster_pid(data_dir: Path) -> int | None:
    """The running postmaster of `data_dir`, checked so a stale pid file names no stranger."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text(encoding="utf-8").splitlines()[0])
        cmdline = " ".join(psutil.Process(pid).cmdline())
    except (OSError, ValueError, IndexError, psutil.Error):
        return None
    return pid if str(data_dir) in cmdline else None


async def http_probe(url: str, client: httpx.AsyncClient, ok_detail: str) -> Health:
    """Healthy when `url` answers 200."""
    try:
        resp = await client.get(url)
    except httpx.HTTPError as exc:
        return Health(False, f"not answering ({type(exc).__name__})")
    if resp.status_code == 200:
        return Health(True, ok_detail)
    return Health(False, f"health check answered {resp.status_code}")


def kinds() -> dict[NodeRole, NodeKind]:
    from geoha.runtime.app_kinds import ApiKind, CaddyKind, HaproxyKind

    return {
        NodeRole.ETCD: EtcdKind(),
        NodeRole.DATABASE: DatabaseKind(),
        NodeRole.API: ApiKind(),
        NodeRole.BACKEND_LB: HaproxyKind(),
        NodeRole.WEB: CaddyKind(),
        NodeRole.FRONTEND_LB: HaproxyKind(),
    }
