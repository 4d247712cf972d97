"""A dnsperf-style UDP load client for the DNS benchmark, run as a process of its own.

`python -m bench.dns_load --server HOST:PORT --name NAME --inflight K --seconds S [--watch PID]`
keeps K queries for `NAME A` outstanding: each answer sends the next query, and a query
unanswered after QUERY_TIMEOUT_S counts as lost and is replaced. After WARMUP_S it counts for
S seconds and prints one JSON object: queries/s, latency percentiles, losses, its own CPU and
the CPU of the process `--watch` names (the server). `run_client` starts it on CLIENT_CORE.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import socket
import subprocess
import sys
import time
from typing import Any

import psutil
from dnslib import DNSRecord  # type: ignore[import-untyped]

from bench.common import REPO

QUERY_TIMEOUT_S = 1.0
"""A query unanswered after this long counts as lost and is replaced."""
WARMUP_S = 1.0
"""Answers in the first second are not counted."""
CLIENT_CORE = "1"
"""The core the client is pinned to (taskset)."""


def query_bytes(name: str) -> bytes:
    """A plain A query (no EDNS, recursion desired) for `name`; the id goes in bytes 0-1."""
    return bytes(DNSRecord.question(name, "A").pack())


class LoadClient:
    """A dnsperf-style UDP client: `inflight` queries outstanding, each answer sends the next."""

    def __init__(self, server: str, name: str, inflight: int) -> None:
        host, _, port = server.rpartition(":")
        self.template = query_bytes(name)[2:]
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect((host, int(port)))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.settimeout(0.05)
        self.inflight = inflight
        self.pending: dict[int, float] = {}
        self.next_id = random.randrange(65536)
        self.reset()

    def reset(self) -> None:
        """Forget what was counted so far (the end of the warm-up)."""
        self.latencies: list[float] = []
        self.lost = self.late = self.not_answer = 0

    def send(self) -> None:
        while self.next_id in self.pending:
            self.next_id = (self.next_id + 1) & 0xFFFF
        self.pending[self.next_id] = time.perf_counter()
        self.sock.send(self.next_id.to_bytes(2, "big") + self.template)
        self.next_id = (self.next_id + 1) & 0xFFFF

    def sweep(self, now: float) -> None:
        """Count the queries unanswered for QUERY_TIMEOUT_S as lost, and replace them."""
        for qid in [q for q, sent in self.pending.items() if now - sent > QUERY_TIMEOUT_S]:
            del self.pending[qid]
            self.lost += 1
            self.send()

    def receive(self) -> None:
        try:
            data = self.sock.recv(2048)
        except (TimeoutError, ConnectionRefusedError):
            return  # nothing yet, or no server: the sweep counts the queries lost
        received = time.perf_counter()
        sent_at = self.pending.pop(int.from_bytes(data[:2], "big"), None)
        if sent_at is None:
            self.late += 1  # an answer after its query was given up
            return
        self.latencies.append(received - sent_at)
        # NOERROR with exactly one answer record, or it does not count as an answer
        if data[3] & 0x0F != 0 or int.from_bytes(data[6:8], "big") != 1:
            self.not_answer += 1
        self.send()

    def run_until(self, deadline: float) -> None:
        while len(self.pending) < self.inflight:
            self.send()
        last_sweep = time.perf_counter()
        while (now := time.perf_counter()) < deadline:
            if now - last_sweep >= 0.1:
                last_sweep = now
                self.sweep(now)
            self.receive()


def cpu_seconds(proc: psutil.Process | None = None) -> float:
    """User + system CPU time of `proc`, or of this process."""
    if proc is not None:
        return float(sum(proc.cpu_times()[:2]))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_load(server: str, name: str, inflight: int, seconds: float, watch: int) -> dict[str, Any]:
    """WARMUP_S of load, then `seconds` counted; the counted window's figures. `watch`: a pid
    whose CPU over the window is reported as the server's (0: none)."""
    client = LoadClient(server, name, inflight)
    watched = psutil.Process(watch) if watch else None
    client.run_until(time.perf_counter() + WARMUP_S)
    client.reset()
    cpu0, watched0 = cpu_seconds(), cpu_seconds(watched) if watched else 0.0
    started = time.perf_counter()
    client.run_until(started + seconds)
    window = time.perf_counter() - started
    client_cpu = cpu_seconds() - cpu0
    watched_cpu = cpu_seconds(watched) - watched0 if watched else None
    ms = sorted(x * 1000 for x in client.latencies)
    return {
        "inflight": inflight,
        "window_s": round(window, 3),
        "answered": len(ms),
        "qps": round(len(ms) / window, 1),
        "p50_ms": round(ms[len(ms) // 2], 3) if ms else None,
        "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 3) if ms else None,
        "max_ms": round(ms[-1], 3) if ms else None,
        "lost": client.lost,
        "late": client.late,
        "not_answer": client.not_answer,
        "client_cpu_pct": round(100 * client_cpu / window, 1),
        "server_cpu_pct": None if watched_cpu is None else round(100 * watched_cpu / window, 1),
    }


def run_client(server: str, name: str, inflight: int, seconds: float, watch: int) -> dict[str, Any]:
    """`python -m bench.dns_load` pinned to CLIENT_CORE; its JSON report."""
    argv = [sys.executable, "-m", "bench.dns_load", "--server", server, "--name", name]
    argv += ["--inflight", str(inflight), "--seconds", str(seconds), "--watch", str(watch)]
    out = subprocess.run(
        ["taskset", "-c", CLIENT_CORE, *argv],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
        cwd=REPO,
        env=bench_env(),
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def bench_env() -> dict[str, str]:
    pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": pythonpath}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, help="HOST:PORT")
    parser.add_argument("--name", required=True, help="the name asked for (type A)")
    parser.add_argument("--inflight", type=int, required=True, help="queries outstanding")
    parser.add_argument("--seconds", type=float, required=True, help="counted time")
    parser.add_argument("--watch", type=int, default=0, help="pid whose CPU to report")
    args = parser.parse_args()
    result = run_load(args.server, args.name, args.inflight, args.seconds, args.watch)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
