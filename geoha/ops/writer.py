"""A bounded writer loop: what a client sees during a fault.

It inserts one row every `interval_s`, through a multi-host read-write URI
(`WriterLoop`) or through the API (`ApiWriterLoop`), reconnecting after every
error, and records the id, time and duration of every acknowledged insert and
what every failed one said. Drills, benchmarks and scenario tests read from it:
which writes were acknowledged (RPO: are they all there afterwards?) and how
long no write was acknowledged (RTO, switchover gap).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field

import httpx
import psycopg

INSERT = "INSERT INTO themes (name, config) VALUES (%s, %s) RETURNING id"


@dataclass
class Ack:
    id: int
    at: float
    """time.monotonic() when the commit was acknowledged."""
    took_s: float = 0.0
    """From sending the write to its acknowledgement."""


@dataclass
class Failure:
    at: float
    """time.monotonic() when the attempt failed."""
    message: str
    """The first line of the error, as libpq, the server or the API put it."""


@dataclass
class WriterLoop:
    """Inserts a row every `interval_s` through a libpq URI; stops after `max_s` seconds or
    `max_rows` rows."""

    dsn: str
    interval_s: float = 0.05
    max_s: float = 180.0
    max_rows: int = 20_000
    acks: list[Ack] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _conn: psycopg.Connection | None = field(default=None, repr=False)

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

    def longest_write_between(self, start: float, end: float) -> float:
        """The longest acknowledged write that ended within [start, end] (seconds)."""
        return max((a.took_s for a in self.acks if start <= a.at <= end), default=0.0)

    def _run(self) -> None:
        started = time.monotonic()
        seq = 0
        try:
            while not self._stop.is_set() and time.monotonic() - started < self.max_s:
                if len(self.acks) >= self.max_rows:
                    break
                seq += 1
                sent = time.monotonic()
                try:
                    row_id = self._write(seq)
                except WriteFailed as exc:
                    self.failures.append(Failure(time.monotonic(), str(exc)))
                else:
                    now = time.monotonic()
                    self.acks.append(Ack(row_id, now, now - sent))
                self._stop.wait(self.interval_s)
        finally:
            self._close()

    def _write(self, seq: int) -> int:
        """One insert: its id, or WriteFailed saying what the client saw."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self.dsn, autocommit=True)
            row = self._conn.execute(INSERT, (f"writer-{seq}", json.dumps({"seq": seq}))).fetchone()
        except psycopg.Error as exc:
            self._close()
            raise WriteFailed((str(exc).strip().splitlines() or [type(exc).__name__])[0]) from None
        if row is None:
            raise WriteFailed("INSERT ... RETURNING gave no row")
        return int(row[0])

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None


class WriteFailed(Exception):
    """A write was not acknowledged; the message is what the client saw."""


@dataclass
class ApiWriterLoop(WriterLoop):
    """The same loop as an application's client sees it: `POST /api/v1/themes` at `dsn`, a
    URL (a region's entry, an API instance), every answer but a 201 counted as failed."""

    timeout_s: float = 30.0
    _client: httpx.Client | None = field(default=None, repr=False)

    def _write(self, seq: int) -> int:
        if self._client is None:
            self._client = httpx.Client(base_url=self.dsn, timeout=self.timeout_s)
        try:
            answer = self._client.post(
                "/api/v1/themes", json={"name": f"api-writer-{seq}", "config": {"seq": seq}}
            )
        except httpx.HTTPError as exc:
            raise WriteFailed(f"{type(exc).__name__}: {exc}"[:300]) from None
        if answer.status_code != 201:
            raise WriteFailed(f"HTTP {answer.status_code}: {answer.text[:300]}")
        return int(answer.json()["id"])

    def _close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None


def count_present(dsn: str, ids: list[int]) -> int:
    """How many of `ids` exist in the themes table reachable through `dsn`."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM themes WHERE id = ANY(%s)", (ids,)).fetchone()
    return int(row[0]) if row else 0
