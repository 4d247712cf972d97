"""Themes CRUD against a real primary + replica, through the ASGI app in-process."""

from __future__ import annotations

import httpx
import pytest

from tests.component.pg import PgCluster

pytestmark = [pytest.mark.anyio, pytest.mark.component]

THEMES = "/api/v1/themes"
SERVED_BY = "chennai/chennai-api-1"


async def create(client: httpx.AsyncClient, name: str, config: object | None = None) -> dict:
    body: dict[str, object] = {"name": name}
    if config is not None:
        body["config"] = config
    response = await client.post(THEMES, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def count_rows(pg: PgCluster) -> int:
    with pg.connect(pg.primary) as conn:
        row = conn.execute("SELECT count(*) FROM app.themes").fetchone()
    assert row is not None
    return int(row[0])


async def test_health_needs_no_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "region": "chennai", "instance": "chennai-api-1"}
    assert response.headers["x-served-by"] == SERVED_BY
    assert "x-db-role" not in response.headers


async def test_deep_health_reads_the_local_node(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/deep")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": {"role": "replica"}}
    assert response.headers["x-db-role"] == "replica"


async def test_create_returns_theme_location_and_commit_lsn(client: httpx.AsyncClient) -> None:
    response = await client.post(THEMES, json={"name": "Dusk", "config": {"accent": "#ff8800"}})
    assert response.status_code == 201
    theme = response.json()
    assert set(theme) == {"id", "name", "config", "created_at", "updated_at"}
    assert theme["name"] == "Dusk" and theme["config"] == {"accent": "#ff8800"}
    assert isinstance(theme["id"], int) and theme["created_at"] == theme["updated_at"]
    assert response.headers["location"] == f"{THEMES}/{theme['id']}"
    assert response.headers["x-db-role"] == "primary"
    assert response.headers["x-served-by"] == SERVED_BY
    lsn = response.headers["x-commit-lsn"]
    assert "/" in lsn
    cookie = response.headers["set-cookie"]
    assert cookie == f"geoha_min_lsn={lsn}; Path=/; SameSite=Lax; HttpOnly"


async def test_create_without_config_stores_empty_object(client: httpx.AsyncClient) -> None:
    theme = await create(client, "plain")
    assert theme["config"] == {}


async def test_get_one_and_missing(client: httpx.AsyncClient) -> None:
    theme = await create(client, "Sea", {"nested": {"list": [1, 2.5, "x", None, True]}})
    response = await client.get(f"{THEMES}/{theme['id']}")
    assert response.status_code == 200
    assert response.json() == theme
    assert response.headers["x-db-role"] in ("primary", "replica")
    missing = await client.get(f"{THEMES}/{theme['id'] + 1000}")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert missing.headers["x-served-by"] == SERVED_BY
    assert missing.headers["x-db-role"] in ("primary", "replica")


async def test_put_replaces_and_changes_updated_at(client: httpx.AsyncClient) -> None:
    theme = await create(client, "Old", {"a": 1})
    response = await client.put(f"{THEMES}/{theme['id']}", json={"name": "New", "config": {"b": 2}})
    assert response.status_code == 200
    updated = response.json()
    assert updated["name"] == "New" and updated["config"] == {"b": 2}
    assert updated["created_at"] == theme["created_at"]
    assert updated["updated_at"] > theme["updated_at"]
    assert response.headers["x-db-role"] == "primary"
    assert "x-commit-lsn" in response.headers
    again = await client.get(f"{THEMES}/{theme['id']}")
    assert again.json() == updated


async def test_patch_changes_only_given_fields(client: httpx.AsyncClient) -> None:
    theme = await create(client, "Keep", {"a": 1})
    renamed = await client.patch(f"{THEMES}/{theme['id']}", json={"name": "Renamed"})
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Renamed" and renamed.json()["config"] == {"a": 1}
    reconfigured = await client.patch(f"{THEMES}/{theme['id']}", json={"config": {"z": [1]}})
    assert reconfigured.json()["name"] == "Renamed" and reconfigured.json()["config"] == {"z": [1]}
    assert reconfigured.json()["updated_at"] > theme["updated_at"]


async def test_update_and_delete_of_missing_theme_is_404(client: httpx.AsyncClient) -> None:
    for method in ("PUT", "PATCH"):
        response = await client.request(
            method, f"{THEMES}/987654", json={"name": "x", "config": {}}
        )
        assert response.status_code == 404, method
    response = await client.delete(f"{THEMES}/987654")
    assert response.status_code == 404


async def test_delete(client: httpx.AsyncClient, pg: PgCluster) -> None:
    theme = await create(client, "Gone")
    response = await client.delete(f"{THEMES}/{theme['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["x-db-role"] == "primary"
    assert "x-commit-lsn" in response.headers
    assert (await client.get(f"{THEMES}/{theme['id']}")).status_code == 404
    assert count_rows(pg) == 0


async def test_sql_metacharacters_are_stored_literally(
    client: httpx.AsyncClient, pg: PgCluster
) -> None:
    name = "'); DROP TABLE themes; --"
    config = {"q": "' OR 1=1 --", 'k"; DELETE FROM themes; --': "$1 \\x00 %s"}
    theme = await create(client, name, config)
    fetched = (await client.get(f"{THEMES}/{theme['id']}")).json()
    assert fetched["name"] == name and fetched["config"] == config
    assert count_rows(pg) == 1
    listed = await client.get(THEMES, params={"limit": "5"})
    assert listed.json()["items"][0]["name"] == name


async def test_unicode_name_counts_characters_not_bytes(client: httpx.AsyncClient) -> None:
    theme = await create(client, "é" * 100, {"emoji": "🎨"})
    assert theme["name"] == "é" * 100 and theme["config"] == {"emoji": "🎨"}


async def test_pagination_45_rows_three_pages(client: httpx.AsyncClient) -> None:
    created = [(await create(client, f"theme {i}"))["id"] for i in range(45)]
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "20"} if cursor is None else {"limit": "20", "cursor": cursor}
        response = await client.get(THEMES, params=params)
        assert response.status_code == 200
        page = response.json()
        pages += 1
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert [len(seen[:20]), len(seen[20:40]), len(seen[40:])] == [20, 20, 5]
    assert seen == sorted(created, reverse=True)  # newest first, no gaps, no duplicates


async def test_list_default_limit_is_20(client: httpx.AsyncClient) -> None:
    for i in range(21):
        await create(client, f"t{i}")
    page = (await client.get(THEMES)).json()
    assert len(page["items"]) == 20 and page["next_cursor"] is not None


async def test_list_exact_page_has_no_next_cursor(client: httpx.AsyncClient) -> None:
    for i in range(3):
        await create(client, f"t{i}")
    page = (await client.get(THEMES, params={"limit": "3"})).json()
    assert len(page["items"]) == 3 and page["next_cursor"] is None


async def test_empty_list(client: httpx.AsyncClient) -> None:
    response = await client.get(THEMES)
    assert response.json() == {"items": [], "next_cursor": None}
    assert response.headers["x-db-role"] == "replica"


async def test_openapi_lists_every_route(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    assert "/health" not in paths  # the instance's own path; the web app's through the entry
    for path, methods in {
        "/health/deep": {"get"},
        "/api/v1/openapi.json": {"get"},
        THEMES: {"get", "post"},
        f"{THEMES}/{{id}}": {"get", "put", "patch", "delete"},
    }.items():
        assert methods <= set(paths[path]), path


async def test_head_is_get_without_body(client: httpx.AsyncClient) -> None:
    response = await client.head("/health")
    assert response.status_code == 200 and response.content == b""
