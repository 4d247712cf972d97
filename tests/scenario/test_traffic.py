"""The request path in both regions: frontend LB -> web/API -> backend LB -> API -> database."""

from __future__ import annotations

import ssl
import time

import httpx
import pytest

from geoha.plan import NodeRole
from tests.browser import ARTIFACTS, launch_chromium
from tests.deployment import Deployment, unique_name

pytestmark = pytest.mark.scenario

SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin-when-cross-origin",
}


def entry(dep: Deployment, region: str, scheme: str = "http") -> str:
    fe = dep.plan.only(region, NodeRole.FRONTEND_LB)
    return f"{scheme}://{fe.address}:{fe.ports[scheme]}"


def assert_security_headers(resp: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers.get(name) == value, (name, resp.request.url)
    assert "content-security-policy" in resp.headers, resp.request.url


def test_crud_through_each_region(shared_deployment: Deployment) -> None:
    dep = shared_deployment
    for region in ("delhi", "chennai"):
        name, renamed = unique_name(f"{region} dusk"), unique_name(f"{region} renamed")
        with httpx.Client(base_url=entry(dep, region), timeout=10) as client:
            page = client.get("/")
            assert page.status_code == 200 and '<div id="root">' in page.text
            assert page.headers["cache-control"] == "no-cache"
            assert_security_headers(page)
            created = client.post(
                "/api/v1/themes", json={"name": name, "config": {"accent": "#123"}}
            )
            assert created.status_code == 201, created.text
            assert_security_headers(created)
            assert created.headers["x-served-by"].startswith(f"{region}/")
            assert created.headers["x-db-role"] == "primary"  # writes reach the primary
            theme = created.json()
            lsn = created.headers["x-commit-lsn"]
            # Read-your-writes through this region, immediately, with the token.
            got = client.get(f"/api/v1/themes/{theme['id']}", headers={"X-Min-LSN": lsn})
            assert got.status_code == 200 and got.json()["name"] == name
            assert got.headers["x-served-by"].startswith(f"{region}/")
            updated = client.put(
                f"/api/v1/themes/{theme['id']}", json={"name": renamed, "config": {}}
            )
            assert updated.status_code == 200 and updated.json()["name"] == renamed
            listed = client.get(
                "/api/v1/themes", headers={"X-Min-LSN": updated.headers["x-commit-lsn"]}
            )
            assert any(t["id"] == theme["id"] for t in listed.json()["items"])
            deleted = client.delete(f"/api/v1/themes/{theme['id']}")
            assert deleted.status_code == 204
            gone = client.get(
                f"/api/v1/themes/{theme['id']}",
                headers={"X-Min-LSN": deleted.headers["x-commit-lsn"]},
            )
            assert gone.status_code == 404
            asset = next(
                p for p in page.text.split('"') if p.startswith("/assets/") and p.endswith(".js")
            )
            script = client.get(asset)
            assert script.status_code == 200
            assert "immutable" in script.headers["cache-control"]


def test_both_instances_of_each_tier_get_traffic_and_https_works(
    shared_deployment: Deployment,
) -> None:
    dep = shared_deployment
    ca = dep.plan.run_dir / "tls" / "ca.pem"
    with httpx.Client(
        base_url=entry(dep, "chennai", "https"),
        verify=ssl.create_default_context(cafile=str(ca)),
        timeout=10,
    ) as client:
        served = {client.get("/api/v1/themes").headers["x-served-by"] for _ in range(12)}
        assert served == {"chennai/chennai-api-1", "chennai/chennai-api-2"}
        health = client.get("/health/deep")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert_security_headers(client.get("/"))
    with pytest.raises(httpx.ConnectError):  # the CA is not a public one
        httpx.get(entry(dep, "chennai", "https") + "/", timeout=5)
    status = dep.status()["traffic"]["delhi"]
    fe = next(lb for lb in status["lbs"] if lb["role"] == "frontend-lb")
    assert fe["servers"]["web"]["delhi-web-1"] == "UP"
    assert fe["servers"]["web"]["delhi-web-3"] == "MAINT"  # a standby slot


def test_killed_api_instance_is_routed_around_without_a_failed_read(deployment: Deployment) -> None:
    dep = deployment
    failures: list[str] = []
    served: set[str] = set()
    with httpx.Client(base_url=entry(dep, "delhi"), timeout=10) as client:
        theme = client.post("/api/v1/themes", json={"name": "steady", "config": {}}).json()
        for i in range(400):  # bounded read loop, ~10 s
            if i == 50:
                dep.geoha("chaos", "kill-node", "delhi-api-1")
            resp = client.get(f"/api/v1/themes/{theme['id']}")
            if resp.status_code != 200:
                failures.append(f"{i}: {resp.status_code} {resp.text[:80]}")
            else:
                served.add(resp.headers["x-served-by"])
            time.sleep(0.02)
    assert failures == []
    assert "delhi/delhi-api-2" in served


def test_writes_work_in_both_regions_after_a_database_failover(deployment: Deployment) -> None:
    dep = deployment
    dep.wait_for("a sync replica", lambda: bool(dep.database("chennai-db")["sync"]))
    dep.geoha("chaos", "kill-node", "delhi-db")
    for region in ("delhi", "chennai"):
        with httpx.Client(base_url=entry(dep, region), timeout=10) as client:

            def write_ok(client: httpx.Client = client, region: str = region) -> bool:
                resp = client.post("/api/v1/themes", json={"name": f"after {region}", "config": {}})
                if resp.status_code == 503:
                    assert "retry-after" in resp.headers  # honest: not placed, try again
                return resp.status_code == 201

            dep.wait_for(f"a write through {region}", write_ok, 90)
    assert dep.status()["cluster"]["primary"] == "chennai-db"


def test_web_app_in_headless_chromium(shared_deployment: Deployment) -> None:
    from playwright.sync_api import sync_playwright

    dep = shared_deployment
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(entry(dep, "chennai") + "/")
            name = unique_name("Chromium monsoon")
            page.get_by_test_id("theme-name-input").fill(name)
            page.get_by_test_id("theme-submit").click()
            item = page.get_by_test_id("theme-item").filter(has_text=name)
            item.wait_for(timeout=15_000)
            served_by = page.get_by_test_id("served-by").inner_text()
            page.screenshot(path=str(ARTIFACTS / "web-app-chennai.png"), full_page=True)
        finally:
            browser.close()
    assert "chennai" in served_by.lower()
    assert errors == []
