"""A real PostgreSQL 15 primary and streaming replica for component tests and benchmarks.

Each node listens on its own loopback address (no Unix socket), with
scram-sha-256 and pg_hba limited to 127.0.0.1/32 (on one machine every loopback
connection comes from 127.0.0.1). Everything lives in one temporary directory,
removed by `stop()`. PostgreSQL refuses to run as root, so as root the servers
run as the `postgres` user. Postmasters start in their own session; `stop()`
uses `pg_ctl stop -m fast` and falls back to SIGKILL of exactly the process
groups it started.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from geoha.data import migrate
from geoha.db_access import APP_USER, SUPERUSER, Secrets

PG_BIN = Path(os.environ.get("GEOHA_PG_BIN", "/usr/lib/postgresql/15/bin"))
PRIMARY_HOST = "127.240.5.1"
REPLICA_HOST = "127.241.5.1"
PORT = 5432
DATABASE = "geoha"
START_TIMEOUT_S = 30.0


def _run_as() -> dict[str, Any]:
    """subprocess kwargs that drop root to the postgres user (nothing otherwise)."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


def _owner() -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


@dataclass
class PgNode:
    """One PostgreSQL server: where it lives and the postmaster we started."""

    name: str
    host: str
    port: int
    datadir: Path
    logfile: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None


@dataclass
class PgCluster:
    """A primary (and optionally a streaming replica) in a temporary directory."""

    root: Path
    superuser_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    app_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    fsync: bool = True
    nodes: dict[str, PgNode] = field(default_factory=dict)

    @classmethod
    def create(cls, *, fsync: bool = True) -> PgCluster:
        root = Path(tempfile.mkdtemp(prefix="geoha-pg-"))
        root.chmod(0o711)  # the postgres user must traverse it
        return cls(root=root, fsync=fsync)

    @property
    def primary(self) -> PgNode:
        return self.nodes["primary"]

    @property
    def replica(self) -> PgNode:
        return self.nodes["replica"]

    @property
    def passfile(self) -> Path:
        return self.root / "pgpass"

    # -- lifecycle ---------------------------------------------------------------

    def _node_dir(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(mode=0o700)
        owner = _owner()
        if owner is not None:
            os.chown(path, *owner)
        return path

    def init_primary(self, host: str = PRIMARY_HOST, port: int = PORT) -> PgNode:
        datadir = self._node_dir("primary")
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.superuser_password + "\n")
        owner = _owner()
        if owner is not None:
            os.chown(pwfile, *owner)
        pwfile.chmod(0o600)
        try:
            subprocess.run(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(datadir),
                    "-U",
                    SUPERUSER,
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ],
                check=True,
                capture_output=True,
                timeout=120,
                **_run_as(),
            )
        finally:
            pwfile.unlink(missing_ok=True)
        (datadir / "pg_hba.conf").write_text(
            "host all all 127.0.0.1/32 scram-sha-256\n"
            "host replication all 127.0.0.1/32 scram-sha-256\n"
        )
        with (datadir / "postgresql.conf").open("a") as conf:
            conf.write(self._settings(host, port))
        node = PgNode("primary", host, port, datadir, self.root / "primary.log")
        self.nodes["primary"] = node
        return node

    def _settings(self, host: str, port: int) -> str:
        lines = [
            f"listen_addresses = '{host}'",
            f"port = {port}",
            "unix_socket_directories = ''",
            "wal_level = replica",
            "max_wal_senders = 5",
            "hot_standby = on",
            "max_connections = 100",
            "shared_buffers = 64MB",
            "logging_collector = off",
            f"fsync = {'on' if self.fsync else 'off'}",
        ]
        return "\n# geoha component test\n" + "\n".join(lines) + "\n"

    def start(self, node: PgNode) -> None:
        log = node.logfile.open("ab")
        try:
            node.process = subprocess.Popen(
                [str(PG_BIN / "postgres"), "-D", str(node.datadir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **_run_as(),
            )
        finally:
            log.close()
        self._wait_ready(node)

    def _wait_ready(self, node: PgNode) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        last: Exception | None = None
        while time.monotonic() < deadline:
            if node.process is not None and node.process.poll() is not None:
                raise RuntimeError(f"{node.name} exited: {node.logfile.read_text()[-2000:]}")
            try:
                with self.connect(node, dbname="postgres"):
                    return
            except psycopg.OperationalError as exc:
                last = exc
                time.sleep(0.1)
        raise RuntimeError(f"{node.name} not ready after {START_TIMEOUT_S}s: {last}")

    def add_replica(self, host: str = REPLICA_HOST, port: int = PORT) -> PgNode:
        """pg_basebackup -R from the primary, then start it as a hot standby."""
        datadir = self._node_dir("replica")
        env = {**os.environ, "PGPASSWORD": self.superuser_password}
        subprocess.run(
            [
                str(PG_BIN / "pg_basebackup"),
                "-h",
                self.primary.host,
                "-p",
                str(self.primary.port),
                "-U",
                SUPERUSER,
                "-D",
                str(datadir),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
            check=True,
            capture_output=True,
            timeout=120,
            env=env,
            **_run_as(),
        )
        with (datadir / "postgresql.conf").open("a") as conf:
            conf.write(self._settings(host, port))
        node = PgNode("replica", host, port, datadir, self.root / "replica.log")
        self.nodes["replica"] = node
        self.start(node)
        return node

    def stop(self, node: PgNode) -> None:
        """pg_ctl stop -m fast; SIGKILL of the postmaster's own group if that fails."""
        if node.process is None or node.process.poll() is not None:
            node.process = None
            return
        try:
            subprocess.run(
                [
                    str(PG_BIN / "pg_ctl"),
                    "stop",
                    "-D",
                    str(node.datadir),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    "20",
                ],
                check=True,
                capture_output=True,
                timeout=30,
                **_run_as(),
            )
            node.process.wait(timeout=10)
        except (subprocess.SubprocessError, OSError):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.process.pid, signal.SIGKILL)
            node.process.wait(timeout=10)
        node.process = None

    def destroy(self) -> None:
        """Stop every node and remove the directory. Safe to call more than once."""
        try:
            for node in reversed(list(self.nodes.values())):
                self.stop(node)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- access ------------------------------------------------------------------

    def connect(self, node: PgNode, dbname: str = DATABASE) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=node.host,
            port=node.port,
            user=SUPERUSER,
            password=self.superuser_password,
            dbname=dbname,
            connect_timeout=3,
            autocommit=True,
        )

    def setup_app(self) -> None:
        """Role, database, schema and every migration, applied by geoha's own runner."""
        credentials = Secrets(
            superuser=self.superuser_password,
            replication="",  # no replication user here: the replica streams as the superuser
            app=self.app_password,
            rest="",  # no Patroni here
        )
        with self.connect(self.primary, dbname="postgres") as conn:
            migrate.ensure_app_role(conn, credentials)
            migrate.ensure_database(conn, DATABASE)
        with self.connect(self.primary) as conn:
            migrate.ensure_schema(conn, DATABASE)
            migrate.apply_migrations(conn)
        # Any host: the same password on every node (and on the closed-port decoys).
        self.passfile.write_text(f"*:*:{DATABASE}:{APP_USER}:{self.app_password}\n")
        self.passfile.chmod(0o600)

    def app_dsn(self, hosts: list[tuple[str, int]], attrs: str, **extra: str) -> str:
        """A libpq URI for the application user, the way geoha's runtime builds it."""
        hostlist = ",".join(f"{h}:{p}" for h, p in hosts)
        params = {
            "target_session_attrs": attrs,
            "connect_timeout": "2",
            "passfile": str(self.passfile),
            **extra,
        }
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"postgresql://{APP_USER}@{hostlist}/{DATABASE}?{query}"

    def wait_replica_caught_up(self, timeout_s: float = 10.0) -> None:
        with self.connect(self.primary) as conn:
            lsn = conn.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()
        assert lsn is not None
        deadline = time.monotonic() + timeout_s
        with self.connect(self.replica) as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn[0],)
                ).fetchone()
                if row is not None and row[0]:
                    return
                time.sleep(0.01)
        raise AssertionError(f"replica did not replay {lsn[0]} within {timeout_s}s")


def start_cluster(
    *,
    replica: bool = True,
    fsync: bool = True,
    primary_host: str = PRIMARY_HOST,
    replica_host: str = REPLICA_HOST,
) -> PgCluster:
    """Primary (+ replica) with the application schema; destroyed on any failure."""
    cluster = PgCluster.create(fsync=fsync)
    try:
        cluster.start(cluster.init_primary(primary_host))
        cluster.setup_app()
        if replica:
            cluster.add_replica(replica_host)
    except BaseException:
        cluster.destroy()
        raise
    return cluster
