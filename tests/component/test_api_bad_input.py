"""Every class of bad input gets its status code and names the field; nothing is written."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.component.pg import PgCluster

pytestmark = [pytest.mark.anyio, pytest.mark.component]

THEMES = "/api/v1/themes"
JSON_HEADERS = {"content-type": "application/json"}


def rows(pg: PgCluster) -> int:
    with pg.connect(pg.primary) as conn:
        row = conn.execute("SELECT count(*) FROM app.themes").fetchone()
    assert row is not None
    return int(row[0])


def assert_error(response: httpx.Response, status: int, field: str | None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "field", "message"}
    assert error["field"] == field, error
    assert error["message"]
    assert response.headers["x-served-by"] == "chennai/chennai-api-1"


async def existing_id(client: httpx.AsyncClient) -> int:
    response = await client.post(THEMES, json={"name": "base", "config": {"k": 1}})
    assert response.status_code == 201
    return int(response.json()["id"])


async def test_malformed_json_is_400(client: httpx.AsyncClient, pg: PgCluster) -> None:
    for body in (b"{", b"{'name': 'x'}", b"", b"[1,]", b'{"name": "x", "config": NaN}'):
        response = await client.post(THEMES, content=body, headers=JSON_HEADERS)
        assert_error(response, 400, None)
        assert response.json()["error"]["code"] == "malformed_json"
    assert rows(pg) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"config": {}}, "name"),  # missing
        ({"name": 42}, "name"),  # wrong type
        ({"name": None}, "name"),
        ({"name": ""}, "name"),  # empty
        ({"name": "x" * 101}, "name"),  # too long
        ({"name": "nul\u0000byte"}, "name"),
        ({"name": "x", "config": []}, "config"),  # not an object
        ({"name": "x", "config": "{}"}, "config"),
        ({"name": "x", "config": None}, "config"),
        ({"name": "x", "config": {"big": "y" * 16400}}, "config"),  # > 16 KiB
        ({"name": "x", "config": {"s": "a\u0000b"}}, "config"),
        ({"name": "x", "colour": "red"}, "colour"),  # unknown field
        ([{"name": "x"}], None),  # not an object at all
        ("just a string", None),
    ],
)
async def test_invalid_create_body_is_422_naming_the_field(
    client: httpx.AsyncClient, pg: PgCluster, body: object, field: str | None
) -> None:
    assert_error(await client.post(THEMES, json=body), 422, field)
    assert rows(pg) == 0


async def test_put_requires_both_fields(client: httpx.AsyncClient) -> None:
    theme_id = await existing_id(client)
    assert_error(await client.put(f"{THEMES}/{theme_id}", json={"name": "x"}), 422, "config")
    assert_error(await client.put(f"{THEMES}/{theme_id}", json={"config": {}}), 422, "name")


async def test_patch_needs_a_field_and_checks_each(client: httpx.AsyncClient) -> None:
    theme_id = await existing_id(client)
    assert_error(await client.patch(f"{THEMES}/{theme_id}", json={}), 422, None)
    assert_error(await client.patch(f"{THEMES}/{theme_id}", json={"name": ""}), 422, "name")
    assert_error(await client.patch(f"{THEMES}/{theme_id}", json={"config": 1}), 422, "config")
    assert_error(await client.patch(f"{THEMES}/{theme_id}", json={"id": 5}), 422, "id")
    unchanged = await client.get(f"{THEMES}/{theme_id}")
    assert unchanged.json()["name"] == "base" and unchanged.json()["config"] == {"k": 1}


async def test_failed_update_leaves_the_row_as_it_was(client: httpx.AsyncClient) -> None:
    theme_id = await existing_id(client)
    bad = {"name": "new name", "config": {"big": "y" * 17000}}
    assert_error(await client.put(f"{THEMES}/{theme_id}", json=bad), 422, "config")
    theme = (await client.get(f"{THEMES}/{theme_id}")).json()
    assert theme["name"] == "base" and theme["config"] == {"k": 1}


async def test_database_check_constraint_is_422_and_writes_nothing(
    client: httpx.AsyncClient, pg: PgCluster
) -> None:
    # Under 16 KiB as compact JSON text (the API's own limit) but far larger as
    # jsonb (every number is a numeric of its own): only the table's CHECK can
    # refuse it, and the API must still name the field and write nothing.
    config = {"zeros": [0] * 7000}
    text = json.dumps(config, separators=(",", ":"))
    with pg.connect(pg.primary) as conn:
        row = conn.execute("SELECT pg_column_size(%s::jsonb)", (text,)).fetchone()
    assert row is not None
    assert len(text.encode()) < 16384 < row[0], "the case needs a config past the CHECK only"
    response = await client.post(THEMES, json={"name": "big", "config": config})
    assert_error(response, 422, "config")
    assert rows(pg) == 0


async def test_body_over_limit_by_content_length_is_413(client: httpx.AsyncClient) -> None:
    body = b'{"name": "x", "config": {"pad": "' + b"p" * 70000 + b'"}}'
    response = await client.post(THEMES, content=body, headers=JSON_HEADERS)
    assert_error(response, 413, "body")


async def test_streamed_body_over_limit_is_413(client: httpx.AsyncClient, pg: PgCluster) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "x", "config": {"pad": "'
        for _ in range(20):
            yield b"p" * 4096
        yield b'"}}'

    # No Content-Length: the API must count the bytes as they arrive.
    response = await client.post(THEMES, content=chunks(), headers=JSON_HEADERS)
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "body")
    assert rows(pg) == 0


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", None, "application/json; charset=latin-1"],
)
async def test_non_json_content_type_is_415(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    theme_id = await existing_id(client)
    headers = {"content-type": content_type} if content_type else {}
    for method, url in (
        ("POST", THEMES),
        ("PUT", f"{THEMES}/{theme_id}"),
        ("PATCH", f"{THEMES}/{theme_id}"),
    ):
        response = await client.request(method, url, content=b'{"name":"x"}', headers=headers)
        assert_error(response, 415, "content-type")


async def test_json_with_charset_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        THEMES,
        content=b'{"name": "cs"}',
        headers={"content-type": "Application/JSON; charset=UTF-8"},
    )
    assert response.status_code == 201


@pytest.mark.parametrize("bad_id", ["0", "-1", "abc", "1.5", "9223372036854775808", "1e3", "%201"])
async def test_invalid_id_is_400(client: httpx.AsyncClient, bad_id: str) -> None:
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        response = await client.request(
            method, f"{THEMES}/{bad_id}", json={"name": "x", "config": {}}
        )
        assert_error(response, 400, "id")


async def test_largest_int64_id_is_valid_and_missing(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{THEMES}/9223372036854775807")
    assert response.status_code == 404


@pytest.mark.parametrize("limit", ["0", "101", "-5", "abc", "", "20.0", "1000000"])
async def test_limit_out_of_range_is_400(client: httpx.AsyncClient, limit: str) -> None:
    assert_error(await client.get(THEMES, params={"limit": limit}), 400, "limit")


@pytest.mark.parametrize("cursor", ["garbage!", "", "dDow", "MTIz", "dDotNQ"])
async def test_invalid_cursor_is_400(client: httpx.AsyncClient, cursor: str) -> None:
    assert_error(await client.get(THEMES, params={"cursor": cursor}), 400, "cursor")


async def test_unknown_query_parameter_is_400(client: httpx.AsyncClient) -> None:
    assert_error(await client.get(THEMES, params={"offset": "5"}), 400, "offset")


@pytest.mark.parametrize("lsn", ["banana", "0/", "/1", "0/XYZ", "1/2/3", "123456789/0"])
async def test_invalid_min_lsn_header_is_400(client: httpx.AsyncClient, lsn: str) -> None:
    response = await client.get(THEMES, headers={"x-min-lsn": lsn})
    assert_error(response, 400, "X-Min-LSN")


async def test_invalid_min_lsn_cookie_is_400_and_cleared(client: httpx.AsyncClient) -> None:
    response = await client.get(THEMES, headers={"cookie": "geoha_min_lsn=nonsense"})
    assert_error(response, 400, "geoha_min_lsn")
    assert "Max-Age=0" in response.headers["set-cookie"]


async def test_unknown_route_is_404(client: httpx.AsyncClient) -> None:
    for path in ("/nope", "/api/v1/themes/1/extra", "/api/v2/themes", "/health/"):
        response = await client.get(path)
        assert_error(response, 404, None)


async def test_wrong_method_is_405_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.delete(THEMES)
    assert_error(response, 405, None)
    assert response.headers["allow"] == "GET, POST"
    response = await client.post(f"{THEMES}/1", json={"name": "x"})
    assert_error(response, 405, None)
    assert response.headers["allow"] == "DELETE, GET, PATCH, PUT"
    response = await client.put("/health", json={})
    assert response.status_code == 405 and response.headers["allow"] == "GET"
