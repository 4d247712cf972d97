"""Fast failover against Patroni's lease: kill the primary, side by side in one run.

Reproduce: .venv/bin/python -m bench.fast_failover [--runs 10] [--switchovers 10]
Results: docs/BENCHMARKS.md (section fast-failover) and bench/results/fast_failover.json.
Targets (issue "Failover in seconds"): kill primary -> first acknowledged write median
<= 10 s (stretch <= 5 s), max <= 12 s; rejoin <= 3 s; 0 acknowledged writes lost.

Method: two deployments of the whole stack (sync replication), one after the other: the
default (`failover.fast` on) and `failover.fast = false` (Patroni's ttl alone). In each,
`--runs` times: a writer through `geoha dsn --region chennai --write`, `geoha chaos
kill-node` on the current primary, time from the controller's kill event to the first
acknowledged insert, then `geoha chaos start-node` until the killed node streams again
(bench/data_tier.py's `one_failover`). Runs alternate the primary. Then, in the default
deployment, `--switchovers` planned switchovers as `geoha switchover` does them (a CHECKPOINT,
then the API's writes held while Patroni switches over) alternating with as many without the
hold (the same sequence, `cluster.switchover` without a hold), each under `POST
/api/v1/themes` every 20 ms through both regions' frontend LBs (plain HTTP, about 100
writes/s in all) from 2 s before the switchover to 3 s after it: requests
that did not get a 201, the longest write, the longest time without an acknowledged write.
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
from geoha.data import cluster
from geoha.data.secrets import load_or_create_secrets
from geoha.data.write_hold import WriteHold
from geoha.ops.writer import ApiWriterLoop, count_present
from tests.deployment import Deployment

MODES = {"fast": "", "ttl": "[failover]\nfast = false\n"}
"""Each mode's extra topology (after `[dns]`)."""


def measure(mode: str, runs: int, switchovers: int) -> dict[str, Any]:
    dep = bench_deployment("sync", MODES[mode])
    results: dict[str, Any] = {"failovers": [], "switchovers": []}
    try:
        dep.up()
        dsn = dep.dsn("chennai", write=True)
        for i in range(runs):
            result = one_failover(dep, dsn)
            results["failovers"].append(result)
            print(f"{mode} failover {i + 1}: {result}", flush=True)
        for i in range(2 * switchovers):
            result = api_switchover(dep, held=i % 2 == 0)
            results["switchovers"].append(result)
            print(f"{mode} switchover {i + 1}: {result}", flush=True)
    finally:
        dep.close()
    return results


def api_switchover(dep: Deployment, held: bool) -> dict[str, Any]:
    current = dep.primary()
    assert current is not None
    target = "chennai" if current == "delhi-db" else "delhi"
    standby = dep.plan.database_node(target).name
    dep.wait_for(f"{standby} a sync replica", lambda: dep.can_take_over(standby))
    writers = [
        ApiWriterLoop(dep.entry_url(r), interval_s=0.02, max_s=120).start()
        for r in ("delhi", "chennai")
    ]
    try:
        time.sleep(2)
        started = time.monotonic()
        hold = WriteHold(dep.plan) if held else None
        secrets = load_or_create_secrets(dep.plan.spec, dep.plan.secrets_path)
        message = cluster.switchover(dep.plan, target, secrets, hold=hold)
        ended = time.monotonic()
        time.sleep(3)
    finally:
        for w in writers:
            w.stop()
    acked = [i for w in writers for i in w.acked]
    after = ended + 3
    return {
        "held": held,
        "to": standby,
        "switchover_s": round(ended - started, 2),
        "failed": sum(len(w.failures) for w in writers),
        "failures": [f.message for w in writers for f in w.failures][:5],
        "longest_write_s": round(max(w.longest_write_between(started, after) for w in writers), 2),
        "longest_gap_s": round(max(w.longest_gap_between(started, after) for w in writers), 2),
        "acked": len(acked),
        "lost": len(acked) - count_present(dep.node_dsn(standby), acked),
        "message": message,
    }


def report(data: dict[str, Any]) -> str:
    facts = data["machine"]
    lines = [
        "## Fast failover (issue: failover in seconds)",
        "",
        f"Machine: {facts['cores']} cores ({facts['cpu']}), {facts['memory_gib']} GiB, kernel "
        f"{facts['kernel']}; {facts['postgres']}; {facts['patroni']}. Measured {data['date']} "
        f"at commit {facts['commit']}.",
        "",
        "Reproduce: `.venv/bin/python -m bench.fast_failover` (add `--runs N`, `--switchovers N`).",
        "",
        "Method: " + (__doc__ or "").split("Method: ", 1)[1].replace("\n", " ").strip(),
        "",
        "| measurement | fast (default) | ttl (`failover.fast = false`) | target |",
        "|---|---|---|---|",
    ]
    fast, ttl = data["results"]["fast"]["failovers"], data["results"]["ttl"]["failovers"]

    def both(key: str) -> str:
        return f"{min_median_max([r[key] for r in fast])} | {min_median_max([r[key] for r in ttl])}"

    if fast and ttl:
        lines += [
            f"| kill primary -> first acknowledged write, s (min / median / max) "
            f"| {both('failover_s')} | median <= 10 (stretch 5), max <= 12 |",
            f"| killed primary streams again after `start-node`, s | {both('rejoin_s')} | <= 3 |",
            f"| acknowledged writes lost | {sum(r['lost'] for r in fast)} of "
            f"{sum(r['acked'] for r in fast)} | {sum(r['lost'] for r in ttl)} of "
            f"{sum(r['acked'] for r in ttl)} | 0 |",
            f"| runs | {len(fast)} | {len(ttl)} | >= 10 each |",
        ]
    switched = data["results"]["fast"]["switchovers"]
    if switched:
        lines += [
            "",
            "| switchover under API writes | writes held (`geoha switchover`) "
            "| not held (the same, no hold) | target |",
            "|---|---|---|---|",
        ]
        held = [r for r in switched if r["held"]]
        bare = [r for r in switched if not r["held"]]

        def pair(key: str) -> str:
            return (
                f"{min_median_max([r[key] for r in held])} "
                f"| {min_median_max([r[key] for r in bare])}"
            )

        def total(key: str) -> str:
            return f"{sum(r[key] for r in held)} | {sum(r[key] for r in bare)}"

        lines += [
            f"| failed requests (not 201), in all | {total('failed')} | 0 |",
            f"| longest write, s (min / median / max) | {pair('longest_write_s')} | |",
            f"| longest time without an acknowledged write, s | {pair('longest_gap_s')} | |",
            f"| switchover command, s | {pair('switchover_s')} | |",
            f"| acknowledged writes lost | {sum(r['lost'] for r in held)} of "
            f"{sum(r['acked'] for r in held)} | {sum(r['lost'] for r in bare)} of "
            f"{sum(r['acked'] for r in bare)} | 0 |",
            f"| switchovers | {len(held)} | {len(bare)} | |",
        ]
        failures = sorted({m for r in switched for m in r["failures"]})
        if failures:
            lines += ["", "What the failed requests said: " + "; ".join(failures[:6])]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="failovers per mode")
    parser.add_argument(
        "--switchovers", type=int, default=10, help="switchovers with writes held, and without"
    )
    args = parser.parse_args()
    if args.runs < 0 or args.switchovers < 0 or args.runs + args.switchovers == 0:
        parser.error("--runs, --switchovers: 0 or more, not both 0")
    results = {"fast": measure("fast", args.runs, args.switchovers)}
    results["ttl"] = (
        measure("ttl", args.runs, 0) if args.runs else {"failovers": [], "switchovers": []}
    )
    data: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine_facts(),
        "runs": args.runs,
        "switchovers": args.switchovers,
        "results": results,
    }
    write_json("fast_failover", data)
    write_section("fast-failover", report(data))


if __name__ == "__main__":
    main()
