"""The controller itself dies: nodes keep serving, and `geoha up` adopts them all."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import psutil
import pytest

from geoha.plan import NodeRole
from geoha.runtime import control
from geoha.runtime.controller import controller_pid
from geoha.runtime.process import read_record
from tests.deployment import Deployment

pytestmark = pytest.mark.scenario

READ_LOOP_MAX_S = 120.0


class ReadLoop:
    """GETs through a frontend LB every 50 ms (bounded), counting what failed."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        deadline = time.monotonic() + READ_LOOP_MAX_S
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    resp = client.get(self.url)
                    if resp.status_code == 200:
                        self.ok += 1
                    else:
                        self.failures.append(f"{resp.status_code}: {resp.text[:200]}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                time.sleep(0.05)

    def __enter__(self) -> ReadLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def test_a_killed_controller_is_replaced_and_adopts_every_node(deployment: Deployment) -> None:
    dep = deployment
    run_dir = dep.plan.run_dir
    pids = {
        n.name: (r.pid, r.create_time)
        for n in dep.plan.nodes
        if (r := read_record(n.dir)) is not None and r.alive()
    }
    assert len(pids) == len([n for n in dep.plan.nodes if not n.standby])
    fe = dep.plan.only("chennai", NodeRole.FRONTEND_LB)
    url = f"http://{fe.address}:{fe.ports['http']}/api/v1/themes?limit=1"
    pid = controller_pid(run_dir)
    assert pid is not None

    with ReadLoop(url) as reads:
        os.kill(pid, signal.SIGKILL)
        dep.wait_for("the controller gone", lambda: not psutil.pid_exists(pid))
        orphaned = dep.status()
        assert orphaned["controller"]["running"] is False
        assert "controller not running" in dep.geoha("status").stdout
        # the nodes do not depend on the controller: the data tier still answers
        assert orphaned["cluster"]["primary"] == "delhi-db"

        up = dep.geoha("up")
        assert "adopted" in up.stdout
        time.sleep(2)  # reads keep flowing through the new controller's first cycles

    assert reads.failures == [], reads.failures[:5]
    assert reads.ok > 20
    after = {
        n.name: (r.pid, r.create_time)
        for n in dep.plan.nodes
        if (r := read_record(n.dir)) is not None and r.alive()
    }
    assert after == pids, "a node was restarted instead of adopted"
    status = dep.status()
    assert status["controller"]["running"] and status["controller"]["phase"] == "ready"
    events = controller_events(dep)
    started = [i for i, e in enumerate(events) if e["kind"] == "controller_started"]
    since_restart = events[started[-1] :] if started else events
    adopted = {e["node"] for e in events if e["kind"] == "node_adopted"}
    assert adopted == set(pids)
    assert not [e for e in since_restart if e["kind"] in ("node_started", "node_restarted")]


def controller_events(dep: Deployment) -> list[dict[str, object]]:
    events: list[dict[str, object]] = control.call(dep.plan.run_dir, "status")["events"]
    return events
