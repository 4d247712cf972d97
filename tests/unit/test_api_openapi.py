"""The OpenAPI document against the code that enforces it, so the two cannot drift apart.

Each limit and pattern is compared with validation.py's constants and, where
JSON Schema can say it, the document's schema and the real validation are run
over the same inputs and must agree.
"""

from __future__ import annotations

import asyncio
import base64
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import jsonschema_rs
import orjson
import pytest

from app.api import store
from app.api.config import Settings, load_settings
from app.api.errors import ApiError, not_found, unavailable
from app.api.http import MIN_LSN_COOKIE, Request, read_body, require_json
from app.api.main import GeohaApi
from app.api.openapi import (
    CURSOR_MAX_CHARS,
    CURSOR_PATTERN,
    ERROR_CODES,
    INSTANCE_ROUTES,
    PUBLIC_ROUTES,
    ROUTES,
    openapi_document,
)
from app.api.validation import (
    CONFIG_MAX_BYTES,
    CURSOR_PREFIX,
    LIMIT_DEFAULT,
    LIMIT_MAX,
    LSN_PATTERN,
    MAX_ID,
    NAME_MAX_CHARS,
    THEME_FIELDS,
    decode_cursor,
    encode_cursor,
    parse_id,
    parse_json,
    parse_limit,
    parse_list_query,
    parse_lsn,
    parse_theme,
)

DOCUMENT = openapi_document()
COMPONENTS = DOCUMENT["components"]
B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def validator(schema: dict[str, Any]) -> Any:
    """A JSON Schema validator whose `#/components/...` references resolve in the document."""
    return jsonschema_rs.validator_for({**schema, "components": COMPONENTS})


def component(name: str) -> Any:
    return validator({"$ref": f"#/components/schemas/{name}"})


def parameter(name: str) -> dict[str, Any]:
    found: dict[str, Any] = COMPONENTS["parameters"][name]
    return found


def accepts(parse: Any, *args: Any, **kwargs: Any) -> bool:
    try:
        parse(*args, **kwargs)
    except ApiError:
        return False
    return True


# -- paths -----------------------------------------------------------------


def test_the_document_lists_the_public_routes_only() -> None:
    paths = DOCUMENT["paths"]
    documented = {(m.upper(), p) for p, ops in paths.items() for m in ops if m != "parameters"}
    assert documented == set(PUBLIC_ROUTES) == set(ROUTES) - INSTANCE_ROUTES
    assert set(ROUTES) > INSTANCE_ROUTES
    assert "/health" not in paths  # the web app's path through the frontend LB


def test_servers_is_the_entry_the_document_came_from() -> None:
    assert [s["url"] for s in DOCUMENT["servers"]] == ["/"]


# -- parameters --------------------------------------------------------------


def test_id_bounds_are_the_validation_bounds() -> None:
    schema = parameter("id")["schema"]
    assert (schema["minimum"], schema["maximum"]) == (1, MAX_ID)
    check = validator(schema)
    for value in (0, 1, MAX_ID, MAX_ID + 1, -1):
        assert check.is_valid(value) == accepts(parse_id, str(value)), value


def test_limit_bounds_and_default_are_the_validation_ones() -> None:
    schema = parameter("limit")["schema"]
    assert (schema["minimum"], schema["maximum"]) == (1, LIMIT_MAX)
    assert schema["default"] == LIMIT_DEFAULT == parse_list_query(b"").limit
    check = validator(schema)
    for value in (0, 1, LIMIT_MAX, LIMIT_MAX + 1, -5):
        assert check.is_valid(value) == accepts(parse_limit, str(value)), value


@pytest.mark.parametrize("name", ["minLsn", "minLsnCookie"])
def test_lsn_parameters_use_the_validation_pattern(name: str) -> None:
    schema = parameter(name)["schema"]
    assert schema["pattern"] == LSN_PATTERN.pattern
    check = validator(schema)
    for text in ("0/16B3748", "ffffffff/0", "0/", "/1", "1/123456789", "0x1/2", "G/1"):
        assert check.is_valid(text) == accepts(parse_lsn, text, "X-Min-LSN"), text
    assert parameter("minLsnCookie")["name"] == MIN_LSN_COOKIE


def canonical_cursor(text: str) -> bool:
    """`text` is what encode_cursor() makes of some id of 1..19 digits: unpadded,
    canonical URL-safe base64 of CURSOR_PREFIX and the digits, without a leading zero."""
    if not text or len(text) % 4 == 1 or any(c not in B64_ALPHABET for c in text):
        return False
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if base64.urlsafe_b64encode(raw).decode().rstrip("=") != text:
        return False  # unused low bits set: decodes, but no encoder writes it
    digits = raw.removeprefix(CURSOR_PREFIX)
    leading_zero = digits.startswith(b"0")
    return (
        raw.startswith(CURSOR_PREFIX)
        and digits.isdigit()
        and len(digits) <= 19
        and not leading_zero
    )


def neighbours(cursor: str) -> list[str]:
    """Every one-character change, insertion at the end and truncation of `cursor`."""
    swaps = [*B64_ALPHABET, "=", "+", "/", ".", " "]
    changed = [cursor[:i] + c + cursor[i + 1 :] for i in range(len(cursor)) for c in swaps]
    return [*changed, *(cursor + c for c in swaps), cursor[:-1], cursor[:-2]]


@pytest.mark.parametrize("digits", [1, 2, 3, 4, 5, 6, 7, 17, 18, 19])
def test_cursor_pattern_is_exactly_the_encoded_cursors(digits: int) -> None:
    pattern = re.compile(CURSOR_PATTERN)
    for sample in (
        "0" * digits,
        "9" * digits,
        "1234567890123456789"[:digits],
        ("80" * 10)[:digits],
    ):
        cursor = base64.urlsafe_b64encode(CURSOR_PREFIX + sample.encode()).decode().rstrip("=")
        for text in [cursor, *neighbours(cursor)]:
            assert bool(pattern.fullmatch(text)) == canonical_cursor(text), text
            if pattern.fullmatch(text):  # the API takes it exactly when the id is in range
                value = int(base64.urlsafe_b64decode(text + "==")[len(CURSOR_PREFIX) :])
                assert accepts(decode_cursor, text) == (0 < value <= MAX_ID), text


def test_cursor_lengths_and_issued_cursors() -> None:
    schema = parameter("cursor")["schema"]
    assert schema["pattern"] == CURSOR_PATTERN
    assert schema["minLength"] == len(encode_cursor(1))
    assert schema["maxLength"] == CURSOR_MAX_CHARS == len(encode_cursor(MAX_ID))
    check = validator(schema)
    for last_id in (1, 9, 10, 99, 100, 12345, 2**31, MAX_ID):
        assert check.is_valid(encode_cursor(last_id)), last_id
    page = COMPONENTS["schemas"]["ThemePage"]["properties"]
    assert page["items"]["maxItems"] == LIMIT_MAX
    assert {"type": "string", "pattern": CURSOR_PATTERN} in page["next_cursor"]["anyOf"]


# -- bodies ----------------------------------------------------------------

BODIES: list[Any] = [
    {"name": "a"},
    {"name": "a" * NAME_MAX_CHARS},
    {"name": "é" * NAME_MAX_CHARS},  # characters, not bytes
    {"name": "a" * (NAME_MAX_CHARS + 1)},
    {"name": ""},
    {"name": "a\x00b"},
    {"name": 1},
    {"name": None},
    {"name": ["x"]},
    {"name": "x", "config": {}},
    {"name": "x", "config": {"accent": "#123", "n": [1, 2.5, None, True, {"k": "v"}]}},
    {"name": "x", "config": {"a": {"b": {"c": ["d", {"e": "deep"}]}}}},
    {"name": "x", "config": {"k\x00": 1}},
    {"name": "x", "config": {"a": ["b\x00"]}},
    {"name": "x", "config": {"a": {"b": "\x00"}}},
    {"name": "x", "config": []},
    {"name": "x", "config": "{}"},
    {"name": "x", "config": None},
    {"name": "x", "colour": "red"},
    {"config": {}},
    {"config": {"a": 1}},
    {},
    [],
    "theme",
    None,
]


@pytest.mark.parametrize(
    ("schema", "partial", "config_required"),
    [("ThemeCreate", False, False), ("ThemeReplace", False, True), ("ThemePatch", True, False)],
)
def test_body_schemas_accept_what_the_api_accepts(
    schema: str, partial: bool, config_required: bool
) -> None:
    check = component(schema)
    for body in BODIES:
        api = accepts(
            parse_theme, orjson.dumps(body), partial=partial, config_required=config_required
        )
        assert check.is_valid(body) == api, (schema, body)


def test_body_schemas_name_the_theme_fields() -> None:
    schemas = COMPONENTS["schemas"]
    for name in ("ThemeCreate", "ThemeReplace", "ThemePatch"):
        assert set(schemas[name]["properties"]) == THEME_FIELDS
        assert schemas[name]["additionalProperties"] is False
    assert schemas["ThemeName"]["maxLength"] == NAME_MAX_CHARS
    # JSON Schema cannot measure a serialized size: the description states it.
    assert str(CONFIG_MAX_BYTES) in schemas["ThemeConfig"]["description"]
    too_big = orjson.dumps({"name": "x", "config": {"a": "x" * CONFIG_MAX_BYTES}})
    assert not accepts(parse_theme, too_big, partial=False, config_required=False)


def test_a_stored_theme_matches_the_theme_schema() -> None:
    stamp = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    row = (MAX_ID, "é" * NAME_MAX_CHARS, '{"a": [1, {"b": null}]}', stamp, stamp)
    theme = orjson.loads(orjson.dumps(store.theme_json(row)))  # type: ignore[arg-type]
    assert component("Theme").is_valid(theme)
    assert set(theme) == set(COMPONENTS["schemas"]["Theme"]["required"])


# -- errors ------------------------------------------------------------------

DSN = "postgresql://u@127.0.0.1:9/db?connect_timeout=1"


def settings() -> Settings:
    return load_settings(
        {
            "GEOHA_REGION": "delhi",
            "GEOHA_INSTANCE": "delhi-api-1",
            "GEOHA_WRITE_DSN": DSN + "&target_session_attrs=read-write",
            "GEOHA_READ_DSN": DSN,
        }
    )


def raised(action: Any) -> tuple[int, str]:
    with pytest.raises(ApiError) as exc:
        action()
    return exc.value.status, exc.value.code


def body_error(headers: dict[bytes, bytes], body: bytes, limit: int) -> tuple[int, str]:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    request = Request("POST", "/api/v1/themes", b"", headers, receive)
    return raised(lambda: asyncio.run(read_body(request, limit)))


def starting_error() -> tuple[int, str]:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=GeohaApi(settings))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/api/v1/themes")

    response = asyncio.run(call())
    return response.status_code, response.json()["error"]["code"]


def test_error_codes_are_the_ones_the_api_answers_with() -> None:
    produced = {
        raised(lambda: parse_id("x")),
        raised(lambda: parse_json(b"{")),
        body_error({b"content-length": b"abc"}, b"{}", 1024),
        body_error({}, b"x" * 2000, 1024),
        raised(lambda: require_json(Request("POST", "/", b"", {}, None))),  # type: ignore[arg-type]
        raised(lambda: parse_theme(b"[]", partial=False, config_required=False)),
        (not_found().status, not_found().code),
        (unavailable("x").status, unavailable("x").code),
        starting_error(),
    }
    documented = {(status, code) for status, codes in ERROR_CODES.items() for code in codes}
    assert produced == documented


def test_every_error_response_has_its_codes_and_json() -> None:
    responses = COMPONENTS["responses"]
    assert set(responses) == {f"Error{status}" for status in ERROR_CODES}
    for status, codes in ERROR_CODES.items():
        answer = responses[f"Error{status}"]
        assert list(answer["content"]) == ["application/json"]
        schema = answer["content"]["application/json"]["schema"]
        assert schema["properties"]["error"]["properties"]["code"] == {"enum": list(codes)}
        assert answer["headers"]["X-Served-By"]["required"] is True
        assert ("Retry-After" in answer["headers"]) == (status == 503)
        assert ("X-DB-Role" in answer["headers"]) == (status == 404)  # "no such theme"


def test_every_operation_documents_json_errors_it_can_answer() -> None:
    writes_a_body = {"post", "put", "patch"}
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            if method == "parameters" or not path.startswith("/api/v1/themes"):
                continue
            statuses = set(operation["responses"])
            assert {"400", "503"} <= statuses, (method, path)
            if method in writes_a_body:
                assert {"413", "415", "422"} <= statuses, (method, path)
            if "{id}" in path:
                assert "404" in statuses, (method, path)
