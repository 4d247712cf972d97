"""The health monitor with the real deployment: its state, /metrics, history, the
dashboard in headless Chromium, and an incident for a killed frontend LB."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import time
from typing import Any

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from geoha.runtime.controller import controller_pid
from tests.browser import ARTIFACTS, launch_chromium
from tests.deployment import Deployment

pytestmark = pytest.mark.scenario


def monitor(dep: Deployment) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(dep.geoha("monitor", "--json").stdout)
    return data


def region(state: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = (r for r in state["regions"] if r["region"] == name)
    return found


def incident(dep: Deployment, subject: str) -> dict[str, Any] | None:
    """The latest incident of `subject`, if any."""
    return next((i for i in monitor(dep)["incidents"] if i["subject"] == subject), None)


def metrics(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body = httpx.get(url, timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def settled(dep: Deployment) -> dict[str, Any]:
    """The monitor's state once it watches, both regions are in DNS and chennai's lag is read
    in bytes and in ms (PostgreSQL leaves the ms empty between the replica's reports while
    some bytes are outstanding: the monitor shows that as unknown, so wait for a known one)."""

    def ready() -> bool:
        state = monitor(dep)
        lag = region(state, "chennai")["database"]
        return (
            state["watching"]
            and all(r["up"] for r in state["regions"])
            and None not in (lag["replay_lag_bytes"], lag["replay_lag_ms"], lag["write_lag_ms"])
        )

    dep.wait_for("the monitor settled", ready)
    return monitor(dep)


def test_state_and_metrics(shared_deployment: Deployment) -> None:
    dep = shared_deployment
    state = settled(dep)
    assert set(state) >= {"dashboard_url", "metrics_url", "regions", "incidents"}
    assert state["dashboard_url"] == "http://127.0.0.11:9300/"
    assert state["primary"] == "delhi-db"
    delhi, chennai = region(state, "delhi"), region(state, "chennai")
    assert delhi["up"] and chennai["up"]
    assert delhi["entry"]["ok"] and delhi["api"]["ok"] and delhi["entry"]["latency_ms"] > 0
    replica = chennai["database"]
    assert (replica["role"], replica["replication_state"]) == ("replica", "streaming")
    assert replica["sync_state"] == "sync"
    assert replica["replay_lag_ms"] is not None and replica["write_lag_ms"] is not None
    assert replica["replay_lag_bytes"] >= 0 and replica["write_lag_bytes"] >= 0
    lbs = {lb["node"]: lb for lb in chennai["lbs"]}
    assert set(lbs) == {"chennai-fe", "chennai-be"}
    up = {s["server"] for s in lbs["chennai-be"]["servers"] if s["status"] == "UP"}
    assert {"chennai-api-1", "chennai-api-2"} <= up

    m = metrics(state["metrics_url"])
    assert m[("geoha_region_up", (("region", "delhi"),))] == 1.0
    assert m[("geoha_region_up", (("region", "chennai"),))] == 1.0
    assert m[("geoha_database_primary", (("node", "delhi-db"), ("region", "delhi")))] == 1.0
    lag = (("kind", "replay"), ("node", "chennai-db"), ("region", "chennai"))
    assert ("geoha_replication_lag_bytes", lag) in m
    assert ("geoha_replication_lag_seconds", lag) in m
    assert m[("geoha_monitor_rounds_total", ())] >= 1


def test_history_commands_and_http_answers(shared_deployment: Deployment) -> None:
    dep = shared_deployment
    state = settled(dep)
    base = state["dashboard_url"].rstrip("/")
    history = httpx.get(f"{base}/api/history?minutes=1", timeout=5).json()
    assert {s["region"] for s in history["samples"]} == {"delhi", "chennai"}
    bad = httpx.get(f"{base}/api/history?minutes=0", timeout=5)
    assert bad.status_code == 400 and "minutes: a whole number from 1 to 60" in bad.text
    assert httpx.get(f"{base}/nowhere", timeout=5).status_code == 404
    assert httpx.post(f"{base}/", timeout=5).status_code == 405
    page = httpx.get(state["dashboard_url"], timeout=5)
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text  # no inline script: the CSP would block it

    shown = dep.geoha("monitor").stdout
    assert "dashboard http://127.0.0.11:9300/" in shown and "chennai-db replica" in shown
    assert "monitor: http://127.0.0.11:9300/" in dep.geoha("status").stdout


def test_dashboard_in_headless_chromium(shared_deployment: Deployment) -> None:
    state = settled(shared_deployment)
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 900})
            tab.on(
                "console",
                lambda msg: problems.append(msg.text) if msg.type in ("error", "warning") else None,
            )
            tab.on("pageerror", lambda exc: problems.append(str(exc)))
            tab.goto(state["dashboard_url"])
            tab.locator("article[data-region]").nth(1).wait_for(timeout=15_000)
            tab.locator("#chart-checks polyline").first.wait_for(timeout=15_000)
            cards = tab.locator("article[data-region]").all_inner_texts()
            summary = tab.locator("#summary").inner_text()
            tab.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert "primary delhi-db" in summary
    assert any("chennai" in c and "replica" in c for c in cards), cards


def test_an_incident_for_a_killed_frontend_lb(deployment: Deployment) -> None:
    dep = deployment
    out = dep.geoha("up").stdout
    assert "dashboard: http://127.0.0.11:9300/" in out
    dep.wait_for("the monitor watching", lambda: monitor(dep)["watching"])
    assert incident(dep, "entry delhi") is None

    killed_at = time.time()
    dep.geoha("chaos", "kill-node", "delhi-fe")
    dep.wait_for("an open incident", lambda: (i := incident(dep, "entry delhi")) and i["open"])
    opened = incident(dep, "entry delhi")
    assert opened is not None and opened["region"] == "delhi"
    assert opened["cause"] == "connection refused"
    assert killed_at - 1 <= opened["started_at"] <= killed_at + 3
    assert monitor(dep)["regions"][0]["up"] is False

    dep.geoha("chaos", "start-node", "delhi-fe")
    dep.wait_for(
        "the incident closed", lambda: (i := incident(dep, "entry delhi")) and not i["open"]
    )
    closed = incident(dep, "entry delhi")
    assert closed is not None and closed["id"] == opened["id"]
    assert closed["started_at"] == opened["started_at"] < closed["ended_at"]
    assert closed["duration_s"] == pytest.approx(
        closed["ended_at"] - closed["started_at"], abs=0.01
    )
    assert closed["resolution"] == "answered 200"
    events = [
        json.loads(line)
        for line in dep.geoha("logs", "controller", "--json").stdout.splitlines()
        if line
    ]
    kinds = [e["kind"] for e in events if e["fields"].get("subject") == "entry delhi"]
    assert kinds == ["incident_opened", "incident_closed"]

    # the history outlives the controller: a new one shows the same incident
    pid = controller_pid(dep.plan.run_dir)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    dep.wait_for("the controller gone", lambda: not psutil.pid_exists(pid))
    dep.geoha("up")
    assert incident(dep, "entry delhi") == closed

    # `geoha down` ends what is still open: nothing is left open in the history
    dep.geoha("chaos", "kill-node", "chennai-fe")
    dep.wait_for("chennai's incident", lambda: (i := incident(dep, "entry chennai")) and i["open"])
    dep.geoha("down")
    with contextlib.closing(sqlite3.connect(dep.plan.run_dir / "monitor.sqlite")) as db:
        rows = db.execute(
            "SELECT subject, ended_at IS NOT NULL, resolution FROM incidents"
        ).fetchall()
    assert sorted(rows) == [
        ("entry chennai", 1, "deployment stopped"),
        ("entry delhi", 1, "answered 200"),
    ]
