"""Node kinds: how each kind of node is rendered, run, probed and stopped.

The controller drives every node through the `NodeKind` contract and never
branches on which kind it holds. Every kind reads its facts from the role
table (geoha.roles); only what the local runtime does beyond the table lives
here: the database's postmaster, which leaves Patroni's process group, and
the certificates a role holds, issued before its config is rendered.
"""

from __future__ import annotations

import os
import subprocess
from abc import ABC, abstractmethod
from pathlib import Path

import httpx
import psutil

from geoha import health
from geoha.data.secrets import load_or_create_token
from geoha.db_access import Secrets
from geoha.health import Health
from geoha.plan import Node, NodeRole, Plan
from geoha.render.configs import process_environment, render_config
from geoha.render.files import File
from geoha.roles import ROLES, LocalUser, with_config
from geoha.runtime.certificates import ensure_certificates
from geoha.runtime.process import ProcessRecord, RunAs, kill_node, stop_node

CHECK_TIMEOUT_S = 30


class ConfigCheckError(Exception):
    """A rendered configuration was refused by its program's own checker."""


class NodeKind(ABC):
    """One kind of managed node."""

    stop_timeout_s: float
    """How long a node may take to stop after its stop signal before it is killed."""

    @abstractmethod
    def render(self, plan: Plan, node: Node, secrets: Secrets) -> list[File]:
        """The node's configuration files."""

    @abstractmethod
    def run_as(self) -> RunAs | None:
        """The user the node runs as; None for the invoking user."""

    @abstractmethod
    async def probe(self, node: Node, client: httpx.AsyncClient) -> Health:
        """Whether the node is serving, with a short human detail."""

    @abstractmethod
    def env(self, plan: Plan, node: Node) -> dict[str, str]:
        """Environment variables the node's process gets on top of the controller's."""

    @abstractmethod
    def owner(self) -> tuple[int, int] | None:
        """Who owns the node's files: (uid, gid), or None for whoever writes them."""

    @abstractmethod
    def check(self, node: Node, path: Path) -> None:
        """Validate a rendered config file before it replaces the live one; raise if bad."""

    @abstractmethod
    def stop(self, node: Node, record: ProcessRecord) -> None:
        """Stop signal, wait up to stop_timeout_s, then SIGKILL whatever of the node is left."""

    @abstractmethod
    def kill(self, node: Node, record: ProcessRecord) -> int:
        """SIGKILL every process of the node at once; returns how many there were."""

    @abstractmethod
    def prepare(self, node: Node) -> None:
        """Create the node's folder with the ownership its user needs."""

    def extra_pids(self, node: Node) -> list[int]:
        """Processes of the node that left its process group (they are stopped with it)."""
        return []


class RoleKind(NodeKind):
    """A node kind as the role table describes it."""

    def __init__(self, role: NodeRole) -> None:
        self.role = ROLES[role]
        self.stop_timeout_s = self.role.stop.timeout_s
        self._user: RunAs | None = None

    def render(self, plan: Plan, node: Node, secrets: Secrets) -> list[File]:
        ensure_certificates(plan, node, self.owner())
        return render_config(plan, node, secrets)

    def run_as(self) -> RunAs | None:
        if self.role.local_user is LocalUser.INVOKER:
            return None
        if self._user is None:
            self._user = RunAs.database_user()
        return self._user

    def owner(self) -> tuple[int, int] | None:
        user = self.run_as()
        return (user.uid, user.gid) if user is not None and os.geteuid() == 0 else None

    async def probe(self, node: Node, client: httpx.AsyncClient) -> Health:
        return await health.probe(node, client)

    def env(self, plan: Plan, node: Node) -> dict[str, str]:
        return process_environment(plan, node)

    def check(self, node: Node, path: Path) -> None:
        checker = self.role.checker
        if checker is not None:
            run_check([node.command[0], *with_config(checker.args, path)], checker.name)

    def stop(self, node: Node, record: ProcessRecord) -> None:
        stop = self.role.stop
        stop_node(record, lambda: self.extra_pids(node), stop.timeout_s, stop.signal)

    def kill(self, node: Node, record: ProcessRecord) -> int:
        return kill_node(record, lambda: self.extra_pids(node))

    def prepare(self, node: Node) -> None:
        node.dir.mkdir(parents=True, exist_ok=True)
        owner = self.owner()
        if owner is not None:
            os.chown(node.dir, *owner)
        os.chmod(node.dir, 0o700)


class DatabaseKind(RoleKind):
    """PostgreSQL under Patroni."""

    def __init__(self) -> None:
        super().__init__(NodeRole.DATABASE)

    def extra_pids(self, node: Node) -> list[int]:
        # Patroni starts the postmaster in a session of its own, so the node's
        # process group does not hold PostgreSQL: find it by its pid file.
        return [pid] if (pid := postmaster_pid(node.data_dir)) else []


class ApiKind(RoleKind):
    """An API instance; locally its admin routes (pausing writes for a switchover) are on,
    with the run directory's token."""

    def __init__(self) -> None:
        super().__init__(NodeRole.API)

    def render(self, plan: Plan, node: Node, secrets: Secrets) -> list[File]:
        load_or_create_token(plan.api_admin_token_path)
        return super().render(plan, node, secrets)

    def env(self, plan: Plan, node: Node) -> dict[str, str]:
        return super().env(plan, node) | {"GEOHA_ADMIN_TOKEN_FILE": str(plan.api_admin_token_path)}


def kinds() -> dict[NodeRole, NodeKind]:
    """One kind per role."""
    special: dict[NodeRole, NodeKind] = {
        NodeRole.DATABASE: DatabaseKind(),
        NodeRole.API: ApiKind(),
    }
    return {role: special.get(role) or RoleKind(role) for role in NodeRole}


def postmaster_pid(data_dir: Path) -> int | None:
    """The running postmaster of `data_dir`, checked so a stale pid file names no stranger."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text(encoding="utf-8").splitlines()[0])
        cmdline = " ".join(psutil.Process(pid).cmdline())
    except (OSError, ValueError, IndexError, psutil.Error):
        return None
    return pid if str(data_dir) in cmdline else None


def run_check(argv: list[str], what: str) -> None:
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=CHECK_TIMEOUT_S, check=False
    )
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise ConfigCheckError(f"{what} refused the rendered config: {' | '.join(output)}")
