"""`geoha secrets rotate` on a running deployment: every password changes, the API keeps
answering through it, the old passwords stop working and the new ones work everywhere
(the application user, replication, Patroni's REST API, an API instance started after)."""

from __future__ import annotations

import json
import stat
import time

import httpx
import psycopg
import pytest

from geoha.data.cluster import rest_auth
from geoha.data.secrets import load_or_create_secrets
from geoha.db_access import APP_USER, SUPERUSER
from geoha.ops.writer import ApiWriterLoop
from tests.deployment import Deployment

pytestmark = pytest.mark.scenario


def connects(dep: Deployment, node_name: str, user: str, password: str) -> bool:
    dbname = "geoha" if user == APP_USER else "postgres"
    try:
        dep.connect_as(node_name, user, password, dbname).close()
    except psycopg.OperationalError:
        return False
    return True


def deep_health(endpoint: str) -> bool:
    """Whether the instance reads from its database (False while it starts)."""
    try:
        return httpx.get(f"http://{endpoint}/health/deep", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def test_rotating_every_secret_under_api_writes_fails_no_request(deployment: Deployment) -> None:
    dep = deployment
    old = json.loads(dep.plan.secrets_path.read_text())
    dep.wait_for("chennai-db a sync replica", lambda: dep.can_take_over("chennai-db"))
    writers = [
        ApiWriterLoop(dep.entry_url(region), interval_s=0.05, max_s=60).start()
        for region in ("delhi", "chennai")
    ]
    try:
        time.sleep(2)
        rotated = dep.geoha("secrets", "rotate")
        time.sleep(3)
    finally:
        for writer in writers:
            writer.stop()
    assert "rotated app, replication, superuser, rest" in rotated.stdout
    assert [w.errors for w in writers] == [0, 0], [w.failures_since(0) for w in writers]
    assert all(len(w.acks) > 40 for w in writers)

    new = json.loads(dep.plan.secrets_path.read_text())
    assert stat.S_IMODE(dep.plan.secrets_path.stat().st_mode) == 0o600
    assert set(new) == set(old) and all(new[k] != old[k] for k in old)
    for value in new.values():
        assert value not in rotated.stdout + rotated.stderr
    # The database users: the old passwords are refused on every node, the new ones work.
    for node in ("delhi-db", "chennai-db"):
        assert not connects(dep, node, APP_USER, old["app"])
        assert connects(dep, node, APP_USER, new["app"])
        assert not connects(dep, node, SUPERUSER, old["superuser"])
        assert connects(dep, node, SUPERUSER, new["superuser"])
    with psycopg.connect(dep.node_dsn("delhi-db")) as conn:  # pgpass has the new one
        assert conn.execute("SELECT 1").fetchone() == (1,)
    # Replication reconnects with its new password, and the standby is in sync again.
    dep.wait_for("chennai-db a sync replica again", lambda: dep.can_take_over("chennai-db"))
    # Patroni's REST API: the old password is refused, the new one accepted.
    secrets = load_or_create_secrets(dep.plan.spec, dep.plan.secrets_path)
    with dep.patroni("delhi-db") as patroni:
        stale = httpx.BasicAuth("geoha", old["rest"])
        assert patroni.post("/reload", auth=stale).status_code == 401
        assert patroni.post("/reload", auth=rest_auth(secrets)).status_code == 202
    # An API instance started now connects with the new password and serves.
    dep.geoha("chaos", "kill-node", "delhi-api-1")
    dep.geoha("chaos", "start-node", "delhi-api-1")
    api = dep.plan.node("delhi-api-1")
    dep.wait_for("delhi-api-1 serving again", lambda: deep_health(api.endpoint("http")))
