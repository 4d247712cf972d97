"""The global DNS with the real server, `dig` and the real health checks."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from geoha.runtime.global_dns import entry_addresses
from tests.deployment import Deployment

pytestmark = pytest.mark.scenario


def dns(dep: Deployment) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(dep.geoha("dns", "--json").stdout)
    return data


def dig_regions(dep: Deployment, count: int, tmp_path: Path) -> Counter[str]:
    """Ask the server `count` times with one `dig` batch; count the answers per region."""
    status = dns(dep)
    host, _, port = status["server"].rpartition(":")
    batch = tmp_path / "queries"
    batch.write_text(f"{status['name']} A\n" * count)
    out = subprocess.run(
        ["dig", f"@{host}", "-p", port, "+short", "+tries=1", "+time=2", "-f", str(batch)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    regions = {address: region for region, address in entry_addresses(dep.plan).items()}
    answers = Counter(regions.get(line.strip(), line.strip()) for line in out.splitlines())
    assert sum(answers.values()) == count, out
    return answers


def healthy(dep: Deployment) -> dict[str, bool]:
    return {r["region"]: r["healthy"] for r in dns(dep)["records"]}


def test_weighted_answers_follow_region_health(deployment: Deployment, tmp_path: Path) -> None:
    dep = deployment
    dep.wait_for("both regions healthy in DNS", lambda: all(healthy(dep).values()))
    status = dns(dep)
    assert status["running"] and status["name"] == "app.geoha.test"
    assert {r["weight"] for r in status["records"]} == {50}

    both = dig_regions(dep, 200, tmp_path)
    assert set(both) == {"delhi", "chennai"}
    assert 70 <= both["delhi"] <= 130, both  # 50/50 of 200: far outside 6 standard deviations

    dep.geoha("chaos", "kill-node", "delhi-fe")
    dep.wait_for(
        "delhi unhealthy in DNS", lambda: healthy(dep) == {"delhi": False, "chennai": True}
    )
    assert dig_regions(dep, 50, tmp_path) == Counter({"chennai": 50})
    events = [
        json.loads(line)
        for line in dep.geoha("logs", "controller", "--json").stdout.split("\n")
        if line
    ]
    down = [e for e in events if e["kind"] == "dns_health" and e["fields"]["region"] == "delhi"]
    assert down and down[-1]["fields"]["health"] == "unhealthy"
    assert down[-1]["fields"]["checks"] == 3  # the reference failure_threshold, exactly

    dep.geoha("chaos", "start-node", "delhi-fe")
    dep.wait_for("delhi healthy again", lambda: all(healthy(dep).values()))
    assert set(dig_regions(dep, 100, tmp_path)) == {"delhi", "chennai"}

    # the deep path reaches the region's own database: chennai without it is unhealthy
    dep.geoha("chaos", "kill-node", "chennai-db")
    dep.wait_for("chennai unhealthy", lambda: healthy(dep) == {"delhi": True, "chennai": False})
    assert dig_regions(dep, 30, tmp_path) == Counter({"delhi": 30})
    dep.geoha("chaos", "start-node", "chennai-db")

    # fail-open: with both entries gone, answers name both regions again
    dep.geoha("chaos", "kill-node", "delhi-fe")
    dep.geoha("chaos", "kill-node", "chennai-fe")
    dep.wait_for("both unhealthy", lambda: not any(healthy(dep).values()))
    assert set(dig_regions(dep, 100, tmp_path)) == {"delhi", "chennai"}


def test_status_and_up_name_the_dns(shared_deployment: Deployment) -> None:
    dep = shared_deployment
    status = dep.status()
    assert status["dns"]["name"] == "app.geoha.test"
    assert status["dns"]["server"] == "127.0.0.11:5353"
    assert "dns: app.geoha.test @127.0.0.11:5353" in dep.geoha("status").stdout
    bad = dep.geoha("dns", "resolve", "--count", "0", check=False)
    assert bad.returncode == 2 and "--count: 1 to 10000" in bad.stderr
