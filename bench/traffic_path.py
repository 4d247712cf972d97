"""The request path's hops: API direct vs through backend LB, Caddy and frontend LB.

Brings up the topology twice (api_route = "direct", then "via-web"), each with one
API and one web instance per region so every path ends at the same single API
process, seeds 1000 themes, and runs wrk against each entry point of the delhi
region, alternating the order per round.

Reproduce: .venv/bin/python -m bench.traffic_path [--rounds 3] [--duration 10]
Results: docs/BENCHMARKS.md (section traffic-path), bench/results/traffic_path.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import psycopg

from bench.common import bench_deployment, machine_facts, write_json, write_section
from bench.wrk import parse_wrk, run_wrk
from geoha.plan import NodeRole
from tests.deployment import Deployment

ONE_INSTANCE = """
[regions.delhi.api.autoscale]
min = 1
desired = 1
[regions.delhi.web.autoscale]
min = 1
desired = 1
[traffic]
api_route = "{route}"
"""
ENDPOINTS = {
    "GET /api/v1/themes/:id": "/api/v1/themes/500",
    "GET list of 20": "/api/v1/themes?limit=20",
}


def entry_points(dep: Deployment, route: str) -> dict[str, str]:
    def url(role: NodeRole) -> str:
        node = dep.plan.in_region("delhi", role)[0]
        return f"http://{node.address}:{node.ports['http']}"

    if route == "via-web":
        return {"frontend LB -> Caddy -> backend LB -> API (via-web)": url(NodeRole.FRONTEND_LB)}
    return {
        "API direct": url(NodeRole.API),
        "backend LB -> API": url(NodeRole.BACKEND_LB),
        "Caddy -> backend LB -> API": url(NodeRole.WEB),
        "frontend LB -> backend LB -> API (direct)": url(NodeRole.FRONTEND_LB),
    }


def seed(dep: Deployment) -> None:
    dsn = dep.dsn("delhi", write=True)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO themes (name, config) SELECT 'seed ' || i, jsonb_build_object('i', i) "
            "FROM generate_series(1, 1000) AS i"
        )


def measure_route(route: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    dep = bench_deployment(extra=ONE_INSTANCE.format(route=route))
    samples: list[dict[str, Any]] = []
    try:
        dep.up()
        seed(dep)
        points = entry_points(dep, route)
        for round_no in range(1, args.rounds + 1):
            order = list(points.items())
            if round_no % 2 == 0:
                order.reverse()
            for endpoint, path in ENDPOINTS.items():
                for name, base in order:
                    run_wrk(base + path, None, args.warmup, args.connections, latency=False)
                    out = run_wrk(base + path, None, args.duration, args.connections, latency=True)
                    rps, p50, p99, non_2xx, errors = parse_wrk(out)
                    samples.append(
                        {
                            "path": name,
                            "endpoint": endpoint,
                            "round": round_no,
                            "rps": rps,
                            "p50_ms": p50,
                            "p99_ms": p99,
                            "non_2xx": non_2xx,
                            "errors": errors,
                        }
                    )
                    print(
                        f"{route} r{round_no} {endpoint} {name}: {rps:.0f} req/s p99 {p99:.1f} ms",
                        flush=True,
                    )
    finally:
        dep.close()
    return samples


def report(samples: list[dict[str, Any]], facts: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        "## Request path hops (issue: application tiers)",
        "",
        f"Machine: {facts['cores']} cores ({facts['cpu']}), {facts['memory_gib']} GiB; "
        f"load average after the run {facts['load_average_after']}. "
        f"Measured {time.strftime('%Y-%m-%d')}.",
        "",
        f"Reproduce: `.venv/bin/python -m bench.traffic_path` (wrk -t2 -c{args.connections} "
        f"-d{args.duration}s after a {args.warmup} s warm-up, {args.rounds} rounds, order "
        "alternating). One API instance (granian, 1 worker, pool 10) and one Caddy per region, so "
        "every path ends at the same API process; the database is the deployment's PostgreSQL "
        "primary with 1000 themes. Everything shares the 2 cores with wrk.",
        "",
        "| path (delhi) | endpoint | req/s (mean) | x direct | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for endpoint in ENDPOINTS:
        direct = statistics.mean(
            s["rps"] for s in samples if s["endpoint"] == endpoint and s["path"] == "API direct"
        )
        for path in dict.fromkeys(s["path"] for s in samples):
            mine = [s for s in samples if s["endpoint"] == endpoint and s["path"] == path]
            rps = statistics.mean(s["rps"] for s in mine)
            lines.append(
                f"| {path} | `{endpoint}` | {rps:,.0f} | {rps / direct:.2f} | "
                f"{statistics.mean(s['p50_ms'] for s in mine):.1f} | "
                f"{statistics.mean(s['p99_ms'] for s in mine):.1f} | "
                f"{sum(s['non_2xx'] + s['errors'] for s in mine)} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    facts = machine_facts()
    samples = measure_route("direct", args) + measure_route("via-web", args)
    facts["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    write_json("traffic_path", {"machine": facts, "samples": samples})
    markdown = report(samples, facts, args)
    write_section("traffic-path", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
