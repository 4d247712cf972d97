"""`geoha validate` and `geoha plan`: what a topology file expands to, touching nothing."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from geoha.commands.common import load, print_table
from geoha.errors import EXIT_OK
from geoha.plan import Plan
from geoha.spec import Spec


def summary(spec: Spec, plan: Plan) -> str:
    data = ", ".join(
        f"{name} ({region.role.value}, {region.cidr}, dns weight {region.dns.weight})"
        for name, region in spec.data_regions.items()
    )
    witnesses = [n for n, r in spec.regions.items() if not r.is_data]
    witness = f"witness {', '.join(witnesses)}" if witnesses else "no witness"
    tiers = "; ".join(
        f"{name} web {r.web.autoscale.min}/{r.web.autoscale.desired}/{r.web.autoscale.max}, "
        f"api {r.api.autoscale.min}/{r.api.autoscale.desired}/{r.api.autoscale.max}"
        for name, r in spec.data_regions.items()
    )
    return (
        f"Deployment '{spec.name}': data regions {data}; {witness}. "
        f"Replication {spec.replication.value}, automatic failover "
        f"{'on' if spec.automatic_failover else 'off'} (Patroni ttl {spec.patroni.ttl_s} s, "
        f"loop_wait {spec.patroni.loop_wait_s} s, retry_timeout {spec.patroni.retry_timeout_s} s). "
        f"Instances min/desired/max: {tiers}. DNS zone {spec.dns.zone}, ttl {spec.dns.ttl_s} s, "
        f"health check every {spec.dns.health_check_interval_s} s, unhealthy after "
        f"{spec.dns.failure_threshold} failures. {len(plan.nodes)} nodes; "
        f"run directory {plan.run_dir}."
    )


def cmd_validate(args: argparse.Namespace) -> int:
    spec, plan = load(args)
    print(summary(spec, plan))
    return EXIT_OK


def plan_rows(plan: Plan) -> list[dict[str, Any]]:
    return [
        {
            "name": n.name,
            "region": n.region,
            "role": n.role.value,
            "address": n.address,
            "ports": n.ports,
            "data_dir": str(n.data_dir),
            "command": list(n.command),
            "health": n.health_url,
            "standby": n.standby,
        }
        for n in plan.nodes
    ]


def cmd_plan(args: argparse.Namespace) -> int:
    _, plan = load(args)
    rows = plan_rows(plan)
    if args.json:
        print(json.dumps({"run_dir": str(plan.run_dir), "nodes": rows}, indent=2))
        return EXIT_OK
    print_table(
        ["NODE", "REGION", "ROLE", "ADDRESS", "PORTS", "STARTS", "DIRECTORY"],
        [
            [
                r["name"],
                r["region"],
                r["role"],
                r["address"],
                " ".join(f"{k}={v}" for k, v in r["ports"].items()),
                "autoscaler" if r["standby"] else "up",
                str(Path(r["data_dir"]).parent),
            ]
            for r in rows
        ],
    )
    return EXIT_OK
