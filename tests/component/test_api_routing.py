"""Read/write routing, read-your-writes with a lagging replica, failover honesty, CORS."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import httpx
import pytest

from app.api.config import DatabaseTarget, HttpUrl, Settings, parse_dsn
from app.api.main import GeohaApi
from app.api.vantage import VantageTarget
from tests.component.conftest import running_api
from tests.component.pg import PORT, PRIMARY_HOST, REPLICA_HOST, PgCluster

pytestmark = [pytest.mark.anyio, pytest.mark.component]

THEMES = "/api/v1/themes"
CLOSED_A = ("127.240.5.9", PORT)  # loopback addresses where nothing listens
CLOSED_B = ("127.241.5.9", PORT)
ORIGIN = "https://app.example.test"
PRIMARY_HOST_PORT = (PRIMARY_HOST, PORT)
REPLICA_HOST_PORT = (REPLICA_HOST, PORT)


@contextmanager
def replay_paused(pg: PgCluster) -> Iterator[None]:
    with pg.connect(pg.replica) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
    try:
        yield
    finally:
        with pg.connect(pg.replica) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")


def dsn(pg: PgCluster, hosts: list[tuple[str, int]], attrs: str, variable: str) -> DatabaseTarget:
    return parse_dsn(variable, pg.app_dsn(hosts, attrs))


async def test_read_your_writes_with_a_paused_replica(
    client: httpx.AsyncClient, pg: PgCluster, settings: Settings
) -> None:
    with replay_paused(pg):
        created = await client.post(THEMES, json={"name": "fresh", "config": {}})
        assert created.status_code == 201
        url = f"{THEMES}/{created.json()['id']}"
        lsn = created.headers["x-commit-lsn"]
        client.cookies.clear()

        started = time.monotonic()
        with_token = await client.get(url, headers={"x-min-lsn": lsn})
        waited = time.monotonic() - started
        assert with_token.status_code == 200
        assert with_token.headers["x-db-role"] == "primary"
        assert settings.ryw_wait_ms / 1000 * 0.8 <= waited < settings.ryw_wait_ms / 1000 + 1.5

        stale = await client.get(url)  # no token: the local replica answers, honestly stale
        assert stale.status_code == 404
        assert stale.headers["x-db-role"] == "replica"

        listed = await client.get(THEMES, headers={"x-min-lsn": lsn})
        assert [t["name"] for t in listed.json()["items"]] == ["fresh"]
        assert listed.headers["x-db-role"] == "primary"

    pg.wait_replica_caught_up()
    caught_up = await client.get(url, headers={"x-min-lsn": lsn})
    assert caught_up.status_code == 200
    assert caught_up.headers["x-db-role"] == "replica"


async def test_the_cookie_carries_the_token(client: httpx.AsyncClient, pg: PgCluster) -> None:
    with replay_paused(pg):
        created = await client.post(THEMES, json={"name": "by cookie"})
        assert client.cookies.get("geoha_min_lsn") == created.headers["x-commit-lsn"]
        response = await client.get(f"{THEMES}/{created.json()['id']}")
        assert response.status_code == 200
        assert response.headers["x-db-role"] == "primary"


async def test_a_token_already_replayed_is_served_by_the_replica(
    client: httpx.AsyncClient, pg: PgCluster
) -> None:
    created = await client.post(THEMES, json={"name": "replayed"})
    pg.wait_replica_caught_up()
    started = time.monotonic()
    response = await client.get(
        f"{THEMES}/{created.json()['id']}", headers={"x-min-lsn": created.headers["x-commit-lsn"]}
    )
    assert response.status_code == 200 and response.headers["x-db-role"] == "replica"
    assert time.monotonic() - started < 0.4


async def test_reads_go_to_the_first_reachable_node(
    pg: PgCluster, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(
        read=dsn(pg, [CLOSED_A, REPLICA_HOST_PORT, PRIMARY_HOST_PORT], "any", "GEOHA_READ_DSN")
    )
    async with running_api(settings) as client:
        response = await client.get(THEMES)
        assert response.status_code == 200
        assert response.headers["x-db-role"] == "replica"
        deep = await client.get("/health/deep")  # the local node is the closed one
        assert deep.status_code == 503
        assert deep.json()["status"] == "unavailable" and "127.240.5.9" in deep.json()["error"]


async def test_primary_first_read_pool_reports_primary(
    pg: PgCluster, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(
        read=dsn(pg, [PRIMARY_HOST_PORT, REPLICA_HOST_PORT], "any", "GEOHA_READ_DSN")
    )
    async with running_api(settings) as client:
        assert (await client.get(THEMES)).headers["x-db-role"] == "primary"
        deep = await client.get("/health/deep")
        assert deep.json() == {"status": "ok", "database": {"role": "primary"}}


async def test_write_with_no_primary_reachable_is_a_fast_503(
    pg: PgCluster, make_settings: Callable[..., Settings]
) -> None:
    cases = {
        "closed ports": [CLOSED_A, CLOSED_B],
        "only a replica": [REPLICA_HOST_PORT],  # reachable, but not read-write
    }
    for label, hosts in cases.items():
        settings = make_settings(
            write=dsn(pg, hosts, "read-write", "GEOHA_WRITE_DSN"), write_timeout_s=1.5
        )
        async with running_api(settings) as client:
            started = time.monotonic()
            response = await client.post(THEMES, json={"name": "nowhere"})
            elapsed = time.monotonic() - started
            assert response.status_code == 503, label
            assert response.headers["retry-after"] == "2"
            assert response.json()["error"]["code"] == "database_unavailable"
            assert elapsed <= 1.5 + 0.5, (label, elapsed)
            assert response.headers["x-served-by"] == "chennai/chennai-api-1"
    with pg.connect(pg.primary) as conn:
        row = conn.execute("SELECT count(*) FROM app.themes").fetchone()
    assert row is not None and row[0] == 0


async def test_reads_with_every_node_down_are_503(
    pg: PgCluster, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(
        read=dsn(pg, [CLOSED_A, CLOSED_B], "any", "GEOHA_READ_DSN"), write_timeout_s=1.0
    )
    async with running_api(settings) as client:
        started = time.monotonic()
        response = await client.get(THEMES)
        assert response.status_code == 503 and response.headers["retry-after"] == "2"
        assert time.monotonic() - started < 1.6
        deep = await client.get("/health/deep")
        assert deep.status_code == 503


async def test_primary_really_stopped(client: httpx.AsyncClient, pg: PgCluster) -> None:
    """Stop the real primary: writes answer 503 within the timeout, reads keep working."""
    created = await client.post(THEMES, json={"name": "before the stop"})
    pg.wait_replica_caught_up()
    pg.stop(pg.primary)
    try:
        await anyio.sleep(0.2)  # let the event loop see the pooled connections close
        started = time.monotonic()
        response = await client.post(THEMES, json={"name": "during"})
        assert response.status_code == 503 and response.headers["retry-after"] == "2"
        assert "no primary accepted the write" in response.json()["error"]["message"]
        assert time.monotonic() - started <= 2.0 + 0.5
        client.cookies.clear()
        read = await client.get(f"{THEMES}/{created.json()['id']}")
        assert read.status_code == 200 and read.headers["x-db-role"] == "replica"
        # A token the replica has not replayed cannot be served by the missing primary.
        token = await client.get(THEMES, headers={"x-min-lsn": "FF/0"})
        assert token.status_code == 503
    finally:
        pg.start(pg.primary)
    response = await client.post(THEMES, json={"name": "after"})
    assert response.status_code == 201


async def test_cors_allowed_origin_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"origin": ORIGIN})
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["vary"] == "Origin"
    assert "X-Commit-LSN" in response.headers["access-control-expose-headers"]
    error = await client.get("/nope", headers={"origin": ORIGIN})
    assert error.headers["access-control-allow-origin"] == ORIGIN


async def test_cors_other_origin_gets_no_grant(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"origin": "https://evil.example"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    for value in response.headers.values():
        assert value != "*"


async def test_cors_preflight(client: httpx.AsyncClient) -> None:
    asks = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type, x-min-lsn",
    }
    allowed = await client.options(THEMES, headers={"origin": ORIGIN, **asks})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert allowed.headers["access-control-allow-methods"] == "GET, POST"
    denied = await client.options(THEMES, headers={"origin": "https://evil.example", **asks})
    assert denied.status_code == 403
    assert denied.json()["error"]["field"] == "origin"
    assert "access-control-allow-origin" not in denied.headers
    wrong_method = await client.options(
        THEMES, headers={"origin": ORIGIN, "access-control-request-method": "DELETE"}
    )
    assert wrong_method.status_code == 403


async def test_cors_disabled_by_default(
    pg: PgCluster, make_settings: Callable[..., Settings]
) -> None:
    async with running_api(make_settings(cors_origins=frozenset())) as client:
        response = await client.get("/health", headers={"origin": ORIGIN})
        assert "access-control-allow-origin" not in response.headers
        preflight = await client.options(
            THEMES, headers={"origin": ORIGIN, "access-control-request-method": "POST"}
        )
        assert "access-control-allow-origin" not in preflight.headers


async def test_a_fenced_region_reads_from_the_primary_only(
    pg: PgCluster, make_settings: Callable[..., Settings]
) -> None:
    # Nothing listens at the etcd member's address: no member, nothing fenced.
    settings = make_settings(etcd_health=HttpUrl(CLOSED_A[0], 2381, "/health"))
    api = GeohaApi(lambda: settings)
    await api.startup()
    try:
        assert api.running is not None and api.running.fence is not None
        fence = api.running.fence
        await fence.stop()  # from here on the test says what the member last answered
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            assert (await client.get(THEMES)).headers["x-db-role"] == "replica"
            assert (await client.get("/health/deep")).status_code == 200

            fence.unhealthy = "RAFT NO LEADER"
            read = await client.get(THEMES)
            assert read.status_code == 200 and read.headers["x-db-role"] == "primary"
            deep = await client.get("/health/deep")
            assert deep.status_code == 503
            assert "etcd member (http://127.240.5.9:2381/health) is unhealthy" in deep.text

            fence.unhealthy = None  # the member has its quorum again
            assert (await client.get(THEMES)).headers["x-db-role"] == "replica"
            assert (await client.get("/health/deep")).json()["database"] == {"role": "replica"}
    finally:
        await api.shutdown()


async def test_a_fenced_read_without_a_primary_reads_locally_once_the_fence_lifts(
    pg: PgCluster, make_settings: Callable[..., Settings]
) -> None:
    """An etcd election after a member died fences a region for a moment while the
    primary may be gone as well: the read must not wait out the write timeout for it."""
    settings = make_settings(
        etcd_health=HttpUrl(CLOSED_A[0], 2381, "/health"),
        write=dsn(pg, [CLOSED_B, REPLICA_HOST_PORT], "read-write", "GEOHA_WRITE_DSN"),
        write_timeout_s=2.0,
    )
    api = GeohaApi(lambda: settings)
    await api.startup()
    try:
        assert api.running is not None and api.running.fence is not None
        fence = api.running.fence
        await fence.stop()
        fence.unhealthy = "RAFT NO LEADER"
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            answers: list[httpx.Response] = []

            async def read() -> None:
                answers.append(await client.get(THEMES))

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(read)
                await anyio.sleep(0.4)
                assert answers == []  # looking for a primary there is none of
                fence.unhealthy = None  # the election is over
        assert answers[0].status_code == 200 and answers[0].headers["x-db-role"] == "replica"
    finally:
        await api.shutdown()


async def test_the_vantage_point_reaches_a_running_postmaster_and_not_a_closed_port(
    pg: PgCluster, make_settings: Callable[..., Settings]
) -> None:
    # No Patroni here: the postmaster's answer to an SSLRequest alone counts.
    settings = make_settings(
        vantage=(
            VantageTarget("primary", PRIMARY_HOST, PORT, 8008),
            VantageTarget("nowhere", CLOSED_A[0], PORT, 8008),
        )
    )
    async with running_api(settings) as client:
        nodes: dict[str, Any] = {}
        for _ in range(20):  # the first round runs as the API starts
            nodes = (await client.get("/health/vantage")).json()["nodes"]
            if len(nodes) == 2:
                break
            await anyio.sleep(0.1)
        assert nodes["primary"]["reached"] is True and nodes["primary"]["failing_for_s"] is None
        assert nodes["nowhere"]["reached"] is False and nodes["nowhere"]["failing_for_s"] >= 0
