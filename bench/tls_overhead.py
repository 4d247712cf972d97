"""Internal TLS on vs off: API throughput, replication lag, failover RTO, `geoha up` time.

Reproduce: .venv/bin/python -m bench.tls_overhead [--rounds 4] [--duration 10] [--warmup 3]
           [--idle 10] [--lag-seconds 60] [--rate 500] [--failovers 5]
Results: docs/BENCHMARKS.md (section tls-overhead) and bench/results/tls_overhead.json
(`--report-only` rewrites the section from that file).
Targets (issue "TLS and secrets"): with internal TLS on, API requests/s >= 0.9 x off for a
read and a write through the whole path; replication lag p99 < 50 ms under 500 writes/s;
failover write RTO unchanged within noise; `geoha up` <= 30 s.

Method: the whole stack (sync replication, one API and one web instance per region, pinned:
min = desired = max = 1, `traffic.api_route = "via-web"`) on the benchmarks' loopback nets,
once with the default `security.internal_tls = true` and once with it false, one deployment at
a time. Each of `--rounds` rounds brings up a fresh deployment of each mode, the order
alternating (on first in odd rounds, off first in even ones), and in each: `geoha up` from
nothing (an empty run directory; with TLS on that includes making the CA and every node's
certificate) timed to the exit of the command, which prints the entry URLs last; 1000 themes
seeded; the deployment's CPU over `--idle` seconds with no load; then wrk (-t2, after an
uncounted warm-up) at delhi's frontend LB, so every request goes frontend LB -> Caddy ->
backend LB -> API -> PostgreSQL: `GET /api/v1/themes/500` and `POST /api/v1/themes` (a small
JSON theme; each one a synchronous commit). The first round's deployments also run
bench/replication_lag.py's window (delhi-db -> chennai-db, 500 INSERTs/s through `geoha dsn
--region delhi --write`, 10 of them probes timed to visible on chennai-db, pg_stat_replication
sampled at 20 Hz); the second round's (the first's when there is one round) run
bench/data_tier.py's failover `--failovers` times (a writer every 20 ms through `geoha dsn
--region chennai --write`, `geoha chaos kill-node` on the primary, kill -> first acknowledged
write, then `start-node` until the node streams again). CPU time (user + system, from /proc)
of every process of the deployment is summed by tier before and after each measured wrk run
and the idle window: per request it is that time over the requests wrk counted. pg_stat_ssl
on delhi-db shows which connections are encrypted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import time
import traceback
from collections.abc import Callable
from typing import Any

import psutil
import psycopg

from bench.common import (
    REPO,
    bench_deployment,
    machine_facts,
    min_median_max,
    write_json,
    write_section,
)
from bench.data_tier import one_failover
from bench.dns import cpu_seconds
from bench.replication_lag import (
    PRIMARY,
    REPLICA,
    TARGET_P99_MS,
    analyse,
    run_window,
    superuser_conninfo,
    triple,
    verdict,
)
from bench.traffic_path import seed
from bench.wrk import parse_wrk, run_wrk
from geoha.runtime.controller import controller_pid
from geoha.runtime.kinds import kinds
from geoha.runtime.process import node_processes, read_record
from tests.deployment import Deployment

MODES = {"on": "", "off": "\n[security]\ninternal_tls = false\n"}
"""Each mode's extra topology: TLS on is the default."""
LABELS = {"on": "TLS on (default)", "off": "TLS off (`security.internal_tls = false`)"}
ONE_INSTANCE = (
    "".join(
        f"\n[regions.{region}.{tier}.autoscale]\nmin = 1\ndesired = 1\nmax = 1\n"
        for region in ("delhi", "chennai")
        for tier in ("api", "web")
    )
    + '\n[traffic]\napi_route = "via-web"\n'
)
"""One instance per tier and region, never scaled (max = 1: wrk would make the autoscaler
grow the API tier in the middle of a round), and the path through Caddy."""
POST_THEME = json.dumps({"name": "tls bench", "config": {"dark": True, "accent": "#336699"}})
HTTP_ENDPOINTS = {
    "GET /api/v1/themes/:id": ("/api/v1/themes/500", None),
    "POST /api/v1/themes": ("/api/v1/themes", "post.lua"),
}
"""Endpoint: path at delhi's entry, and the wrk script (in the deployment's directory)."""
API_TARGET = 0.9
UP_TARGET_S = 30.0
SSL_QUERY = """
    SELECT a.backend_type, coalesce(a.usename::text, ''), s.ssl, count(*)
      FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
     WHERE a.backend_type IN ('client backend', 'walsender') AND a.pid <> pg_backend_pid()
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""


# -- what one deployment measures --------------------------------------------------------------

CpuSnapshot = dict[str, dict[int, float]]
TIERS = {
    "database": ("database",),
    "api": ("api",),
    "proxies": ("frontend-lb", "web", "backend-lb"),
    "etcd + controller": ("etcd", "controller"),
}
"""How the report groups the deployment's CPU time (node roles, and the controller)."""


def cpu_snapshot(dep: Deployment) -> CpuSnapshot:
    """CPU seconds so far (user + system) of every process of the deployment, by node role
    (Patroni and the PostgreSQL processes, which leave its session, are the database's) and
    the controller."""
    groups: dict[str, list[psutil.Process]] = {}
    by_role = kinds()
    for node in dep.plan.nodes:
        record = read_record(node.dir)
        if record is not None:
            extra = by_role[node.role].extra_pids(node)
            groups.setdefault(str(node.role), []).extend(node_processes(record, extra))
    pid = controller_pid(dep.run_dir)
    if pid is not None:
        with contextlib.suppress(psutil.Error):
            groups["controller"] = [psutil.Process(pid)]
    snapshot: CpuSnapshot = {}
    for role, procs in groups.items():
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                snapshot.setdefault(role, {})[proc.pid] = cpu_seconds(proc)
    return snapshot


def cpu_used(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """CPU seconds of each role between two snapshots (a process new since counts whole; one
    gone since is missed)."""
    return {
        role: round(sum(t - before.get(role, {}).get(pid, 0.0) for pid, t in procs.items()), 3)
        for role, procs in after.items()
    }


def idle_cpu(dep: Deployment, seconds: float) -> dict[str, float]:
    """Each role's CPU, in percent of one core, over `seconds` with no load."""
    before = cpu_snapshot(dep)
    time.sleep(seconds)
    used = cpu_used(before, cpu_snapshot(dep))
    return {role: round(100 * s / seconds, 2) for role, s in used.items()}


def timed_up(dep: Deployment) -> dict[str, Any]:
    """`geoha up` from an empty run directory to the command's exit, after it printed the
    entry URLs; the controller's own "ready in" figure alongside."""
    started = time.monotonic()
    out = dep.geoha("up", timeout=600).stdout
    wall = time.monotonic() - started
    if "open http://" not in out:
        raise AssertionError(f"`geoha up` printed no entry URL:\n{out}")
    ready = re.search(r"ready in ([\d.]+) s", out)
    return {"wall_s": round(wall, 2), "ready_after_s": float(ready.group(1)) if ready else None}


def encrypted_connections(dep: Deployment) -> list[dict[str, Any]]:
    """delhi-db's client and replication connections (other than this one), by TLS or not."""
    with psycopg.connect(**superuser_conninfo(dep), autocommit=True) as conn:
        rows = conn.execute(SSL_QUERY).fetchall()
    return [{"backend": b, "user": u, "ssl": bool(s), "count": int(n)} for b, u, s, n in rows]


def measure_http(dep: Deployment, args: argparse.Namespace) -> list[dict[str, Any]]:
    base = dep.entry_url("delhi")
    (dep.base / "post.lua").write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(POST_THEME)}\n"
    )
    samples = []
    for endpoint, (path, script_name) in HTTP_ENDPOINTS.items():
        script = dep.base / script_name if script_name else None
        run_wrk(base + path, script, args.warmup, args.connections, latency=False)
        before = cpu_snapshot(dep)
        out = run_wrk(base + path, script, args.duration, args.connections, latency=True)
        used = cpu_used(before, cpu_snapshot(dep))
        rps, p50, p99, non_2xx, errors = parse_wrk(out)
        samples.append(
            {
                "endpoint": endpoint,
                "rps": rps,
                "p50_ms": p50,
                "p99_ms": p99,
                "non_2xx": non_2xx,
                "errors": errors,
                "cpu_s": used,
            }
        )
        print(f"  {endpoint}: {rps:.0f} req/s p50 {p50:.1f} p99 {p99:.1f} ms", flush=True)
    return samples


def measure_lag(dep: Deployment, rate: float, seconds: float) -> dict[str, Any]:
    dep.wait_for(f"{REPLICA} the sync standby", lambda: dep.can_take_over(REPLICA))
    if dep.primary() != PRIMARY:
        raise AssertionError(f"expected {PRIMARY} as primary, got {dep.primary()}")
    result = analyse(run_window(dep, rate, seconds), rate, seconds)
    result["met"], result["verdict"] = verdict(result)
    print(f"  lag: {result['verdict']}", flush=True)
    return result


def guarded(errors: list[str], what: str, measure: Callable[[], Any]) -> Any:
    """`measure()`, or None with the failure recorded: one part that fails does not cost
    the rest of the run (the deployment is stopped all the same)."""
    try:
        return measure()
    except Exception:
        errors.append(f"{what}: {traceback.format_exc().strip().splitlines()[-1]}")
        print(f"  {what} FAILED:\n{traceback.format_exc()}", flush=True)
        return None


def one_deployment(mode: str, round_no: int, args: argparse.Namespace) -> dict[str, Any]:
    print(f"round {round_no}, TLS {mode}", flush=True)
    dep = bench_deployment("sync", ONE_INSTANCE + MODES[mode])
    errors: list[str] = []
    result: dict[str, Any] = {"mode": mode, "round": round_no, "tls": dep.plan.tls}
    try:
        result["up"] = up = guarded(errors, "geoha up", lambda: timed_up(dep))
        if up is None:
            return result
        print(f"  up: {up}", flush=True)
        seed(dep)
        result["idle_cpu_pct"] = guarded(errors, "idle CPU", lambda: idle_cpu(dep, args.idle))
        result["http"] = guarded(errors, "wrk", lambda: measure_http(dep, args))
        result["connections"] = guarded(errors, "pg_stat_ssl", lambda: encrypted_connections(dep))
        if round_no == 1 and args.lag_seconds > 0:
            result["lag"] = guarded(
                errors, "replication lag", lambda: measure_lag(dep, args.rate, args.lag_seconds)
            )
        if round_no == min(2, args.rounds) and args.failovers > 0:
            dsn = dep.dsn("chennai", write=True)
            failovers: list[dict[str, Any]] = []
            result["failovers"] = failovers
            for i in range(args.failovers):
                done = guarded(errors, f"failover {i + 1}", lambda: one_failover(dep, dsn))
                if done is None:
                    break
                failovers.append(done)
                print(f"  failover {i + 1}: {done}", flush=True)
    finally:
        result["errors"] = errors
        dep.close()
    return result


# -- the report ------------------------------------------------------------------------------


def of_mode(data: dict[str, Any], mode: str, key: str) -> list[Any]:
    return [d[key] for d in data["deployments"] if d["mode"] == mode and d.get(key) is not None]


def http_samples(data: dict[str, Any], mode: str, endpoint: str) -> list[dict[str, Any]]:
    return [s for http in of_mode(data, mode, "http") for s in http if s["endpoint"] == endpoint]


def mean_of(samples: list[dict[str, Any]], key: str) -> float:
    return statistics.mean(s[key] for s in samples) if samples else float("nan")


def round_ratios(data: dict[str, Any], endpoint: str) -> list[float]:
    """TLS on / off requests/s of each round that has both."""
    by_round: dict[int, dict[str, float]] = {}
    for d in data["deployments"]:
        for s in d.get("http") or []:
            if s["endpoint"] == endpoint:
                by_round.setdefault(d["round"], {})[d["mode"]] = s["rps"]
    return [r["on"] / r["off"] for r in by_round.values() if "on" in r and "off" in r]


def within_noise(on: list[float], off: list[float]) -> bool:
    """The medians differ by no more than the wider of the two modes' spreads (max - min)."""
    spread = max(max(on) - min(on), max(off) - min(off))
    return abs(statistics.median(on) - statistics.median(off)) <= spread


def api_rows(data: dict[str, Any]) -> tuple[list[str], list[str]]:
    rows, verdicts = [], []
    for endpoint in HTTP_ENDPOINTS:
        on, off = http_samples(data, "on", endpoint), http_samples(data, "off", endpoint)
        ratio = mean_of(on, "rps") / mean_of(off, "rps") if on and off else float("nan")
        per_round = round_ratios(data, endpoint)
        spread = f"{min(per_round):.2f}-{max(per_round):.2f}" if per_round else "-"
        met = ratio >= API_TARGET
        rows += [
            f"| `{endpoint}` req/s (mean of {len(on)} / {len(off)} rounds) | "
            f"{mean_of(on, 'rps'):,.0f} | {mean_of(off, 'rps'):,.0f} | **{ratio:.2f}** "
            f"(rounds {spread}) | >= {API_TARGET:g} |",
            f"| `{endpoint}` p50 / p99 ms (mean) | {mean_of(on, 'p50_ms'):.1f} / "
            f"{mean_of(on, 'p99_ms'):.1f} | {mean_of(off, 'p50_ms'):.1f} / "
            f"{mean_of(off, 'p99_ms'):.1f} | | |",
            f"| `{endpoint}` non-2xx + socket errors | "
            f"{sum(s['non_2xx'] + s['errors'] for s in on)} | "
            f"{sum(s['non_2xx'] + s['errors'] for s in off)} | | 0 |",
        ]
        verdicts.append(
            f"- API `{endpoint}`: TLS on {ratio:.2f} x off (per round {spread}), target >= "
            f"{API_TARGET:g}: **{'met' if met else 'missed'}**." + cpu_finding(data, endpoint)
        )
    return rows, verdicts


def by_tier(used: dict[str, float]) -> dict[str, float]:
    return {tier: sum(used.get(role, 0.0) for role in roles) for tier, roles in TIERS.items()}


def tier_text(values: dict[str, float], digits: int) -> str:
    parts = ", ".join(f"{tier} {v:,.{digits}f}" for tier, v in values.items())
    return f"{sum(values.values()):,.{digits}f} ({parts})"


def mean_tiers(rows: list[dict[str, float]]) -> dict[str, float]:
    return {t: statistics.mean(r[t] for r in rows) for t in TIERS} if rows else {}


def request_cpu(data: dict[str, Any], mode: str, endpoint: str) -> dict[str, float]:
    """CPU µs per request by tier under wrk, the mean of the rounds ({} without a sample)."""
    duration = data["args"]["duration"]
    return mean_tiers(
        [
            {t: 1e6 * v / (s["rps"] * duration) for t, v in by_tier(s["cpu_s"]).items()}
            for s in http_samples(data, mode, endpoint)
        ]
    )


def cpu_rows(data: dict[str, Any]) -> list[str]:
    """Where the CPU went: idle, and per request under wrk, by tier (mean of the rounds)."""

    def idle(mode: str) -> str:
        rows = [by_tier(d) for d in of_mode(data, mode, "idle_cpu_pct")]
        return tier_text(mean_tiers(rows), 1) if rows else "-"

    lines = [
        f"| idle deployment's CPU, % of one core: all (by tier) | {idle('on')} "
        f"| {idle('off')} | | |"
    ]
    for endpoint in HTTP_ENDPOINTS:
        cells = [tier_text(c, 0) if (c := request_cpu(data, m, endpoint)) else "-" for m in MODES]
        lines.append(
            f"| `{endpoint}` CPU per request, µs: all (by tier) | {cells[0]} | {cells[1]} | | |"
        )
    return lines


def cpu_finding(data: dict[str, Any], endpoint: str) -> str:
    """How the CPU per request of the two modes compares with their throughput ratio."""
    on, off = request_cpu(data, "on", endpoint), request_cpu(data, "off", endpoint)
    if not on or not off:
        return ""
    total_on, total_off = sum(on.values()), sum(off.values())
    more = ", ".join(f"{t} {on[t] - off[t]:+,.0f}" for t in TIERS)
    return (
        f" CPU per request, all of the deployment's processes: {total_on:,.0f} µs on, "
        f"{total_off:,.0f} off ({total_on / total_off - 1:+.0%}; by tier, µs: {more}); the "
        f"2 cores are saturated, so throughput follows 1 / CPU per request: off / on CPU = "
        f"{total_off / total_on:.2f}."
    )


def lag_rows(data: dict[str, Any]) -> tuple[list[str], list[str]]:
    on, off = of_mode(data, "on", "lag"), of_mode(data, "off", "lag")
    if not on or not off:
        return [], ["- Replication lag: not measured in both modes (see the errors below)."]
    a, b = on[0], off[0]

    def row(label: str, pick: Callable[[dict[str, Any]], dict[str, Any]], target: str) -> str:
        return f"| {label} | {triple(pick(a), 2)} | {triple(pick(b), 2)} | | {target} |"

    rows = [
        f"| replication: writes acknowledged per second, mean (slowest second) | "
        f"{a['writes']['mean_per_s']:.1f} ({a['writes']['per_second_min']}) | "
        f"{b['writes']['mean_per_s']:.1f} ({b['writes']['per_second_min']}) | | "
        f"{data['rate']:g} held |",
        row("replication: load commit latency, ms (p50 / p99 / max)", _commit, ""),
        row("replication: `replay_lag`, ms (p50 / p99 / max)", _replay, f"p99 < {TARGET_P99_MS:g}"),
        row(
            "replication: commit acknowledged -> row visible on chennai-db, ms",
            _visible,
            f"p99 < {TARGET_P99_MS:g}",
        ),
    ]
    verdicts = [
        f"- Replication lag p99 < {TARGET_P99_MS:g} ms at {data['rate']:g} writes/s: TLS on "
        f"**{'met' if a['met'] else 'missed'}** ({a['verdict']}); TLS off "
        f"**{'met' if b['met'] else 'missed'}** ({b['verdict']})."
    ]
    return rows, verdicts


def _commit(r: dict[str, Any]) -> dict[str, Any]:
    return dict(r["writes"]["load"]["commit_ms"])


def _replay(r: dict[str, Any]) -> dict[str, Any]:
    return dict(r["server"]["replay_lag_ms"])


def _visible(r: dict[str, Any]) -> dict[str, Any]:
    return dict(r["client"]["visible_ms"])


def failover_rows(data: dict[str, Any]) -> tuple[list[str], list[str]]:
    on = [f for runs in of_mode(data, "on", "failovers") for f in runs]
    off = [f for runs in of_mode(data, "off", "failovers") for f in runs]
    if not on or not off:
        return [], ["- Failover write RTO: not measured in both modes (see the errors below)."]

    def both(key: str) -> str:
        return f"{min_median_max([f[key] for f in on])} | {min_median_max([f[key] for f in off])}"

    rto_on, rto_off = [f["failover_s"] for f in on], [f["failover_s"] for f in off]
    same = within_noise(rto_on, rto_off)
    delta = statistics.median(rto_on) - statistics.median(rto_off)
    rows = [
        f"| failover: kill primary -> first acknowledged write, s (min / median / max) | "
        f"{both('failover_s')} | {delta:+.2f} s (medians) | unchanged within noise |",
        f"| failover: killed primary streams again after `start-node`, s | {both('rejoin_s')} "
        "| | |",
        f"| failover: acknowledged writes lost | {sum(f['lost'] for f in on)} of "
        f"{sum(f['acked'] for f in on)} | {sum(f['lost'] for f in off)} of "
        f"{sum(f['acked'] for f in off)} | | 0 |",
    ]
    verdicts = [
        f"- Failover write RTO unchanged within noise ({len(on)} / {len(off)} kills; noise: the "
        f"medians differ by no more than the wider min-max spread of the two modes): median "
        f"{statistics.median(rto_on):.2f} s on, {statistics.median(rto_off):.2f} s off: "
        f"**{'met' if same else 'missed'}**."
    ]
    return rows, verdicts


def up_rows(data: dict[str, Any]) -> tuple[list[str], list[str]]:
    on, off = of_mode(data, "on", "up"), of_mode(data, "off", "up")

    def walls(ups: list[dict[str, Any]]) -> list[float]:
        return [u["wall_s"] for u in ups]

    def ready(ups: list[dict[str, Any]]) -> list[float]:
        return [u["ready_after_s"] for u in ups if u["ready_after_s"] is not None]

    rows = [
        f"| `geoha up` from nothing to the URLs printed, s (min / median / max) | "
        f"{min_median_max(walls(on))} | {min_median_max(walls(off))} | "
        + (
            f"{statistics.median(walls(on)) / statistics.median(walls(off)):.2f} (medians)"
            if on and off
            else ""
        )
        + f" | <= {UP_TARGET_S:g} |",
        f'| controller\'s own "ready in" (s) | {min_median_max(ready(on))} | '
        f"{min_median_max(ready(off))} | | |",
    ]
    verdicts = []
    for mode, ups in (("on", on), ("off", off)):
        met = bool(ups) and max(walls(ups)) <= UP_TARGET_S
        worst = f"slowest {max(walls(ups)):.2f} s of {len(ups)}" if ups else "not measured"
        verdicts.append(
            f"- `geoha up` <= {UP_TARGET_S:g} s, TLS {mode}: {worst}: "
            f"**{'met' if met else 'missed'}**."
        )
    return rows, verdicts


def connection_note(data: dict[str, Any]) -> str:
    parts = []
    for mode in MODES:
        seen = of_mode(data, mode, "connections")
        if not seen:
            continue
        rows = seen[0]
        text = ", ".join(
            f"{r['count']} {r['backend']}{' (' + r['user'] + ')' if r['user'] else ''} "
            f"{'TLS' if r['ssl'] else 'clear'}"
            for r in rows
        )
        parts.append(f"TLS {mode}: {text}")
    return "Connections on delhi-db after wrk (`pg_stat_ssl`): " + "; ".join(parts) + "."


def report(data: dict[str, Any]) -> str:
    facts, args = data["machine"], data["args"]
    lines = [
        "## Internal TLS on vs off (issue: TLS and secrets)",
        "",
        f"Machine: {facts['cores']} cores ({facts['cpu']}), {facts['memory_gib']} GiB, kernel "
        f"{facts['kernel']}; {facts['postgres']}; {facts['etcd']}; {facts['patroni']}; load "
        f"average after the run {facts['load_average_after']}. Measured {data['date']} at "
        f"commit {facts['commit']}; the whole run took {data['total_s'] / 60:.1f} min.",
        "",
        f"Reproduce: `.venv/bin/python -m bench.tls_overhead` (this run: `--rounds "
        f"{args['rounds']} --duration {args['duration']} --warmup {args['warmup']} "
        f"--connections {args['connections']} --idle {args['idle']:g} --lag-seconds "
        f"{args['lag_seconds']:g} --rate {args['rate']:g} --failovers {args['failovers']}`, "
        + ("the defaults)." if data["defaults"] else "not the defaults)."),
        "",
        "Targets: with TLS on, API requests/s >= 0.9 x TLS off (a read and a write through the "
        "whole path); replication lag p99 < 50 ms under 500 writes/s (the target of the issue "
        "that brought the lag benchmark); failover write RTO unchanged within noise; `geoha up` "
        "<= 30 s.",
        "",
        "Method: " + (__doc__ or "").split("Method: ", 1)[1].replace("\n", " ").strip(),
        "",
        f"| measurement | {LABELS['on']} | {LABELS['off']} | on / off | target |",
        "|---|---|---|---|---|",
    ]
    verdicts: list[str] = []
    for rows, said in (api_rows(data), lag_rows(data), failover_rows(data), up_rows(data)):
        lines += rows
        verdicts += said
    lines += cpu_rows(data)
    lines += ["", connection_note(data), "", "Verdicts:", "", *verdicts]
    errors = [
        f"round {d['round']} TLS {d['mode']}: {e}" for d in data["deployments"] for e in d["errors"]
    ]
    if errors:
        lines += ["", "Parts that failed (not in the numbers above):", ""]
        lines += [f"- {e}" for e in errors]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="deployments per mode")
    parser.add_argument("--duration", type=int, default=10, help="wrk seconds per endpoint")
    parser.add_argument("--warmup", type=int, default=3, help="uncounted wrk seconds before")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--idle", type=float, default=10.0, help="seconds of the idle CPU window, per deployment"
    )
    parser.add_argument("--lag-seconds", type=float, default=60.0, help="0: no lag window")
    parser.add_argument("--rate", type=float, default=500.0, help="writes/s of the lag window")
    parser.add_argument("--failovers", type=int, default=5, help="kills per mode (0: none)")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="measure nothing: rewrite the section from bench/results/tls_overhead.json",
    )
    args = parser.parse_args()
    if args.rounds < 1 or args.duration < 1 or args.warmup < 1 or args.failovers < 0:
        parser.error("--rounds, --duration, --warmup: 1 or more; --failovers: 0 or more")
    if not 0 <= args.lag_seconds <= 300:
        parser.error("--lag-seconds lies in [0, 300]")
    if args.report_only:
        data = json.loads((REPO / "bench" / "results" / "tls_overhead.json").read_text())
    else:
        data = measure(parser, args)
        write_json("tls_overhead", data)
    markdown = report(data)
    write_section("tls-overhead", markdown)
    print(markdown)


def measure(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """Every round's deployments, in the alternating order, with the machine's facts."""
    started = time.monotonic()
    facts = machine_facts()
    deployments = []
    for round_no in range(1, args.rounds + 1):
        order = ["on", "off"] if round_no % 2 else ["off", "on"]
        deployments += [one_deployment(mode, round_no, args) for mode in order]
    facts["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    data: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": facts,
        "args": vars(args),
        "defaults": all(v == parser.get_default(k) for k, v in vars(args).items()),
        "rate": args.rate,
        "total_s": round(time.monotonic() - started, 1),
        "deployments": deployments,
    }
    return data


if __name__ == "__main__":
    main()
