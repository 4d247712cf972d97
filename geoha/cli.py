"""The `geoha` command line: every command's arguments, and errors turned into exit statuses.

Building the parser imports no command: each command names the module and
function that run it, and that module (with pydantic, psycopg, httpx or the
cloud renderers behind it) is imported only when the command runs. `geoha
--help` and `geoha validate` therefore start in a fraction of the time the
whole program takes to import (docs/BENCHMARKS.md, "Command line startup").
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from geoha.cloud.choices import Currency, RenderKind
from geoha.errors import EXIT_OK, GeohaError

Command = Callable[[argparse.Namespace], int]
"""A command: parsed arguments in, exit status out; a failure is raised as a GeohaError."""


@dataclass(frozen=True)
class CommandRef:
    """Where a command's function lives, imported when the command runs."""

    module: str
    function: str

    def load(self) -> Command:
        command: Command = getattr(importlib.import_module(self.module), self.function)
        return command


Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What `add_subparsers` returns (generic only for type checkers, hence the string)."""


def add_command(
    sub: Subcommands,
    name: str,
    ref: str,
    help_text: str,
    file_flags: Sequence[str] = ("-f", "--file"),
) -> argparse.ArgumentParser:
    """Declare the command `name`, run by `ref` ("module:function"), with its topology file."""
    module, _, function = ref.partition(":")
    parser = sub.add_parser(name, help=help_text)
    parser.add_argument(
        *file_flags, dest="file", help="topology file (default: the built-in reference topology)"
    )
    parser.set_defaults(run=CommandRef(module, function))
    return parser


def add_topology_commands(sub: Subcommands) -> None:
    module = "geoha.commands.validate"
    add_command(sub, "validate", f"{module}:cmd_validate", "check a topology file and summarise it")
    p = add_command(sub, "plan", f"{module}:cmd_plan", "list every node the topology expands to")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def add_local_commands(sub: Subcommands) -> None:
    lifecycle = "geoha.commands.lifecycle"
    status = "geoha.commands.status"
    access = "geoha.commands.access"
    p = add_command(
        sub,
        "up",
        f"{lifecycle}:cmd_up",
        "start (or complete) the local deployment and wait until it is healthy",
    )
    p.add_argument(
        "--tiers",
        choices=["data", "app", "all"],
        default="all",
        help="how much to bring up: data (etcd, databases, schema), app (and the API behind "
        "its backend LB), all (and web instances behind the frontend LB; the default)",
    )
    p = add_command(sub, "down", f"{lifecycle}:cmd_down", "stop every node of the local deployment")
    p.add_argument("--purge", action="store_true", help="also remove data, logs and secrets")
    p = add_command(sub, "status", f"{status}:cmd_status", "roles, replication lag, etcd health")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_command(sub, "ps", f"{status}:cmd_ps", "every node's process and health")
    # `logs -f` follows, as tail -f does: the topology file is --file only.
    p = add_command(
        sub,
        "logs",
        f"{status}:cmd_logs",
        "a node's log (or the controller's)",
        file_flags=["--file"],
    )
    p.add_argument("node", metavar="NODE")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    p.add_argument("-n", "--lines", type=int, default=50, help="lines to show (default 50)")
    p.add_argument(
        "--json",
        action="store_true",
        help="with NODE controller: its recent events, one JSON object per line",
    )
    p = add_command(
        sub, "dsn", f"{access}:cmd_dsn", "the libpq URI an application in a region uses"
    )
    p.add_argument("--region", required=True)
    p.add_argument("--write", action="store_true", help="the read-write URI (all nodes)")
    p = add_command(
        sub,
        "open",
        f"{access}:cmd_open",
        "the URL of a region's frontend LB (every region's without REGION)",
    )
    p.add_argument("region", metavar="REGION", nargs="?")
    p = add_command(
        sub, "ca", f"{access}:cmd_ca", "the deployment's CA certificate (PEM), for HTTPS clients"
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument("--path", action="store_true", help="print its path instead")
    what.add_argument(
        "--renew",
        action="store_true",
        help="issue every node that holds a certificate a new one from the CA; running nodes "
        "take it without a restart",
    )
    what.add_argument(
        "--cloud",
        metavar="DIR",
        help="create a new CA for the cloud deployment in DIR (ca.pem; ca.key, mode 0600): "
        "TF_VAR_internal_ca_certificate and TF_VAR_internal_ca_key",
    )
    p = add_command(
        sub,
        "switchover",
        f"{lifecycle}:cmd_switchover",
        "planned switchover of the primary to another region",
    )
    p.add_argument("--to", required=True, metavar="REGION")
    p = add_command(
        sub,
        "dns",
        "geoha.commands.dns:cmd_dns",
        "the global DNS (Route 53 semantics): records, weights, health; `resolve` asks it",
    )
    p.add_argument("action", nargs="?", choices=["resolve"], help="ask the server COUNT times")
    p.add_argument(
        "--count",
        type=int,
        default=100,
        help="with resolve: how many queries (1 to 10000, default 100)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = add_command(
        sub,
        "monitor",
        "geoha.commands.monitor:cmd_monitor",
        "the health monitor: regions, replication lag, incidents, dashboard and metrics URLs",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = add_command(
        sub,
        "chaos",
        f"{lifecycle}:cmd_chaos",
        "inject faults: kill-node NODE, start-node NODE, kill-region REGION, "
        "partition REGION [--from REGION...], heal [REGION]",
    )
    p.add_argument(
        "action", choices=["kill-node", "start-node", "kill-region", "partition", "heal"]
    )
    p.add_argument("target", nargs="?", metavar="NODE|REGION")
    p.add_argument(
        "--from",
        dest="others",
        nargs="+",
        metavar="REGION",
        help="with partition: the regions to cut it off from (default: every other region)",
    )
    p = add_command(
        sub,
        "scale",
        f"{lifecycle}:cmd_scale",
        "set a region's web or API tier to N instances by hand, within its autoscale min and "
        "max (the autoscaler may move it again: docs/DESIGN.md, Autoscaling)",
    )
    p.add_argument("region", metavar="REGION")
    p.add_argument("tier", metavar="TIER", choices=["web", "api"])
    p.add_argument("count", metavar="N", type=int)
    p = add_command(
        sub,
        "secrets",
        f"{lifecycle}:cmd_secrets",
        "rotate: new passwords on the running deployment, without stopping the API "
        "(database users and Patroni's REST API; default: all)",
    )
    p.add_argument("action", choices=["rotate"])
    p.add_argument(
        "--user",
        dest="users",
        action="append",
        choices=["app", "replication", "superuser", "rest"],
        help="the secret to rotate (repeatable; default: all four)",
    )
    add_drill_command(sub)
    add_load_command(sub)


def add_drill_command(sub: Subcommands) -> None:
    p = add_command(
        sub,
        "drill",
        "geoha.commands.drill:cmd_drill",
        "failover drill: load from browser-like clients, a fault, its heal; RTO, RPO and "
        "split brain as users see them (`verify`: check a saved drill's writes again)",
    )
    p.add_argument("action", choices=["failover", "verify"])
    p.add_argument(
        "--fault",
        metavar="FAULT",
        help="kill-region:REGION, partition:REGION, kill-node:NODE or kill-witness",
    )
    p.add_argument(
        "--rate", type=float, default=20.0, help="operations per second, all clients (default 20)"
    )
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    p.add_argument(
        "--heal-after",
        type=float,
        metavar="S",
        help="seconds from the fault to the heal (default: half the duration)",
    )
    p.add_argument("--repeat", type=int, default=1, help="drills in a row, with a summary")
    p.add_argument(
        "--report",
        metavar="DIR",
        help="write report.json, report.md and timeline.png there (run-N/ for each of "
        "--repeat); with verify: the folder to check",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def add_load_command(sub: Subcommands) -> None:
    p = add_command(
        sub,
        "load",
        "geoha.commands.load:cmd_load",
        "bounded open-loop load from the drill's browser-like clients: requests by outcome, "
        "latency percentiles",
    )
    p.description = (
        "Load the running deployment through the frontend LBs for --duration seconds: "
        "--rate operations per second from the drill's browser-like clients, reads of the "
        "newest themes and writes that create themes (named drill-load-*). Bounded as a "
        "drill's load is: nothing new after --duration, writes in flight decide within 20 s, "
        "operations and requests capped; Ctrl-C stops it. Progress goes to "
        "stderr every 5 s; the report (requests by outcome, reads and writes, achieved rate, "
        "latency p50/p90/p99/max per region) to stdout. Exits 0 when every request got an "
        "answer classified ok, 1 when some failed, 2 on bad arguments, 130 when interrupted "
        "(after printing the report of what was done)."
    )
    p.add_argument(
        "--region",
        metavar="REGION",
        help="send every request to this data region's frontend LB (default: each client "
        "follows the global DNS, as a browser does)",
    )
    p.add_argument(
        "--rate",
        type=float,
        required=True,
        metavar="N",
        help="operations per second, all clients together (more than 0, at most 5000)",
    )
    p.add_argument(
        "--duration",
        type=float,
        required=True,
        metavar="S",
        help="seconds of load (more than 0, at most 3600); writes in flight then decide",
    )
    p.add_argument(
        "--read-share",
        type=float,
        default=0.8,
        metavar="F",
        help="share of the operations that are reads, 0 to 1 (default 0.8)",
    )
    p.add_argument(
        "--json", action="store_true", help="print the report as JSON (progress stays on stderr)"
    )


def add_cloud_commands(sub: Subcommands) -> None:
    module = "geoha.cloud.commands"
    p = add_command(
        sub,
        "cost",
        f"{module}:cmd_cost",
        "monthly cost of the deployment in the cloud (E2E Networks + Route 53)",
    )
    p.add_argument(
        "--currency",
        choices=[c.value for c in Currency],
        default=Currency.INR.value,
        help="currency of the amounts (default INR; USD at cloud.inr_per_usd)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = add_command(
        sub,
        "availability",
        f"{module}:cmd_availability",
        "availability and downtime per month of the deployment",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = add_command(
        sub,
        "render",
        "geoha.cloud.render_commands:cmd_render",
        "write the cloud deployment: Terraform JSON (E2E + Route 53) or cloud-init",
    )
    p.add_argument("kind", choices=[k.value for k in RenderKind], help="what to render")
    p.add_argument("out", metavar="OUT", help="folder to write (replaced atomically)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="geoha",
        description="Multi-region active/active deployments: "
        "rehearse locally, render for the cloud.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_topology_commands(sub)
    add_local_commands(sub)
    add_cloud_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    ref: CommandRef = args.run
    try:
        return ref.load()(args)
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
