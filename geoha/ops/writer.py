"""A bounded writer loop through a libpq URI: what a client sees during a fault.

It inserts one row every `interval_s` through a multi-host read-write URI,
reconnecting after every error, and records the id and time of every
acknowledged insert. Drills, benchmarks and scenario tests read from it:
which writes were acknowledged (RPO: are they all there afterwards?) and how
long no write was acknowledged (RTO, switchover gap).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field

import psycopg

INSERT = "INSERT INTO themes (name, config) VALUES (%s, %s) RETURNING id"


@dataclass
class Ack:
    id: int
    at: float
    """time.monotonic() when the commit was acknowledged."""


@dataclass
class Failure:
    at: float
    """time.monotonic() when the attempt failed."""
    message: str
    """The first line of the error, as libpq or the server put it."""


@dataclass
class WriterLoop:
    """Inserts a row every `interval_s`; stops after `max_s` seconds or `max_rows` rows."""

    dsn: str
    interval_s: float = 0.05
    max_s: float = 180.0
    max_rows: int = 20_000
    acks: list[Ack] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def acked(self) -> list[int]:
        return [a.id for a in self.acks]

    @property
    def errors(self) -> int:
        return len(self.failures)

    def failures_since(self, t: float) -> list[str]:
        """What the failed attempts after `t` (time.monotonic()) said, oldest first."""
        return [f.message for f in self.failures if f.at > t]

    def start(self) -> WriterLoop:
        self._thread = threading.Thread(target=self._run, name="writer-loop", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def first_ack_after(self, t: float) -> Ack | None:
        return next((a for a in self.acks if a.at > t), None)

    def longest_gap_between(self, start: float, end: float) -> float:
        """Longest time without an acknowledged write within [start, end] (seconds)."""
        times = [start] + [a.at for a in self.acks if start < a.at < end] + [end]
        return max(b - a for a, b in itertools.pairwise(times))

    def _insert(self, conn: psycopg.Connection, seq: int) -> int:
        row = conn.execute(INSERT, (f"writer-{seq}", json.dumps({"seq": seq}))).fetchone()
        if row is None:
            raise RuntimeError("INSERT ... RETURNING gave no row")
        return int(row[0])

    def _run(self) -> None:
        started = time.monotonic()
        conn: psycopg.Connection | None = None
        seq = 0
        while not self._stop.is_set() and time.monotonic() - started < self.max_s:
            if len(self.acks) >= self.max_rows:
                break
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.dsn, autocommit=True)
                seq += 1
                row_id = self._insert(conn, seq)
                self.acks.append(Ack(row_id, time.monotonic()))
            except psycopg.Error as exc:
                message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                self.failures.append(Failure(time.monotonic(), message))
                if conn is not None:
                    conn.close()
                conn = None
            self._stop.wait(self.interval_s)
        if conn is not None:
            conn.close()


def count_present(dsn: str, ids: list[int]) -> int:
    """How many of `ids` exist in the themes table reachable through `dsn`."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM themes WHERE id = ANY(%s)", (ids,)).fetchone()
    return int(row[0]) if row else 0
