"""The OpenAPI 3.1 description of the API, written by hand and served as-is.

`ROUTES` is the single list of (method, path) pairs: main.py routes exactly
these, and a unit test checks every one appears in the document.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson

from app.api.validation import CONFIG_MAX_BYTES, LIMIT_DEFAULT, LIMIT_MAX, NAME_MAX_CHARS

ROUTES: tuple[tuple[str, str], ...] = (
    ("GET", "/health"),
    ("GET", "/health/deep"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/themes"),
    ("POST", "/api/v1/themes"),
    ("GET", "/api/v1/themes/{id}"),
    ("PUT", "/api/v1/themes/{id}"),
    ("PATCH", "/api/v1/themes/{id}"),
    ("DELETE", "/api/v1/themes/{id}"),
)

JSON_REF = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON_REF: {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        400: "bad parameter, header or malformed JSON (field named)",
        404: "no such theme",
        413: "body larger than GEOHA_MAX_BODY_BYTES",
        415: "Content-Type is not application/json",
        422: "body fails validation (field named)",
        503: "database unavailable; retry after Retry-After seconds",
    }
    return {str(s): _json(_ref("Error"), text[s]) for s in statuses}


def _schemas() -> dict[str, Any]:
    name = {"type": "string", "minLength": 1, "maxLength": NAME_MAX_CHARS}
    config = {"type": "object", "description": f"any JSON object, at most {CONFIG_MAX_BYTES} bytes"}
    stamp = {"type": "string", "format": "date-time"}
    return {
        "Theme": {
            "type": "object",
            "required": ["id", "name", "config", "created_at", "updated_at"],
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "name": name,
                "config": config,
                "created_at": stamp,
                "updated_at": stamp,
            },
        },
        "ThemeCreate": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {"name": name, "config": config},
        },
        "ThemeReplace": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "config"],
            "properties": {"name": name, "config": config},
        },
        "ThemePatch": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": {"name": name, "config": config},
        },
        "ThemePage": {
            "type": "object",
            "required": ["items", "next_cursor"],
            "properties": {
                "items": {"type": "array", "items": _ref("Theme")},
                "next_cursor": {"type": ["string", "null"]},
            },
        },
        "Error": _error_schema(),
    }


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "field", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "field": {"type": ["string", "null"]},
                    "message": {"type": "string"},
                },
            }
        },
    }


def _parameters() -> dict[str, Any]:
    return {
        "id": {
            "name": "id",
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
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
        },
        "cursor": {
            "name": "cursor",
            "in": "query",
            "schema": {"type": "string"},
            "description": "opaque; the next_cursor of the previous page",
        },
        "minLsn": {
            "name": "X-Min-LSN",
            "in": "header",
            "schema": {"type": "string"},
            "description": "read-your-writes: a previous X-Commit-LSN "
            "(the geoha_min_lsn cookie works too)",
        },
    }


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {JSON_REF: {"schema": _ref(schema)}}}


def _write_ok(status: str, description: str, with_body: bool = True) -> dict[str, Any]:
    headers = {
        "X-Commit-LSN": {
            "schema": {"type": "string"},
            "description": "WAL position after commit; send back as X-Min-LSN",
        }
    }
    answer = _json(_ref("Theme"), description) if with_body else {"description": description}
    return {status: {**answer, "headers": headers}}


def _param(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/parameters/{name}"}


def _service_paths() -> dict[str, Any]:
    health = {"type": "object"}
    return {
        "/health": {
            "get": {
                "summary": "liveness (no database)",
                "responses": {"200": _json(health, "alive")},
            }
        },
        "/health/deep": {
            "get": {
                "summary": "reads from the local database node",
                "responses": {
                    "200": _json(health, "database answers"),
                    "503": _json(health, "database unavailable"),
                },
            }
        },
        "/api/v1/openapi.json": {
            "get": {
                "summary": "this document",
                "responses": {"200": _json({"type": "object"}, "OpenAPI")},
            }
        },
    }


def _theme_paths() -> dict[str, Any]:
    p = {k: _param(k) for k in ("id", "limit", "cursor", "minLsn")}
    return {
        "/api/v1/themes": {
            "get": {
                "summary": "list themes, newest first",
                "parameters": [p["limit"], p["cursor"], p["minLsn"]],
                "responses": {"200": _json(_ref("ThemePage"), "a page"), **_errors(400, 503)},
            },
            "post": {
                "summary": "create a theme",
                "requestBody": _body("ThemeCreate"),
                "responses": {
                    **_write_ok("201", "created (Location header)"),
                    **_errors(400, 413, 415, 422, 503),
                },
            },
        },
        "/api/v1/themes/{id}": _theme_item_path(p),
    }


def _theme_item_path(p: dict[str, dict[str, str]]) -> dict[str, Any]:
    return {
        "parameters": [p["id"]],
        "get": {
            "summary": "one theme",
            "parameters": [p["minLsn"]],
            "responses": {"200": _json(_ref("Theme"), "the theme"), **_errors(400, 404, 503)},
        },
        "put": {
            "summary": "replace name and config",
            "requestBody": _body("ThemeReplace"),
            "responses": {
                **_write_ok("200", "updated"),
                **_errors(400, 404, 413, 415, 422, 503),
            },
        },
        "patch": {
            "summary": "change name and/or config",
            "requestBody": _body("ThemePatch"),
            "responses": {
                **_write_ok("200", "updated"),
                **_errors(400, 404, 413, 415, 422, 503),
            },
        },
        "delete": {
            "summary": "delete a theme",
            "responses": {
                **_write_ok("204", "deleted", with_body=False),
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
            "description": "Themes CRUD. Every response carries X-Served-By; responses "
            "that touched the database carry X-DB-Role.",
        },
        "paths": {**_service_paths(), **_theme_paths()},
        "components": {"schemas": _schemas(), "parameters": _parameters()},
    }


@cache
def openapi_json() -> bytes:
    return orjson.dumps(openapi_document())
