"""`geoha monitor`: the health monitor's view (regions, lag, incidents) and its URLs."""

from __future__ import annotations

import argparse
import json
import time

from geoha.commands.common import load, print_table, say
from geoha.errors import EXIT_OK, GeohaError
from geoha.ops.monitor_status import MonitorStatus
from geoha.plan import Plan
from geoha.runtime import control


def monitor_status(plan: Plan) -> MonitorStatus:
    try:
        status: MonitorStatus = control.call(plan.run_dir, "monitor")
    except control.ControlError:
        raise GeohaError(
            "no controller is running: the monitor runs inside it (`geoha up`)"
        ) from None
    return status


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _when(epoch: float | None) -> str:
    return "-" if epoch is None else time.strftime("%H:%M:%S", time.localtime(epoch))


def cmd_monitor(args: argparse.Namespace) -> int:
    _, plan = load(args)
    status = monitor_status(plan)
    if args.json:
        print(json.dumps(status, indent=2))
        return EXIT_OK
    watching = "" if status["watching"] else " (not watching yet: the deployment is not ready)"
    say(f"dashboard {status['dashboard_url']}   metrics {status['metrics_url']}{watching}")
    say(f"primary: {status['primary'] or 'none'}; last round {_when(status['at'])}")
    rows = []
    for r in status["regions"]:
        db = r["database"]
        rows.append(
            [
                r["region"],
                "up" if r["up"] else "DOWN",
                f"{'ok' if r['entry']['ok'] else 'FAIL'} {_ms(r['entry']['latency_ms'])}",
                f"{'ok' if r['api']['ok'] else 'FAIL'} {_ms(r['api']['latency_ms'])}",
                f"{r['dns']['answered_share']:.0%}"
                if r["dns"]["answered_share"] is not None
                else "-",
                f"{db['node']} {db['role'] or 'unreachable'}",
                _ms(db["replay_lag_ms"]),
                "-" if db["replay_lag_bytes"] is None else f"{db['replay_lag_bytes']} B",
            ]
        )
    print_table(
        ["REGION", "DNS", "ENTRY", "API", "SHARE", "DATABASE", "REPLAY LAG", "LAG BYTES"], rows
    )
    incidents = status["incidents"]
    if not incidents:
        say("incidents: none")
        return EXIT_OK
    say("incidents (open first, then the latest):")
    print_table(
        ["SUBJECT", "STARTED", "ENDED", "DURATION", "CAUSE", "RESOLUTION"],
        [
            [
                i["subject"],
                _when(i["started_at"]),
                "open" if i["open"] else _when(i["ended_at"]),
                f"{i['duration_s']:.1f} s",
                i["cause"],
                i["resolution"] or "",
            ]
            for i in incidents
        ],
    )
    return EXIT_OK
