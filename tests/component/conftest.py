"""Component fixtures: one real PostgreSQL primary + streaming replica per session,
and the API running in-process against them (httpx's ASGI transport).

The API under test reads from the replica first (as an API instance in the
replica's region would) and writes through a URI listing both nodes with
target_session_attrs=read-write, so routing and read-your-writes are real.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import httpx
import pytest

from app.api.config import Settings, load_settings
from app.api.main import GeohaApi
from tests.component.pg import PORT, PRIMARY_HOST, REPLICA_HOST, PgCluster, start_cluster

pytestmark = pytest.mark.component

BASE_URL = "http://testserver"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def pg() -> Iterator[PgCluster]:
    cluster = start_cluster(replica=True, fsync=False)
    try:
        yield cluster
    finally:
        cluster.destroy()


def api_env(pg: PgCluster, **overrides: str) -> dict[str, str]:
    env = {
        "GEOHA_REGION": "chennai",
        "GEOHA_INSTANCE": "chennai-api-1",
        "GEOHA_WRITE_DSN": pg.app_dsn([(PRIMARY_HOST, PORT), (REPLICA_HOST, PORT)], "read-write"),
        "GEOHA_READ_DSN": pg.app_dsn([(REPLICA_HOST, PORT), (PRIMARY_HOST, PORT)], "any"),
        "GEOHA_POOL_SIZE": "4",
        "GEOHA_WRITE_TIMEOUT_S": "2",
        "GEOHA_RYW_WAIT_MS": "500",
        "GEOHA_CORS_ORIGINS": "https://app.example.test",
    }
    env.update(overrides)
    return env


@pytest.fixture
def settings(pg: PgCluster) -> Settings:
    return load_settings(api_env(pg))


@pytest.fixture(autouse=True)
def clean_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    """Empty table and a replaying replica before each test that uses the database."""
    if "pg" not in request.fixturenames:
        yield
        return
    pg: PgCluster = request.getfixturevalue("pg")
    with pg.connect(pg.replica) as conn:
        conn.execute("SELECT pg_wal_replay_resume()")
    with pg.connect(pg.primary) as conn:
        conn.execute("TRUNCATE app.themes")
    pg.wait_replica_caught_up()
    yield
    with pg.connect(pg.replica) as conn:
        conn.execute("SELECT pg_wal_replay_resume()")


@asynccontextmanager
async def running_api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan (pools) around an httpx client; pools always closed."""
    api = GeohaApi(lambda: settings)
    await api.startup()
    try:
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield client
    finally:
        await api.shutdown()


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_api(settings) as http:
        yield http


@pytest.fixture
def make_settings(settings: Settings) -> Callable[..., Settings]:
    def make(**changes: Any) -> Settings:
        return replace(settings, **changes)

    return make
