"""The health monitor's history: one SQLite file in the run directory.

Two tables: `samples` (one row per region per monitor round: its entry and API
checks, its database's role and replication lag, its DNS health) and
`incidents` (subject, cause, start, end). Both are bounded: `prune` drops rows
older than the retention, then the oldest samples beyond a row count. Every
statement is parameterized. One connection, used by one thread at a time.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import astuple, dataclass, fields, replace
from pathlib import Path
from typing import Any

from geoha.ops.incidents import Incident

SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    at REAL NOT NULL,
    region TEXT NOT NULL,
    entry_ok INTEGER,
    entry_ms REAL,
    api_ok INTEGER,
    api_ms REAL,
    dns_healthy INTEGER NOT NULL,
    db_node TEXT,
    db_role TEXT,
    replication_state TEXT,
    write_lag_bytes INTEGER,
    replay_lag_bytes INTEGER,
    write_lag_ms REAL,
    replay_lag_ms REAL
);
CREATE INDEX IF NOT EXISTS samples_at ON samples (at);
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY,
    subject TEXT NOT NULL,
    region TEXT,
    cause TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL,
    resolution TEXT
);
CREATE INDEX IF NOT EXISTS incidents_started ON incidents (started_at);
"""


@dataclass(frozen=True, slots=True)
class RegionSample:
    """One region in one monitor round (None: not known this round)."""

    at: float
    region: str
    entry_ok: bool | None
    entry_ms: float | None
    api_ok: bool | None
    api_ms: float | None
    dns_healthy: bool
    db_node: str | None
    db_role: str | None
    replication_state: str | None
    write_lag_bytes: int | None
    replay_lag_bytes: int | None
    write_lag_ms: float | None
    replay_lag_ms: float | None

    def record(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


COLUMNS = [f.name for f in fields(RegionSample)]
BOOLEAN_COLUMNS = ("entry_ok", "api_ok", "dns_healthy")


class MonitorStore:
    """The history file; `close()` when done."""

    def __init__(self, path: Path) -> None:
        self.path = path
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # created private, never widened
        os.close(fd)
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=5)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add_samples(self, samples: Iterable[RegionSample]) -> None:
        placeholders = ", ".join("?" for _ in COLUMNS)
        insert = f"INSERT INTO samples ({', '.join(COLUMNS)}) VALUES ({placeholders})"
        with self._lock:
            self._db.executemany(insert, [astuple(s) for s in samples])
            self._db.commit()

    def samples_since(self, since: float) -> list[RegionSample]:
        """Every sample taken at or after `since`, oldest first."""
        query = f"SELECT {', '.join(COLUMNS)} FROM samples WHERE at >= ? ORDER BY at, region"
        with self._lock:
            rows = self._db.execute(query, (since,)).fetchall()
        return [_sample(row) for row in rows]

    def save_incident(self, incident: Incident) -> Incident:
        """Insert a new incident (returned with its id) or update an ended one."""
        with self._lock:
            if incident.id is None:
                cursor = self._db.execute(
                    "INSERT INTO incidents (subject, region, cause, started_at, ended_at,"
                    " resolution) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        incident.subject,
                        incident.region,
                        incident.cause,
                        incident.started_at,
                        incident.ended_at,
                        incident.resolution,
                    ),
                )
                incident = replace(incident, id=cursor.lastrowid)
            else:
                self._db.execute(
                    "UPDATE incidents SET ended_at = ?, resolution = ? WHERE id = ?",
                    (incident.ended_at, incident.resolution, incident.id),
                )
            self._db.commit()
        return incident

    def incidents(self, limit: int, open_only: bool = False) -> list[Incident]:
        """Open incidents first, then the latest ended ones; at most `limit`."""
        where = "WHERE ended_at IS NULL" if open_only else ""
        query = (
            "SELECT subject, region, cause, started_at, ended_at, resolution, id FROM incidents"
            f" {where} ORDER BY ended_at IS NOT NULL, started_at DESC LIMIT ?"
        )
        with self._lock:
            rows = self._db.execute(query, (limit,)).fetchall()
        return [Incident(*row) for row in rows]

    def count_incidents(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT count(*) FROM incidents").fetchone()
        return int(count)

    def prune(self, now: float, max_age_s: float, max_rows: int) -> int:
        """Drop samples and ended incidents older than `max_age_s`, then the oldest samples
        beyond `max_rows`; how many rows went."""
        cutoff = now - max_age_s
        with self._lock:
            dropped = self._db.execute("DELETE FROM samples WHERE at < ?", (cutoff,)).rowcount
            dropped += self._db.execute(
                "DELETE FROM incidents WHERE ended_at IS NOT NULL AND ended_at < ?", (cutoff,)
            ).rowcount
            dropped += self._db.execute(
                "DELETE FROM samples WHERE rowid IN"
                " (SELECT rowid FROM samples ORDER BY at DESC LIMIT -1 OFFSET ?)",
                (max_rows,),
            ).rowcount
            self._db.commit()
        return dropped


def _sample(row: tuple[Any, ...]) -> RegionSample:
    values = dict(zip(COLUMNS, row, strict=True))
    for name in BOOLEAN_COLUMNS:
        if values[name] is not None:
            values[name] = bool(values[name])
    return RegionSample(**values)
