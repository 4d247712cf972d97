"""`geoha load`: a bounded open-loop load through the frontend LBs, from the drill's clients.

The clients are the drill's browser-like ones (geoha.ops.drill_clients): each
follows the global DNS as a browser does, or, with `--region`, sends every
request to that region's frontend LB. They are bounded as in a drill (nothing
new after the duration, writes in flight decide within the grace, an operation
and a request cap); Ctrl-C stops them and the report still shows what was
done. The report is geoha.ops.load_report's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from geoha.commands.clients import client_target
from geoha.commands.common import load, print_table, say
from geoha.commands.controller_view import controller_snapshot
from geoha.errors import EXIT_OK, GeohaError
from geoha.ops.drill_clients import ClientSettings, Load
from geoha.ops.drill_model import Clock
from geoha.ops.load_report import LoadReport, Tally, failures, load_report, load_settings

PROGRESS_EVERY_S = 5.0
HALT_WAIT_S = 15.0
"""How long an interrupted load waits for the requests in flight."""

Say = Callable[[str], None]


class LoadFailed(GeohaError):
    """Some requests of the load got no answer classified ok."""


@dataclass(frozen=True)
class Ran:
    """How a load ended."""

    ran_s: float
    """Seconds it made new operations."""
    interrupted: bool


class LoadClock:
    """Seconds since the load began (0 until it has): the clients' clock, started after they
    are built so that the report's times count from the first operation."""

    def __init__(self) -> None:
        self.began: float | None = None

    def start(self) -> None:
        self.began = time.monotonic()

    def __call__(self) -> float:
        return 0.0 if self.began is None else time.monotonic() - self.began


def to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def progress_line(load_run: Load, clock: Clock) -> str:
    attempts = load_run.attempts()
    ok = sum(1 for a in attempts if a.ok)
    return f"[+{clock():5.1f} s] {len(attempts)} requests: {ok} ok, {len(attempts) - ok} failed"


def watch(load_run: Load, until: float, clock: Clock, progress: Say) -> None:
    """Wait until `until` on the load's clock or until every client has stopped, saying how
    the load fares every few seconds."""
    next_progress = (clock() // PROGRESS_EVERY_S + 1) * PROGRESS_EVERY_S
    while clock() < until and any(t.is_alive() for t in load_run.threads):
        time.sleep(max(0.0, min(0.25, until - clock())))
        if clock() >= next_progress:
            progress(progress_line(load_run, clock))
            next_progress += PROGRESS_EVERY_S


def drive(load_run: Load, clock: LoadClock, progress: Say) -> Ran:
    """Run the load to its end, then wait for the writes in flight; Ctrl-C stops it early."""
    duration_s = load_run.duration_s
    ran_s: float | None = None
    clock.start()
    load_run.start()
    try:
        watch(load_run, duration_s, clock, progress)
        ran_s = min(clock(), duration_s)
        finish_s = load_run.settings.grace_s + load_run.settings.request_timeout_s
        watch(load_run, ran_s + finish_s, clock, progress)
        return Ran(ran_s, interrupted=False)
    except KeyboardInterrupt:
        load_run.halt()
        progress("interrupted: waiting for the requests in flight (Ctrl-C again to stop waiting)")
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C: report what is in
            load_run.join(HALT_WAIT_S)
        return Ran(min(clock(), duration_s) if ran_s is None else ran_s, interrupted=True)
    finally:
        load_run.halt()


def cmd_load(args: argparse.Namespace) -> int:
    spec, plan = load(args)
    settings = load_settings(
        args.rate, args.duration, args.read_share, args.region, list(spec.data_regions)
    )
    snap = controller_snapshot(plan)
    if snap is None:
        raise GeohaError("no controller is running: the load needs the deployment up (`geoha up`)")
    target = client_target(plan, snap, settings.region)
    clock = LoadClock()
    load_run = Load(
        target,
        settings.rate,
        settings.duration_s,
        clock,
        seed=secrets.randbits(31),
        tag=f"load-{secrets.token_hex(4)}",
        settings=ClientSettings(read_share=settings.read_share),
    )
    where = (
        f"{settings.region}'s frontend LB ({target.address})"
        if settings.region
        else f"the global DNS's answers for {target.name}"
    )
    to_stderr(
        f"load: {len(load_run.clients)} clients, {settings.rate:g} operations/s "
        f"({settings.read_share:.0%} reads) for {settings.duration_s:g} s through {where}"
    )
    ran = drive(load_run, clock, to_stderr)
    report = load_report(
        load_run.attempts(),
        settings,
        clients=len(load_run.clients),
        ran_s=ran.ran_s,
        interrupted=ran.interrupted,
        capped=load_run.budget.capped,
    )
    if args.json:
        print(json.dumps(report, indent=2), flush=True)
    else:
        print_report(report)
    if ran.interrupted:
        raise KeyboardInterrupt
    if report["requests"] == 0:
        raise LoadFailed("the load made no request")
    if report["failed"]:
        raise LoadFailed(
            f"{report['failed']} of {report['requests']} requests failed: {failures(report)}"
        )
    return EXIT_OK


def print_report(report: LoadReport) -> None:
    where = f"{report['region']}'s frontend LB" if report["region"] else "the global DNS's answers"
    state = "interrupted, " if report["interrupted"] else ""
    state += "stopped by the request cap, " if report["capped"] else ""
    say(
        f"load through {where}: {report['requests']} requests in {report['ran_s']:g} s "
        f"({state}{report['achieved_rate']:g}/s; asked {report['rate']:g} operations/s, "
        f"{report['read_share']:.0%} reads), {report['clients']} clients"
    )

    def row(name: str, t: Tally) -> list[object]:
        lat = t["latency_ms"]
        counts = [t["requests"], t["ok"], t["failed"], t["reads"], t["writes"]]
        return [name, *counts, lat["p50"], lat["p90"], lat["p99"], lat["max"]]

    rows = [row("all", report)]
    if report["region"] is None:
        rows += [row(region, t) for region, t in report["by_region"].items()]
    print_table(
        [
            "REGION",
            "REQUESTS",
            "OK",
            "FAILED",
            "READS",
            "WRITES",
            "P50 MS",
            "P90 MS",
            "P99 MS",
            "MAX MS",
        ],
        rows,
    )
    if report["failed"]:
        say(f"failed: {failures(report)}")
