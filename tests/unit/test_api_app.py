"""The ASGI app without a database: lifespan protocol, health, 404/405, CORS, body limits.

Pools are created with min_size=0, so startup opens no connection; the DSNs
point at a closed loopback port and nothing here needs them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from app.api.config import Settings, load_settings
from app.api.main import GeohaApi
from tests.unit.api_settings import unit_settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def settings() -> Settings:
    return unit_settings(GEOHA_CORS_ORIGINS="https://ok.example", GEOHA_WRITE_TIMEOUT_S="0.5")


async def call(api: GeohaApi, method: str, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, **kwargs)


async def test_lifespan_protocol_opens_and_closes() -> None:
    api = GeohaApi(settings)
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await inbox.put({"type": "lifespan.startup"})
    await inbox.put({"type": "lifespan.shutdown"})
    await api({"type": "lifespan"}, inbox.get, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert api.running is None


async def test_lifespan_reports_bad_configuration() -> None:
    def broken() -> Settings:
        return load_settings({"GEOHA_REGION": "x"})

    api = GeohaApi(broken)
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await inbox.put({"type": "lifespan.startup"})
    await api({"type": "lifespan"}, inbox.get, send)
    assert sent[0]["type"] == "lifespan.startup.failed"
    assert sent[0]["message"].startswith("GEOHA_WRITE_DSN=")


async def test_before_startup_everything_is_503() -> None:
    response = await call(GeohaApi(settings), "GET", "/health")
    assert response.status_code == 503 and response.headers["retry-after"] == "2"


async def test_routes_without_database() -> None:
    api = GeohaApi(settings)
    await api.startup()
    try:
        health = await call(api, "GET", "/health")
        assert health.json() == {"status": "ok", "region": "delhi", "instance": "delhi-api-2"}
        assert health.headers["x-served-by"] == "delhi/delhi-api-2"
        missing = await call(api, "GET", "/missing")
        assert missing.status_code == 404 and missing.headers["x-served-by"] == "delhi/delhi-api-2"
        wrong = await call(api, "PATCH", "/api/v1/themes")
        assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, POST"
        options = await call(api, "OPTIONS", "/api/v1/themes/5")
        assert options.status_code == 204 and options.headers["allow"] == "DELETE, GET, PATCH, PUT"
        spec = await call(api, "GET", "/api/v1/openapi.json")
        assert spec.json()["openapi"] == "3.1.0"
    finally:
        await api.shutdown()


async def test_body_checks_come_before_the_database() -> None:
    api = GeohaApi(settings)
    await api.startup()
    try:
        big = await call(
            api,
            "POST",
            "/api/v1/themes",
            content=b"x" * 3000,
            headers={"content-type": "application/json"},
        )
        assert big.status_code == 413
        text = await call(
            api, "POST", "/api/v1/themes", content=b"{}", headers={"content-type": "text/plain"}
        )
        assert text.status_code == 415
        bad_length = await call(
            api,
            "POST",
            "/api/v1/themes",
            content=b"{}",
            headers={"content-type": "application/json", "content-length": "abc"},
        )
        assert bad_length.status_code in (400, 413)
    finally:
        await api.shutdown()


async def test_database_down_is_a_bounded_503() -> None:
    api = GeohaApi(settings)
    await api.startup()
    try:
        response = await call(api, "POST", "/api/v1/themes", json={"name": "x"})
        assert response.status_code == 503 and response.headers["retry-after"] == "2"
        assert response.json()["error"]["code"] == "database_unavailable"
    finally:
        await api.shutdown()


async def test_cors_headers() -> None:
    api = GeohaApi(settings)
    await api.startup()
    try:
        ok = await call(api, "GET", "/health", headers={"origin": "https://ok.example"})
        assert ok.headers["access-control-allow-origin"] == "https://ok.example"
        other = await call(api, "GET", "/health", headers={"origin": "https://no.example"})
        assert "access-control-allow-origin" not in other.headers
        assert other.headers["vary"] == "Origin"
    finally:
        await api.shutdown()
