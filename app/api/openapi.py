"""The OpenAPI 3.1 description of the API's public entry, written by hand and served as-is.

`ROUTES` is the single list of (method, path) pairs: main.py routes exactly
these. The document describes what a client reaches through the deployment's
entry, where a region's frontend LB sends `/api/*` and `/health/deep` to the
API and everything else to the web tier: so `INSTANCE_ROUTES` (an instance's
own liveness path, which its load balancers probe) are routed but left out of
the document, and docs/API.md lists them instead.

Every limit, pattern and error code below is read from validation.py or
written next to the code that enforces it; tests/unit/test_api_openapi.py
checks the document against that code, and the scenario test
tests/scenario/test_openapi_conformance.py fuzzes a running deployment from it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson

from app.api.http import MIN_LSN_COOKIE
from app.api.validation import (
    CONFIG_MAX_BYTES,
    LIMIT_DEFAULT,
    LIMIT_MAX,
    LSN_PATTERN,
    MAX_ID,
    NAME_MAX_CHARS,
)

ROUTES: tuple[tuple[str, str], ...] = (
    ("GET", "/health"),
    ("GET", "/health/deep"),
    ("GET", "/health/vantage"),
    ("POST", "/admin/writes/pause"),
    ("POST", "/admin/writes/resume"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/themes"),
    ("POST", "/api/v1/themes"),
    ("GET", "/api/v1/themes/{id}"),
    ("PUT", "/api/v1/themes/{id}"),
    ("PATCH", "/api/v1/themes/{id}"),
    ("DELETE", "/api/v1/themes/{id}"),
)
INSTANCE_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/health"),
        ("GET", "/health/vantage"),
        ("POST", "/admin/writes/pause"),
        ("POST", "/admin/writes/resume"),
    }
)
PUBLIC_ROUTES: tuple[tuple[str, str], ...] = tuple(r for r in ROUTES if r not in INSTANCE_ROUTES)

JSON = "application/json"
NO_NUL = "^[^\\u0000]*$"
"""A JSON Schema (ECMA-262) pattern: no NUL character (PostgreSQL text and jsonb refuse it)."""

# Every `error.code` the public entry answers with, by status (errors.py, http.py, main.py,
# db.py); the instance-only admin routes add 401 `unauthorized` (docs/API.md).
ERROR_CODES: dict[int, tuple[str, ...]] = {
    400: ("invalid_parameter", "malformed_json", "invalid_header"),
    404: ("not_found",),
    413: ("body_too_large",),
    415: ("unsupported_media_type",),
    422: ("validation_failed",),
    503: ("database_unavailable", "starting"),
}
ERROR_TEXT: dict[int, str] = {
    400: "bad id, query parameter, X-Min-LSN, geoha_min_lsn cookie or Content-Length, "
    "or malformed JSON; `field` names it (null for malformed JSON)",
    404: "no such theme",
    413: "body larger than the instance's GEOHA_MAX_BODY_BYTES (`field` is body)",
    415: "Content-Type is not application/json (a charset, if given, must be UTF-8)",
    422: "the body fails validation; `field` names it (null when the body is not an object "
    "or a PATCH gives no field)",
    503: "no database node could answer in time, or the instance is still starting; "
    "retry after Retry-After seconds",
}

# A cursor is what validation.encode_cursor() writes: URL-safe base64, unpadded, of
# CURSOR_PREFIX (b"t:") and the page's last id, 1..19 decimal digits without a leading
# zero. Base64 takes 3 bytes into 4 characters, so "t:" and the first digit make "dDo"
# and one character, each further 3 digits make 4, and 1 or 2 digits left over make 2
# or 3 (their unused low bits zero). The one rule a pattern leaves out is the id's
# upper bound (2^63-1): a 19-digit id above it is 400.
_FIRST = "dDo[x-z0-5]"
_HIGH = "(?:[MN][DTjz]|O[DT])"  # a digit's high bits: 8 and 9 allow fewer low ones
_THREE = f"{_HIGH}[AEIMQUYcgk][w-z0-5]"
_REST = f"(?:(?:{_THREE}){{0,6}}|(?:{_THREE}){{0,5}}(?:[MN][AQgw]|O[AQ]|{_HIGH}[AEIMQUYcgk]))"
CURSOR_PATTERN = f"^{_FIRST}{_REST}$"
CURSOR_MAX_CHARS = 28  # base64 of 2 + 19 bytes, unpadded


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _schema(name: str) -> dict[str, str]:
    return _ref("schemas", name)


def _header_table() -> dict[str, tuple[dict[str, Any], str]]:
    """Each response header the API sets: its schema and what it says."""
    return {
        "X-Served-By": (
            {"type": "string", "pattern": "^[a-z0-9-]{1,63}/.+$"},
            "region/instance of the API instance that answered (every response)",
        ),
        "X-DB-Role": (
            {"enum": ["primary", "replica"]},
            "the role of the database node that answered",
        ),
        "X-Commit-LSN": (
            {"type": "string", "pattern": LSN_PATTERN.pattern},
            "the commit's WAL position; send it back as X-Min-LSN (absent in the rare case "
            "the committed write's position could not be read)",
        ),
        "Set-Cookie": (
            {"type": "string"},
            f"{MIN_LSN_COOKIE}=<X-Commit-LSN>; Path=/; SameSite=Lax; HttpOnly",
        ),
        "Location": (
            {"type": "string", "pattern": "^/api/v1/themes/[1-9][0-9]{0,18}$"},
            "the new theme's path",
        ),
        "Retry-After": ({"type": "integer", "minimum": 1}, "seconds"),
    }


# Headers a response has whenever the table lists them for it; the others may be absent.
ALWAYS_SENT = frozenset({"X-Served-By", "X-DB-Role", "Location", "Retry-After"})


def _answer(description: str, schema: dict[str, Any] | None, *headers: str) -> dict[str, Any]:
    """A response: its JSON body (if any) and headers, X-Served-By always among them."""
    table = _header_table()
    answer: dict[str, Any] = {"description": description, "headers": {}}
    for name in ("X-Served-By", *headers):
        header_schema, text = table[name]
        header = {"schema": header_schema, "description": text}
        answer["headers"][name] = {"required": True, **header} if name in ALWAYS_SENT else header
    if schema is not None:
        answer["content"] = {JSON: {"schema": schema}}
    return answer


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): _ref("responses", f"Error{s}") for s in statuses}


def _error_schema(status: int) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "additionalProperties": False,
                "required": ["code", "field", "message"],
                "properties": {
                    "code": {"enum": list(ERROR_CODES[status])},
                    "field": {"type": ["string", "null"]},
                    "message": {"type": "string"},
                },
            }
        },
    }


def _error_responses() -> dict[str, Any]:
    # A 404 here is "no such theme", found out from a database node that says its role.
    headers = {404: ("X-DB-Role",), 503: ("Retry-After",)}
    return {
        f"Error{status}": _answer(text, _error_schema(status), *headers.get(status, ()))
        for status, text in ERROR_TEXT.items()
    }


def _theme_schemas() -> dict[str, Any]:
    name = _schema("ThemeName")
    config = _schema("ThemeConfig")
    stamp = {"type": "string", "format": "date-time"}
    fields = {"name": name, "config": config}
    return {
        "ThemeName": {
            "type": "string",
            "minLength": 1,
            "maxLength": NAME_MAX_CHARS,
            "pattern": NO_NUL,
            "description": f"1..{NAME_MAX_CHARS} characters, no NUL",
        },
        "ThemeConfig": {
            "type": "object",
            "propertyNames": {"pattern": NO_NUL},
            "additionalProperties": _schema("JsonValue"),
            "description": f"any JSON object without NUL in its strings or keys, at most "
            f"{CONFIG_MAX_BYTES} bytes as compact JSON and as stored (jsonb); larger is 422. "
            "A number beyond a double's range makes the body malformed JSON (400).",
        },
        "JsonValue": {
            "anyOf": [
                {"type": ["null", "boolean", "number"]},
                {"type": "string", "pattern": NO_NUL},
                {"type": "array", "items": _schema("JsonValue")},
                config,
            ]
        },
        "Theme": {
            "type": "object",
            "additionalProperties": False,
            "required": ["id", "name", "config", "created_at", "updated_at"],
            "properties": {
                "id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                **fields,
                "created_at": stamp,
                "updated_at": stamp,
            },
        },
        "ThemeCreate": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": fields,
            "description": "config defaults to {}",
        },
        "ThemeReplace": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "config"],
            "properties": fields,
        },
        "ThemePatch": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": fields,
            "description": "a given field replaces the stored one (no deep merge)",
        },
        "ThemePage": {
            "type": "object",
            "additionalProperties": False,
            "required": ["items", "next_cursor"],
            "properties": {
                "items": {"type": "array", "maxItems": LIMIT_MAX, "items": _schema("Theme")},
                "next_cursor": {
                    "anyOf": [{"type": "null"}, {"type": "string", "pattern": CURSOR_PATTERN}]
                },
            },
        },
    }


def _health_schemas() -> dict[str, Any]:
    return {
        "HealthDeep": {
            "type": "object",
            "additionalProperties": False,
            "required": ["status", "database"],
            "properties": {
                "status": {"const": "ok"},
                "database": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["role"],
                    "properties": {"role": {"enum": ["primary", "replica"]}},
                },
            },
        },
        "HealthDeepUnavailable": {
            "type": "object",
            "additionalProperties": False,
            "required": ["status", "error"],
            "properties": {"status": {"const": "unavailable"}, "error": {"type": "string"}},
        },
    }


def _parameters() -> dict[str, Any]:
    lsn = {"type": "string", "pattern": LSN_PATTERN.pattern}
    return {
        "id": {
            "name": "id",
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID},
            "description": "plain decimal digits; anything else is 400",
        },
        "limit": {
            "name": "limit",
            "in": "query",
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": LIMIT_MAX,
                "default": LIMIT_DEFAULT,
            },
            "description": "given at most once; any other query parameter is 400",
        },
        "cursor": {
            "name": "cursor",
            "in": "query",
            "schema": {
                "type": "string",
                "minLength": 4,
                "maxLength": CURSOR_MAX_CHARS,
                "pattern": CURSOR_PATTERN,
            },
            "description": "opaque: the next_cursor of the previous page; one this API "
            "could not have issued is 400",
        },
        "minLsn": {
            "name": "X-Min-LSN",
            "in": "header",
            "schema": lsn,
            "description": "read-your-writes: a previous X-Commit-LSN; the answer waits for "
            "the read node to replay it (then reads from the primary)",
        },
        "minLsnCookie": {
            "name": MIN_LSN_COOKIE,
            "in": "cookie",
            "schema": lsn,
            "description": "as X-Min-LSN, and read only when that header is absent; a bad "
            "one is 400 and the answer clears it",
        },
    }


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": _schema(schema)}}}


def _param(name: str) -> dict[str, str]:
    return _ref("parameters", name)


def _written(status: str, description: str, with_body: bool = True) -> dict[str, Any]:
    schema = _schema("Theme") if with_body else None
    headers = ["X-DB-Role", "X-Commit-LSN", "Set-Cookie"]
    if status == "201":
        headers.append("Location")
    return {status: _answer(description, schema, *headers)}


def _service_paths() -> dict[str, Any]:
    return {
        "/health/deep": {
            "get": {
                "summary": "the region's own database node answers",
                "description": "read through the read pool; 503 unless the local node "
                "(the read URI's first host) answered",
                "responses": {
                    "200": _answer("database answers", _schema("HealthDeep"), "X-DB-Role"),
                    "503": _answer(
                        "the local database node does not answer",
                        _schema("HealthDeepUnavailable"),
                        "Retry-After",
                    ),
                },
            }
        },
        "/api/v1/openapi.json": {
            "get": {
                "summary": "this document",
                "responses": {
                    "200": _answer(
                        "OpenAPI 3.1",
                        {"type": "object", "required": ["openapi", "info", "paths"]},
                    )
                },
            }
        },
    }


def _theme_paths() -> dict[str, Any]:
    reads = [_param("minLsn"), _param("minLsnCookie")]
    return {
        "/api/v1/themes": {
            "get": {
                "summary": "list themes, newest first",
                "parameters": [_param("limit"), _param("cursor"), *reads],
                "responses": {
                    "200": _answer("a page", _schema("ThemePage"), "X-DB-Role"),
                    **_errors(400, 503),
                },
            },
            "post": {
                "summary": "create a theme",
                "requestBody": _body("ThemeCreate"),
                "responses": {
                    **_written("201", "created"),
                    **_errors(400, 413, 415, 422, 503),
                },
            },
        },
        "/api/v1/themes/{id}": _theme_item_path(reads),
    }


def _theme_item_path(reads: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "parameters": [_param("id")],
        "get": {
            "summary": "one theme",
            "parameters": reads,
            "responses": {
                "200": _answer("the theme", _schema("Theme"), "X-DB-Role"),
                **_errors(400, 404, 503),
            },
        },
        "put": {
            "summary": "replace name and config",
            "requestBody": _body("ThemeReplace"),
            "responses": {
                **_written("200", "updated"),
                **_errors(400, 404, 413, 415, 422, 503),
            },
        },
        "patch": {
            "summary": "change name and/or config",
            "requestBody": _body("ThemePatch"),
            "responses": {
                **_written("200", "updated"),
                **_errors(400, 404, 413, 415, 422, 503),
            },
        },
        "delete": {
            "summary": "delete a theme",
            "responses": {
                **_written("204", "deleted", with_body=False),
                **_errors(400, 404, 503),
            },
        },
    }


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "geoha reference API",
            "version": "1.0.0",
            "description": "Themes CRUD, as reached through the deployment's entry (a "
            "region's frontend LB), which sends /api/* and /health/deep to the API. Each "
            "instance also answers GET /health (liveness, no database) on its own address "
            "only; through the entry that path is the web app. HEAD works wherever GET does; "
            "OPTIONS answers 204 with Allow, or a CORS preflight.",
        },
        "servers": [{"url": "/", "description": "where this document was fetched from"}],
        "paths": {**_service_paths(), **_theme_paths()},
        "components": {
            "schemas": {**_theme_schemas(), **_health_schemas()},
            "parameters": _parameters(),
            "responses": _error_responses(),
        },
    }


@cache
def openapi_json() -> bytes:
    return orjson.dumps(openapi_document())
