"""Replication lag benchmark: delhi-db (primary) to chennai-db (replica) under a steady write load.

Reproduce: .venv/bin/python -m bench.replication_lag [--modes sync,async] [--rate 500]
           [--seconds 60]
Results: docs/BENCHMARKS.md (section replication-lag) and bench/results/replication_lag.json.
Target (issue "Global DNS, monitor and dashboard"): replication lag p50/p99 under a steady
500 writes/s for 60 s, p99 < 50 ms.

Method: per replication mode, a data-tier deployment (`geoha up --tiers data`) on the
benchmarks' loopback nets, once chennai-db streams (and, in sync mode, is the synchronous
standby). Three processes, so that none waits for another's interpreter lock, then run side
by side: 5 s of warm-up (the same load, not counted), then the 60 s window:

1. Load: `rate - probe rate` INSERTs per second into `themes` (the writer's INSERT) through
   `geoha dsn --region delhi --write`, on a fixed schedule (write i is due at start + i/rate)
   spread over a few connections of one asyncio loop; a write that falls behind its slot runs
   at once, so a slow commit shows as lateness instead of a lower rate being silently offered.
2. Server's view: `pg_stat_replication` on the primary, sampled at 20 Hz on a superuser
   connection of its own: write_lag, flush_lag, replay_lag (a NULL counts as 0 when the byte
   difference is 0: the replica is caught up; otherwise it is left out and counted; a sample
   whose last reply from the replica predates the load is left out too) and
   pg_current_wal_lsn() minus sent_lsn, write_lsn, flush_lsn and replay_lsn in bytes.
3. Client's view (this process): 10 of the 500 writes per second are probes. Each probe
   INSERTs on the primary, takes the time when the commit is acknowledged, then asks the
   replica for the row on a connection of its own every 1 ms (at most 5 s). Lag is the time
   from the acknowledgement to the answer that found the row (an upper bound; the last answer
   that did not find it is kept as the lower bound).

Writes per second count every acknowledged INSERT (load and probes) by the second it was
acknowledged in. Percentiles are nearest-rank. Times across the processes come from one
clock (time.monotonic, CLOCK_MONOTONIC, system-wide on Linux).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import statistics
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import psycopg

from bench.common import bench_deployment, machine_facts, write_json, write_section
from geoha.db_access import SUPERUSER, libpq_tls
from geoha.ops.writer import INSERT
from tests.deployment import Deployment

PRIMARY = "delhi-db"
REPLICA = "chennai-db"
TARGET_P99_MS = 50.0
PROBE_RATE = 10
"""Probe writes per second (part of the rate, not on top of it)."""
SAMPLE_HZ = 20
LOAD_CONNECTIONS = 8
POLL_S = 0.001
VISIBLE_TIMEOUT_S = 5.0
WARMUP_S = 5.0
"""The load and the probes run this long before the measured window (connections, caches and
psycopg's prepared statements warm); nothing from it is counted."""
LOAD_GRACE_S = 5.0
"""A write still waiting this long after the window has closed is not sent."""
HELD_SHARE = 0.95
"""The rate counts as held when every second of the window got at least this share of it."""

SAMPLE_QUERY = """
    SELECT state, sync_state,
           pg_wal_lsn_diff(pg_current_wal_lsn(), sent_lsn)::bigint,
           pg_wal_lsn_diff(pg_current_wal_lsn(), write_lsn)::bigint,
           pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn)::bigint,
           pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint,
           (extract(epoch FROM write_lag) * 1000)::float8,
           (extract(epoch FROM flush_lag) * 1000)::float8,
           (extract(epoch FROM replay_lag) * 1000)::float8,
           (extract(epoch FROM clock_timestamp() - reply_time) * 1000)::float8
      FROM pg_stat_replication
     WHERE application_name = %s"""
SAMPLE_FIELDS = [
    "t_s",
    "state",
    "sync_state",
    "sent_bytes",
    "write_bytes",
    "flush_bytes",
    "replay_bytes",
    "write_lag_ms",
    "flush_lag_ms",
    "replay_lag_ms",
    "reply_age_ms",
]
LAGS = {
    "write_lag_ms": "write_bytes",
    "flush_lag_ms": "flush_bytes",
    "replay_lag_ms": "replay_bytes",
}
PROBE_FIELDS = ["t_s", "commit_ms", "visible_ms", "not_yet_ms", "polls"]
VISIBLE_QUERY = "SELECT 1 FROM themes WHERE id = %s"


# -- statistics ----------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 3),
        "p99": round(percentile(values, 99), 3),
        "max": round(max(values), 3),
        "mean": round(statistics.fmean(values), 3),
    }


# -- the three parts, each in a process of its own ---------------------------------


@dataclass(frozen=True)
class Window:
    """What the processes share: the window's length, its start once every part is connected
    (time.monotonic(), set before `go`), and the queue each part reports on."""

    seconds: float
    results: Queue[Any]
    go: Event
    start: Synchronized[float]


def wait_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        time.sleep(delay)


async def load(dsn: str, rate: float, connections: int, window: Window) -> dict[str, Any]:
    conns = [
        await psycopg.AsyncConnection.connect(
            dsn, autocommit=True, application_name="bench-lag-load"
        )
        for _ in range(connections)
    ]
    window.results.put(("ready", "load"))
    await asyncio.to_thread(window.go.wait, 60)
    start_at, seconds = window.start.value, window.seconds
    first_due = start_at - WARMUP_S
    total = round(rate * (WARMUP_S + seconds))
    deadline = start_at + seconds + LOAD_GRACE_S
    acks: list[float] = []
    latency_ms: list[float] = []
    late_ms: list[float] = []
    errors: list[str] = []
    next_slot = 0
    unsent = 0

    async def worker(index: int) -> None:
        nonlocal next_slot, unsent
        conn = conns[index]
        while next_slot < total:
            i = next_slot
            next_slot += 1
            due = first_due + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            began = time.monotonic()
            if began > deadline:
                unsent += 1
                continue
            counted = due >= start_at
            if counted:
                late_ms.append((began - due) * 1000)
            try:
                if conn.closed:
                    conn = conns[index] = await psycopg.AsyncConnection.connect(
                        dsn, autocommit=True, application_name="bench-lag-load"
                    )
                await conn.execute(INSERT, (f"lag-{i}", json.dumps({"seq": i})))
            except psycopg.Error as exc:
                errors.append(f"{time.monotonic() - start_at:.3f}: {exc}".splitlines()[0])
                continue
            acked = time.monotonic()
            acks.append(acked - start_at)
            if counted:
                latency_ms.append((acked - began) * 1000)

    await asyncio.gather(*(worker(k) for k in range(connections)))
    for conn in conns:
        await conn.close()
    return {
        "rate": rate,
        "scheduled": total,
        "unsent": unsent,
        "acks_s": acks,
        "commit_ms": summary(latency_ms),
        "late_ms": summary(late_ms),
        "errors": errors[:20],
        "error_count": len(errors),
    }


def load_main(dsn: str, rate: float, connections: int, window: Window) -> None:
    try:
        window.results.put(("load", asyncio.run(load(dsn, rate, connections, window))))
    except BaseException:
        window.results.put(("error", f"load: {traceback.format_exc()}"))


def sample_main(conninfo: dict[str, Any], window: Window) -> None:
    """pg_stat_replication of REPLICA at SAMPLE_HZ over the window, as rows of SAMPLE_FIELDS."""
    try:
        rows: list[list[Any]] = []
        with psycopg.connect(
            **conninfo, autocommit=True, application_name="bench-lag-sampler"
        ) as conn:
            window.results.put(("ready", "sampler"))
            window.go.wait(60)
            start_at = window.start.value
            for i in range(round(window.seconds * SAMPLE_HZ)):
                wait_until(start_at + i / SAMPLE_HZ)
                t = time.monotonic() - start_at
                row = conn.execute(SAMPLE_QUERY, (REPLICA,)).fetchone()
                rows.append([round(t, 4), *(row or [None] * (len(SAMPLE_FIELDS) - 1))])
        window.results.put(("samples", rows))
    except BaseException:
        window.results.put(("error", f"sampler: {traceback.format_exc()}"))


def probe_visibility(
    write_dsn: str, replica_dsn: str, seconds: float, start_at: float
) -> list[dict[str, Any]]:
    """PROBE_RATE writes per second; for each, acknowledgement -> visible on the replica."""
    probes: list[dict[str, Any]] = []
    with (
        psycopg.connect(write_dsn, autocommit=True, application_name="bench-lag-probe") as primary,
        psycopg.connect(
            replica_dsn, autocommit=True, application_name="bench-lag-probe"
        ) as replica,
    ):
        for k in range(round((WARMUP_S + seconds) * PROBE_RATE)):
            wait_until(start_at - WARMUP_S + (k + 0.5) / PROBE_RATE)
            sent = time.monotonic()
            row = primary.execute(INSERT, (f"lag-probe-{k}", json.dumps({"probe": k}))).fetchone()
            acked = time.monotonic()
            assert row is not None
            polls, last_miss, found = 0, None, False
            while True:
                asked = time.monotonic()
                found = replica.execute(VISIBLE_QUERY, (row[0],)).fetchone() is not None
                answered = time.monotonic()
                polls += 1
                if found or answered - acked > VISIBLE_TIMEOUT_S:
                    break
                last_miss = asked
                time.sleep(POLL_S)
            if acked < start_at:
                continue  # warm-up
            probes.append(
                {
                    "t_s": round(acked - start_at, 4),
                    "commit_ms": round((acked - sent) * 1000, 3),
                    "visible_ms": round((answered - acked) * 1000, 3) if found else None,
                    "not_yet_ms": round(max(0.0, last_miss - acked) * 1000, 3)
                    if last_miss is not None
                    else 0.0,
                    "polls": polls,
                }
            )
    return probes


# -- one replication mode ------------------------------------------------------------


def superuser_conninfo(dep: Deployment) -> dict[str, Any]:
    node = dep.plan.node(PRIMARY)
    password = json.loads(dep.plan.secrets_path.read_text())["superuser"]
    return {
        "host": node.address,
        "port": node.ports["postgres"],
        "user": SUPERUSER,
        "password": password,
        "dbname": "postgres",
        "connect_timeout": 5,
        **libpq_tls(node.ca),
    }


def run_window(dep: Deployment, rate: float, seconds: float) -> dict[str, Any]:
    write_dsn = dep.dsn("delhi", write=True)
    ctx = multiprocessing.get_context("spawn")
    window = Window(seconds, ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0))
    load_proc = ctx.Process(
        target=load_main,
        args=(write_dsn, rate - PROBE_RATE, LOAD_CONNECTIONS, window),
        name="bench-lag-load",
    )
    sampler = ctx.Process(
        target=sample_main, args=(superuser_conninfo(dep), window), name="bench-lag-sampler"
    )
    got: dict[str, Any] = {}
    load_proc.start()
    sampler.start()
    try:
        for _ in range(2):
            kind, value = window.results.get(timeout=60)
            if kind == "error":
                raise RuntimeError(value)
        window.start.value = time.monotonic() + 0.5 + WARMUP_S
        window.go.set()
        probes = probe_visibility(write_dsn, dep.node_dsn(REPLICA), seconds, window.start.value)
        while len(got) < 2:
            kind, value = window.results.get(timeout=seconds + 60)
            if kind == "error":
                raise RuntimeError(value)
            got[kind] = value
    finally:
        window.go.set()
        for proc in (load_proc, sampler):
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
                proc.join()
    return {"load": got["load"], "samples": got["samples"], "probes": probes}


def count_rows(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM themes WHERE name LIKE 'lag-%'").fetchone()
    return int(row[0]) if row else 0


def measure_mode(mode: str, rate: float, seconds: float) -> dict[str, Any]:
    dep = bench_deployment(mode, tiers="data")
    try:
        dep.up()
        dep.wait_for(
            f"{REPLICA} streaming (the sync standby in sync mode)",
            lambda: dep.can_take_over(REPLICA),
        )
        if dep.primary() != PRIMARY:
            raise AssertionError(f"expected {PRIMARY} as primary, got {dep.primary()}")
        print(f"{mode}: deployment ready, {rate:g} writes/s for {seconds:g} s", flush=True)
        raw = run_window(dep, rate, seconds)
        after = dep.database(REPLICA)
        primary_after = dep.primary()
        rows = count_rows(dep.dsn("delhi", write=True))
    finally:
        dep.close()
    result = analyse(raw, rate, seconds)
    result["rows_in_table"] = rows
    result["primary_after"] = primary_after
    result["replica_after"] = {k: after.get(k) for k in ("role", "replication_state", "sync")}
    print(f"{mode}: {json.dumps({k: v for k, v in result.items() if k != 'raw'})}", flush=True)
    return result


def csv_rows(fields: list[str], rows: list[list[Any]]) -> list[str]:
    """Raw rows kept compact in the results file: a header, then one comma-separated line each
    (an empty field is NULL)."""
    return [",".join(fields)] + [",".join("" if v is None else str(v) for v in row) for row in rows]


def reply_before_load(sample: dict[str, Any]) -> bool:
    """Whether the replica's last reply came before the load began (warm-up included)."""
    return bool((sample["reply_age_ms"] or 0.0) > (sample["t_s"] + WARMUP_S) * 1000)


def analyse(raw: dict[str, Any], rate: float, seconds: float) -> dict[str, Any]:
    load_result, samples, probes = raw["load"], raw["samples"], raw["probes"]
    acks = list(load_result.pop("acks_s")) + [p["t_s"] for p in probes]
    per_second = Counter(int(t) for t in acks if 0 <= t < seconds)
    counts = [per_second.get(s, 0) for s in range(int(seconds))]
    in_window = sum(counts)
    records = [dict(zip(SAMPLE_FIELDS, row, strict=True)) for row in samples]
    streaming = [r for r in records if r["state"] == "streaming"]
    # The lag columns hold what the replica's last reply measured; a reply from before the load
    # (an idle replica replies every wal_receiver_status_interval) says nothing about it.
    fresh = [r for r in streaming if not reply_before_load(r)]
    server: dict[str, Any] = {}
    for lag, diff in LAGS.items():
        values, unknown = [], 0
        for r in fresh:
            if r[lag] is not None:
                values.append(r[lag])
            elif r[diff] == 0:
                values.append(0.0)
            else:
                unknown += 1
        server[lag] = {**summary(values), "null_with_bytes_behind": unknown}
    for diff in ("sent_bytes", "write_bytes", "flush_bytes", "replay_bytes"):
        server[diff] = summary([float(r[diff]) for r in streaming if r[diff] is not None])
    server["reply_age_ms"] = summary([r["reply_age_ms"] for r in fresh])
    server["reply_before_load"] = [
        {k: r[k] for k in ("t_s", "reply_age_ms", *LAGS, "replay_bytes")}
        for r in streaming
        if reply_before_load(r)
    ]
    server["samples"] = len(records)
    server["not_streaming"] = len(records) - len(streaming)
    server["sync_states"] = dict(Counter(str(r["sync_state"]) for r in records))
    visible = [p["visible_ms"] for p in probes if p["visible_ms"] is not None]
    client = {
        "visible_ms": summary(visible),
        "not_yet_ms": summary([p["not_yet_ms"] for p in probes if p["visible_ms"] is not None]),
        "probes": len(probes),
        "first_poll_hits": sum(1 for p in probes if p["polls"] == 1),
        "timed_out": sum(1 for p in probes if p["visible_ms"] is None),
        "probe_commit_ms": summary([p["commit_ms"] for p in probes]),
    }
    held = bool(counts) and min(counts) >= HELD_SHARE * rate
    writes = {
        "target_per_s": rate,
        "acked_in_window": in_window,
        "mean_per_s": round(in_window / seconds, 1),
        "per_second": counts,
        "per_second_min": min(counts, default=0),
        "per_second_median": statistics.median(counts) if counts else 0,
        "per_second_max": max(counts, default=0),
        "held": held,
        "load": load_result,
    }
    return {
        "writes": writes,
        "server": server,
        "client": client,
        "raw": {
            "samples": csv_rows(SAMPLE_FIELDS, samples),
            "probes": csv_rows(PROBE_FIELDS, [[p[k] for k in PROBE_FIELDS] for p in probes]),
        },
    }


# -- the report ------------------------------------------------------------------------


def triple(s: dict[str, Any], digits: int = 1) -> str:
    if not s.get("n"):
        return "n/a"
    return f"{s['p50']:,.{digits}f} / {s['p99']:,.{digits}f} / {s['max']:,.{digits}f}"


def verdict(result: dict[str, Any]) -> tuple[bool, str]:
    replay = result["server"]["replay_lag_ms"]
    visible = result["client"]["visible_ms"]
    met = (
        result["writes"]["held"]
        and replay.get("p99", math.inf) < TARGET_P99_MS
        and visible.get("p99", math.inf) < TARGET_P99_MS
        and result["client"]["timed_out"] == 0
    )
    return met, (
        f"replay_lag p99 {replay.get('p99', math.nan):.1f} ms, commit -> visible p99 "
        f"{visible.get('p99', math.nan):.1f} ms at {result['writes']['mean_per_s']:.0f} writes/s"
    )


def report(data: dict[str, Any]) -> str:
    facts, modes, rate, seconds = data["machine"], data["modes"], data["rate"], data["seconds"]
    names = list(modes)
    head = " | ".join(f"{m} p50 / p99 / max" for m in names)
    lines = [
        "## Replication lag (issue: global DNS, monitor and dashboard)",
        "",
        f"Machine: {facts['cores']} cores ({facts['cpu']}), {facts['memory_gib']} GiB, "
        f"kernel {facts['kernel']}; {facts['postgres']}; {facts['patroni']}; data directories "
        f"on {facts['data_filesystem']}; load average after "
        f"the runs {facts['load_average_after']}. Measured {data['date']}.",
        "",
        "Reproduce: `.venv/bin/python -m bench.replication_lag` (add `--modes sync`, "
        "`--rate R`, `--seconds S`).",
        "",
        f"Method: per replication mode a data-tier deployment (`geoha up --tiers data`: etcd, "
        f"delhi-db primary, chennai-db replica, fsync on, synchronous_commit on), measured once "
        f"chennai-db streams (in sync mode: as the synchronous standby). For {seconds:g} s, after "
        f"{WARMUP_S:g} s of the same load as an uncounted warm-up, "
        f"{rate:g} INSERTs per second into `themes` go to the primary through `geoha dsn "
        f"--region delhi --write`: {rate - PROBE_RATE:g}/s from one asyncio process on "
        f"{LOAD_CONNECTIONS} connections, each write due at a fixed slot (start + i/rate), plus "
        f"{PROBE_RATE} probe writes per second. A second process samples `pg_stat_replication` "
        f"on the primary at {SAMPLE_HZ} Hz: the lag rows count a NULL lag as 0 when the replica "
        f"is 0 bytes behind and leave out a NULL with bytes outstanding, and a sample whose last "
        f"reply from the replica predates the load; the byte rows take every sample. Each "
        f"probe takes the time its commit is acknowledged, then asks chennai-db for the row "
        f"every {POLL_S * 1000:g} ms on a connection of its own: commit -> visible is the time "
        f"to the answer that has it (an upper bound, one query round trip included). "
        f"Nearest-rank percentiles; all three processes share the 2 cores with both "
        f"PostgreSQL servers. One machine: chennai-db is a loopback hop from delhi-db, so no "
        f"inter-region round trip is in these numbers.",
        "",
        f"| measurement | {head} |",
        "|---|" + "---|" * len(names),
    ]

    def add(label: str, pick: Any, digits: int = 1) -> None:
        lines.append(
            f"| {label} | " + " | ".join(triple(pick(modes[m]), digits) for m in names) + " |"
        )

    lines.append(
        "| writes acknowledged per second: mean (per-second min / median / max) | "
        + " | ".join(
            f"{r['writes']['mean_per_s']:.1f} ({r['writes']['per_second_min']} / "
            f"{r['writes']['per_second_median']:g} / {r['writes']['per_second_max']})"
            for r in modes.values()
        )
        + " |"
    )
    add("load: commit latency (ms)", lambda r: r["writes"]["load"]["commit_ms"], 2)
    add("load: start behind its slot (ms)", lambda r: r["writes"]["load"]["late_ms"], 2)
    add("`write_lag` (ms)", lambda r: r["server"]["write_lag_ms"], 2)
    add("`flush_lag` (ms)", lambda r: r["server"]["flush_lag_ms"], 2)
    add("`replay_lag` (ms)", lambda r: r["server"]["replay_lag_ms"], 2)
    add("WAL not yet sent (bytes)", lambda r: r["server"]["sent_bytes"], 0)
    add("WAL not yet written on the replica (bytes)", lambda r: r["server"]["write_bytes"], 0)
    add("WAL not yet flushed on the replica (bytes)", lambda r: r["server"]["flush_bytes"], 0)
    add("WAL not yet replayed on the replica (bytes)", lambda r: r["server"]["replay_bytes"], 0)
    add("age of the replica's last reply (ms)", lambda r: r["server"]["reply_age_ms"], 2)
    add(
        "**commit acknowledged -> row visible on chennai-db (ms)**",
        lambda r: r["client"]["visible_ms"],
        2,
    )
    lines.append(
        "| probes: found by the first ask / not found in 5 s | "
        + " | ".join(
            f"{r['client']['first_poll_hits']} of {r['client']['probes']}"
            f" / {r['client']['timed_out']}"
            for r in modes.values()
        )
        + " |"
    )
    lines.append("")
    for mode, result in modes.items():
        met, why = verdict(result)
        writes = result["writes"]
        held = (
            f"{rate:g} writes/s held (every second >= {HELD_SHARE:.0%} of it; slowest "
            f"{writes['per_second_min']})"
            if writes["held"]
            else f"**{rate:g} writes/s not held** (slowest second: {writes['per_second_min']})"
        )
        lines.append(
            f"- {mode}: target p99 < {TARGET_P99_MS:g} ms **{'met' if met else 'missed'}** "
            f"({why}); {held}."
        )
    lines += ["", "What the numbers show:", "", *findings(modes)]
    return "\n".join(lines)


def p50_gap(result: dict[str, Any]) -> float:
    """replay_lag p50 minus flush_lag p50 (ms)."""
    server = result["server"]
    return float(server["replay_lag_ms"].get("p50", math.nan)) - float(
        server["flush_lag_ms"].get("p50", math.nan)
    )


def ms_or_null(sample: dict[str, Any]) -> str:
    lag = sample["replay_lag_ms"]
    return "NULL" if lag is None else f"{lag:.1f} ms"


def findings(modes: dict[str, dict[str, Any]]) -> list[str]:
    """Observations drawn from the results (numbers filled in from this run)."""
    out = []
    ages = ", ".join(f"{m} {triple(r['server']['reply_age_ms'], 2)}" for m, r in modes.items())
    gaps = ", ".join(f"{m} {p50_gap(r):.2f}" for m, r in modes.items())
    out.append(
        "- replay_lag is not set by a reporting interval under this load: chennai-db replies "
        "after each WAL write and flush it does, so the last reply is a millisecond or two old "
        f"when sampled (p50 / p99 / max ms: {ages}), and replay_lag p50 exceeds flush_lag p50 "
        f"by {gaps} ms. `wal_receiver_status_interval` (10 s) only paces an idle replica."
    )
    stale = [
        f"{m}: reply {s['reply_age_ms'] / 1000:.1f} s old, replay_lag {ms_or_null(s)}"
        for m, r in modes.items()
        for s in r["server"]["reply_before_load"]
    ]
    kept = any(
        s["replay_lag_ms"] is not None
        for r in modes.values()
        for s in r["server"]["reply_before_load"]
    )
    if stale:
        out.append(
            "- Some samples found the replica's last reply from before the load began (an idle "
            "replica replies every `wal_receiver_status_interval`): "
            + "; ".join(stale)
            + "; left out above."
            + (
                " The lag columns keep the last reply's measurement until the next reply, so a "
                "lag shown for an idle cluster, `geoha status` included, can be seconds old."
                if kept
                else ""
            )
        )
    nulls = ", ".join(
        f"{m} {r['server']['replay_lag_ms'].get('null_with_bytes_behind', 0)} of "
        f"{r['server']['samples']}"
        for m, r in modes.items()
    )
    out.append(
        f"- Samples with NULL lags but bytes outstanding ({nulls}): the walsender clears the "
        "lag columns when two replies in a row show everything sent replayed (meant for an "
        "idle replica, it also happens under this load whenever the replica catches up "
        "between two commits), and WAL written after that is not timed until the next reply. "
        "They are left out of the lag rows; the byte rows include them."
    )
    for m, r in modes.items():
        client = r["client"]
        total = client["probes"]
        if m == "sync":
            out.append(
                f"- sync: {client['first_poll_hits']} of {total} probes were visible at the "
                "first ask: the commit waits for chennai-db's flush (synchronous_commit on) "
                "and replay follows within a query round trip, so commit -> visible here is "
                "mostly that round trip, an upper bound."
                + (
                    f" The rest ({total - client['first_poll_hits']}), found at a later ask, show "
                    "that synchronous_commit on waits for the replica's flush, not its replay."
                    if client["first_poll_hits"] < total
                    else ""
                )
            )
        else:
            out.append(
                f"- {m}: {total - client['first_poll_hits']} of {total} probes needed a second "
                f"ask ({POLL_S * 1000:g} ms later): the commit does not wait for the replica, "
                f"which shows the row {triple(client['visible_ms'], 2)} ms (p50 / p99 / max) "
                "after the acknowledgement."
            )
    if "sync" in modes and "async" in modes:
        sync_c = modes["sync"]["writes"]["load"]["commit_ms"]
        async_c = modes["async"]["writes"]["load"]["commit_ms"]
        out.append(
            f"- What sync costs the writer: commit p50 {sync_c['p50']:.2f} ms, p99 "
            f"{sync_c['p99']:.2f} ms against {async_c['p50']:.2f} / {async_c['p99']:.2f} ms "
            "async, on one machine where the replica is a loopback hop away."
        )
    return out


def filesystem_of(path: str) -> str:
    """Type and device of the mount holding `path` (where the deployment's data lives)."""
    best = ("", "unknown", "unknown")
    try:
        for line in Path("/proc/mounts").read_text(encoding="utf-8").splitlines():
            device, mount, fstype = line.split()[:3]
            if (path == mount or path.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(
                best[0]
            ):
                best = (mount, fstype, device)
    except OSError:
        pass
    return f"{best[1]} on {best[2]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="sync,async", help="replication modes, in order")
    parser.add_argument(
        "--rate", type=float, default=500.0, help="writes per second, probes included"
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    if args.rate <= PROBE_RATE or not 0 < args.seconds <= 300:
        parser.error(f"--rate must exceed {PROBE_RATE} and --seconds lie in (0, 300]")
    facts = machine_facts()
    facts["data_filesystem"] = filesystem_of(tempfile.gettempdir())
    modes = {m: measure_mode(m, args.rate, args.seconds) for m in args.modes.split(",")}
    facts["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    data = {
        "machine": facts,
        "date": time.strftime("%Y-%m-%d"),
        "rate": args.rate,
        "seconds": args.seconds,
        "modes": modes,
    }
    write_json("replication_lag", data)
    markdown = report(data)
    write_section("replication-lag", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
