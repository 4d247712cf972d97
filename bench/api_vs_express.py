"""geoha's API (granian, 1 worker, pool 10) against the Node/Express reference, in one run.

Starts one PostgreSQL 15 (tests/component/pg.py), seeds ~1000 themes, starts both
servers on their own loopback addresses, then for each round and endpoint runs
`wrk -t2 -c64 -d15s --latency` after a 3 s warm-up, alternating which server goes
first. Writes docs/BENCHMARKS.md (its section) and bench/results/api_vs_express.json. Every process
it starts is stopped at the end, also on failure or Ctrl-C.

Reproduce: .venv/bin/python bench/api_vs_express.py
(`--rounds 1 --duration 3 --warmup 1` for a quick smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import write_json, write_section  # noqa: E402
from bench.wrk import parse_wrk, run_wrk  # noqa: E402
from tests.component.pg import APP_USER, DATABASE, PgCluster, start_cluster  # noqa: E402

EXPRESS_DIR = REPO / "bench" / "reference-express"
GEOHA = ("geoha", "127.240.6.1", 8080)
EXPRESS = ("express", "127.240.7.1", 3000)
BENCH_DB_HOST = "127.240.8.1"  # not the component tests' 127.240.5.1: both may run at once
SEED_ROWS = 1000
ENDPOINTS = {
    "GET /health": ("/health", None),
    "GET /api/v1/themes/:id": ("/api/v1/themes/500", None),
    "GET /api/v1/themes?limit=20": ("/api/v1/themes?limit=20", None),
    "POST /api/v1/themes": ("/api/v1/themes", "post.lua"),
}
POST_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"name": "bench theme", "config": {"palette": ["#112233", "#445566"], "dark": true}}'
"""


@dataclass
class Sample:
    server: str
    endpoint: str
    round: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int


class Stop(Exception):
    """SIGTERM: unwind through the finally blocks like Ctrl-C does."""


def _on_sigterm(_signum: int, _frame: object) -> None:
    raise Stop


def seed(pg: PgCluster) -> None:
    with pg.connect(pg.primary) as conn, conn.transaction():
        conn.execute(f"SET LOCAL ROLE {APP_USER}")
        conn.execute(
            "INSERT INTO app.themes (name, config) SELECT 'seed ' || g, "
            "jsonb_build_object('palette', jsonb_build_array('#112233', '#445566'), 'n', g) "
            "FROM generate_series(1, %s) g",
            (SEED_ROWS,),
        )
    with pg.connect(pg.primary) as conn:
        conn.execute("VACUUM ANALYZE app.themes")


def start_process(
    argv: list[str], env: dict[str, str], log: Path, cwd: Path
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def wait_healthy(name: str, host: str, port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}")
        try:
            if httpx.get(f"http://{host}:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{name} did not become healthy")


def start_servers(pg: PgCluster, workdir: Path, processes: list[subprocess.Popen[bytes]]) -> None:
    """Start both servers, appending each to `processes` at once (so it is always stopped)."""
    base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir)}
    node = pg.primary
    dsn = pg.app_dsn([(node.host, node.port)], "read-write")
    geoha_env = {
        **base_env,
        "GEOHA_REGION": "bench",
        "GEOHA_INSTANCE": "bench-api-1",
        "GEOHA_WRITE_DSN": dsn,
        "GEOHA_READ_DSN": pg.app_dsn([(node.host, node.port)], "any"),
        "GEOHA_POOL_SIZE": "10",
        "GEOHA_API_LISTEN": f"{GEOHA[1]}:{GEOHA[2]}",
    }
    express_env = {
        **base_env,
        "LISTEN_HOST": EXPRESS[1],
        "LISTEN_PORT": str(EXPRESS[2]),
        "PGHOST": node.host,
        "PGPORT": str(node.port),
        "PGUSER": APP_USER,
        "PGPASSWORD": pg.app_password,
        "PGDATABASE": DATABASE,
        "NODE_ENV": "production",
    }
    processes.append(
        start_process([sys.executable, "-m", "app.api"], geoha_env, workdir / "geoha.log", REPO)
    )
    processes.append(
        start_process(["node", "server.js"], express_env, workdir / "express.log", EXPRESS_DIR)
    )
    wait_healthy(GEOHA[0], GEOHA[1], GEOHA[2], processes[0])
    wait_healthy(EXPRESS[0], EXPRESS[1], EXPRESS[2], processes[1])


def measure(args: argparse.Namespace, workdir: Path) -> list[Sample]:
    (workdir / "post.lua").write_text(POST_LUA)
    samples: list[Sample] = []
    for round_no in range(1, args.rounds + 1):
        order = [GEOHA, EXPRESS] if round_no % 2 else [EXPRESS, GEOHA]
        for endpoint, (path, script_name) in ENDPOINTS.items():
            script = workdir / script_name if script_name else None
            for name, host, port in order:
                url = f"http://{host}:{port}{path}"
                run_wrk(url, script, args.warmup, args.connections, latency=False)
                output = run_wrk(url, script, args.duration, args.connections, latency=True)
                sample = Sample(name, endpoint, round_no, *parse_wrk(output))
                samples.append(sample)
                print(
                    f"round {round_no} {endpoint:30} {name:8} {sample.requests_per_s:10.0f} req/s "
                    f"p50 {sample.p50_ms:.2f} ms p99 {sample.p99_ms:.2f} ms",
                    flush=True,
                )
    return samples


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "unknown"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"


def machine_facts() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    mem = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
    express_pkg = EXPRESS_DIR / "node_modules" / "express" / "package.json"
    pg_pkg = EXPRESS_DIR / "node_modules" / "pg" / "package.json"
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model.group(1) if model else "unknown",
        "memory_gib": round(int(mem.group(1)) / 1024 / 1024, 1) if mem else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": _version(["/usr/lib/postgresql/15/bin/postgres", "--version"]),
        "granian": metadata.version("granian"),
        "asyncpg": metadata.version("asyncpg"),
        "orjson": metadata.version("orjson"),
        "uvloop": metadata.version("uvloop"),
        "loadavg_at_end": Path("/proc/loadavg").read_text().split()[:3],
        "node": _version(["node", "--version"]),
        "express": json.loads(express_pkg.read_text())["version"],
        "node_pg": json.loads(pg_pkg.read_text())["version"],
        "wrk": _version(["wrk", "--version"]),
    }


def summarise(samples: list[Sample]) -> list[dict[str, Any]]:
    rows = []
    for endpoint in ENDPOINTS:

        def of(server: str, attr: str, ep: str = endpoint) -> float:
            values = [
                float(getattr(s, attr)) for s in samples if s.server == server and s.endpoint == ep
            ]
            return statistics.mean(values)

        ratios = [
            g.requests_per_s / e.requests_per_s
            for g in samples
            for e in samples
            if g.endpoint == e.endpoint == endpoint
            and g.round == e.round
            and g.server == "geoha"
            and e.server == "express"
        ]
        rows.append(
            {
                "endpoint": endpoint,
                "geoha_rps": of("geoha", "requests_per_s"),
                "express_rps": of("express", "requests_per_s"),
                "geoha_p50_ms": of("geoha", "p50_ms"),
                "express_p50_ms": of("express", "p50_ms"),
                "geoha_p99_ms": of("geoha", "p99_ms"),
                "express_p99_ms": of("express", "p99_ms"),
                "ratio": of("geoha", "requests_per_s") / of("express", "requests_per_s"),
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
                "errors": sum(
                    s.non_2xx + s.socket_errors for s in samples if s.endpoint == endpoint
                ),
            }
        )
    return rows


def write_report(args: argparse.Namespace, samples: list[Sample], facts: dict[str, Any]) -> None:
    rows = summarise(samples)
    command = "npm ci --prefix bench/reference-express && .venv/bin/python bench/api_vs_express.py"
    if (args.rounds, args.duration, args.warmup) != (3, 15, 3):
        command += f" --rounds {args.rounds} --duration {args.duration} --warmup {args.warmup}"
    data = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": facts,
        "wrk": f"wrk -t2 -c{args.connections} -d{args.duration}s --latency "
        f"(after a {args.warmup} s warm-up), {args.rounds} rounds, alternating",
        "reproduce": command,
        "summary": rows,
        "samples": [asdict(s) for s in samples],
    }
    write_json("api_vs_express", data)
    lines = [
        "## API vs the Node/Express reference (issue: application tiers)",
        "",
        f"Measured {data['date']} by `bench/api_vs_express.py`: {data['wrk']}; one PostgreSQL 15 "
        f"(fsync on) seeded with {SEED_ROWS} themes; both servers are one process with a pool of "
        "10, each on its own loopback address, and share the cores with wrk and PostgreSQL.",
        "",
        "| endpoint | geoha req/s | Express req/s | ratio (min-max per round) | geoha p50 / p99 ms "
        "| Express p50 / p99 ms | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| `{r['endpoint']}` | {r['geoha_rps']:,.0f} | {r['express_rps']:,.0f} | "
            f"**{r['ratio']:.2f}x** ({r['ratio_min']:.2f}-{r['ratio_max']:.2f}) | "
            f"{r['geoha_p50_ms']:.2f} / {r['geoha_p99_ms']:.2f} | "
            f"{r['express_p50_ms']:.2f} / {r['express_p99_ms']:.2f} | {r['errors']} |"
        )
    lines += [
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()),
        "",
        f"Reproduce: `{command}`",
        "",
    ]
    write_section("api-vs-express", "\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if not (EXPRESS_DIR / "node_modules").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=EXPRESS_DIR, check=True)
    signal.signal(signal.SIGTERM, _on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix="geoha-bench-"))
    pg: PgCluster | None = None
    processes: list[subprocess.Popen[bytes]] = []
    try:
        pg = start_cluster(replica=False, fsync=True, primary_host=BENCH_DB_HOST)
        seed(pg)
        start_servers(pg, workdir, processes)
        samples = measure(args, workdir)
        write_report(args, samples, machine_facts())
    except (KeyboardInterrupt, Stop):
        print("interrupted: stopping everything", file=sys.stderr)
        return 130
    finally:
        for process in processes:
            stop_process(process)
        if pg is not None:
            pg.destroy()
        shutil.rmtree(workdir, ignore_errors=True)
    print("wrote docs/BENCHMARKS.md (section api-vs-express) and bench/results/api_vs_express.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
