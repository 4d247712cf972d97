"""Fast failover against Patroni's lease: kill the primary, side by side in one run.

Reproduce: .venv/bin/python -m bench.fast_failover [--runs 10]
Results: docs/BENCHMARKS.md (section fast-failover) and bench/results/fast_failover.json.
Targets (issue "Failover in seconds"): kill primary -> first acknowledged write median
<= 10 s (stretch <= 5 s), max <= 12 s; rejoin <= 3 s; 0 acknowledged writes lost.

Method: two deployments of the whole stack (sync replication), one after the other: the
default (`failover.fast` on) and `failover.fast = false` (Patroni's ttl alone). In each,
`--runs` times: a writer through `geoha dsn --region chennai --write`, `geoha chaos
kill-node` on the current primary, time from the controller's kill event to the first
acknowledged insert, then `geoha chaos start-node` until the killed node streams again
(bench/data_tier.py's `one_failover`). Runs alternate the primary.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench.common import (
    bench_deployment,
    machine_facts,
    min_median_max,
    write_json,
    write_section,
)
from bench.data_tier import one_failover

MODES = {"fast": "", "ttl": "[failover]\nfast = false\n"}
"""Each mode's extra topology (after `[dns]`)."""


def measure(mode: str, runs: int) -> list[dict[str, Any]]:
    dep = bench_deployment("sync", MODES[mode])
    results = []
    try:
        dep.up()
        dsn = dep.dsn("chennai", write=True)
        for i in range(runs):
            result = one_failover(dep, dsn)
            results.append(result)
            print(f"{mode} failover {i + 1}: {result}", flush=True)
    finally:
        dep.close()
    return results


def report(data: dict[str, Any]) -> str:
    facts = data["machine"]
    lines = [
        "## Fast failover (issue: failover in seconds)",
        "",
        f"Machine: {facts['cores']} cores ({facts['cpu']}), {facts['memory_gib']} GiB, kernel "
        f"{facts['kernel']}; {facts['postgres']}; {facts['patroni']}. Measured {data['date']} "
        f"at commit {facts['commit']}.",
        "",
        "Reproduce: `.venv/bin/python -m bench.fast_failover` (add `--runs N`).",
        "",
        "Method: " + (__doc__ or "").split("Method: ", 1)[1].replace("\n", " ").strip(),
        "",
        "| measurement | fast (default) | ttl (`failover.fast = false`) | target |",
        "|---|---|---|---|",
    ]
    fast, ttl = data["results"]["fast"], data["results"]["ttl"]

    def both(key: str) -> str:
        return f"{min_median_max([r[key] for r in fast])} | {min_median_max([r[key] for r in ttl])}"

    lines += [
        f"| kill primary -> first acknowledged write, s (min / median / max) "
        f"| {both('failover_s')} | median <= 10 (stretch 5), max <= 12 |",
        f"| killed primary streams again after `start-node`, s | {both('rejoin_s')} | <= 3 |",
        f"| acknowledged writes lost | {sum(r['lost'] for r in fast)} of "
        f"{sum(r['acked'] for r in fast)} | {sum(r['lost'] for r in ttl)} of "
        f"{sum(r['acked'] for r in ttl)} | 0 |",
        f"| runs | {len(fast)} | {len(ttl)} | >= 10 each |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="failovers per mode")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs: at least 1")
    data: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine_facts(),
        "runs": args.runs,
        "results": {mode: measure(mode, args.runs) for mode in MODES},
    }
    write_json("fast_failover", data)
    write_section("fast-failover", report(data))


if __name__ == "__main__":
    main()
