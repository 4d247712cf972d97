"""The `geoha` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from geoha.errors import EXIT_OK, GeohaError
from geoha.plan import Plan, Tools, expand, resolve_run_dir
from geoha.spec import Spec
from geoha.topology import load_topology


def load(args: argparse.Namespace) -> tuple[Spec, Plan]:
    path = Path(args.file) if args.file else None
    spec = load_topology(path)
    plan = expand(spec, resolve_run_dir(spec), Tools.discover())
    return spec, plan


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


def print_table(headers: list[str], rows: list[list[Any]]) -> None:
    """Columns padded to their widest cell; None shows as '-'."""
    cells = [headers] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), flush=True)


def add_file_arg(parser: argparse.ArgumentParser, short: bool = True) -> None:
    flags = ["-f", "--file"] if short else ["--file"]
    parser.add_argument(*flags, help="topology file (default: the built-in reference topology)")


Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="geoha",
        description="Multi-region active/active deployments: "
        "rehearse locally, render for the cloud.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check a topology file and summarise it")
    add_file_arg(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("plan", help="list every node the topology expands to")
    add_file_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_plan)

    from geoha import commands
    from geoha.cloud import commands as cloud_commands
    from geoha.cloud import render_commands

    commands.register(sub, add_file_arg)
    cloud_commands.register(sub, add_file_arg)
    render_commands.register(sub, add_file_arg)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Command = args.func
    try:
        return func(args)
    except GeohaError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # output piped into `head` and the like
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        print("geoha: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
