"""The drill's role sampler: every database node's role, every `interval_s`, all at once.

Each round asks every node, in parallel, over a direct connection of its own
(the application's user, a 1 s connect timeout, a 0.5 s statement timeout)
whether it is in recovery and where its WAL is, and asks its Patroni for its
role (GET /patroni, 0.5 s). A node that does not answer counts as down for
that round. Two nodes writable in one round is a split-brain moment
(geoha.ops.drill_analysis.split_brain).
"""

from __future__ import annotations

import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import psycopg

from geoha.health import read_patroni
from geoha.ops.drill_model import Clock, NodeSample, Round

ROLE_SQL = (
    "SELECT NOT pg_is_in_recovery(), "
    "(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
    "ELSE pg_current_wal_lsn() END - '0/0'::pg_lsn)::bigint"
)


@dataclass(frozen=True)
class DatabaseTarget:
    node: str
    dsn: str
    """The application user's URI for this node alone."""
    patroni_url: str
    """Its Patroni's GET /patroni."""
    verify: ssl.SSLContext | bool = True
    """httpx's `verify` for it (the deployment's CA when its REST API speaks HTTPS)."""


class NodeProbe:
    """One node's kept connection and its Patroni client (used by one thread at a time)."""

    def __init__(self, target: DatabaseTarget) -> None:
        self.target = target
        self.conn: psycopg.Connection[tuple[object, ...]] | None = None
        self.http = httpx.Client(timeout=0.5, trust_env=False, verify=target.verify)

    def sample(self) -> NodeSample:
        writable, lsn = self.ask_postgres()
        return NodeSample(self.target.node, writable, self.ask_patroni(), lsn)

    def ask_postgres(self) -> tuple[bool | None, int | None]:
        try:
            if self.conn is None or self.conn.closed:
                self.conn = psycopg.connect(
                    self.target.dsn,
                    autocommit=True,
                    connect_timeout=1,
                    options="-c statement_timeout=500",
                )
            row = self.conn.execute(ROLE_SQL).fetchone()
        except psycopg.Error:
            self.close_db()
            return None, None
        if row is None:
            return None, None
        return bool(row[0]), None if row[1] is None else int(str(row[1]))

    def ask_patroni(self) -> str | None:
        try:
            return read_patroni(self.http.get(self.target.patroni_url).json()).role
        except (httpx.HTTPError, ValueError):
            return None

    def close_db(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    def close(self) -> None:
        self.close_db()
        self.http.close()


class RoleSampler:
    """Samples every node each `interval_s` until stopped or `max_rounds` rounds are taken."""

    def __init__(
        self,
        targets: list[DatabaseTarget],
        clock: Clock,
        interval_s: float = 0.1,
        max_rounds: int = 36_000,
    ) -> None:
        self.probes = [NodeProbe(t) for t in targets]
        self.clock = clock
        self.interval_s = interval_s
        self.max_rounds = max_rounds
        self.rounds: list[Round] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="drill-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def latest(self) -> Round | None:
        return self.rounds[-1] if self.rounds else None

    def _run(self) -> None:
        with ThreadPoolExecutor(len(self.probes), thread_name_prefix="drill-probe") as pool:
            next_at = self.clock()
            while not self._stop.is_set() and len(self.rounds) < self.max_rounds:
                t = self.clock()
                samples = tuple(pool.map(NodeProbe.sample, self.probes))
                self.rounds.append(Round(t, samples))
                next_at = max(next_at + self.interval_s, self.clock())
                self._stop.wait(max(0.0, next_at - self.clock()))
        for probe in self.probes:
            probe.close()
