"""The themes table: its SQL (parameterized only) and how a row becomes JSON.

`config` travels as JSON text both ways (asyncpg's default for jsonb), and is
embedded into responses with `orjson.Fragment`, never parsed again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson

from app.api.db import Conn, Op
from app.api.validation import ThemeInput

COLUMNS = "id, name, config, created_at, updated_at"
GET_SQL = f"SELECT {COLUMNS} FROM themes WHERE id = $1"
FIRST_PAGE_SQL = f"SELECT {COLUMNS} FROM themes ORDER BY id DESC LIMIT $1"
NEXT_PAGE_SQL = f"SELECT {COLUMNS} FROM themes WHERE id < $1 ORDER BY id DESC LIMIT $2"
CREATE_SQL = f"INSERT INTO themes (name, config) VALUES ($1, $2::jsonb) RETURNING {COLUMNS}"
REPLACE_SQL = (
    "UPDATE themes SET name = $2, config = $3::jsonb, updated_at = now() "
    f"WHERE id = $1 RETURNING {COLUMNS}"
)
PATCH_SQL = (
    "UPDATE themes SET name = coalesce($2, name), config = coalesce($3::jsonb, config), "
    f"updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
)
DELETE_SQL = "DELETE FROM themes WHERE id = $1 RETURNING id"
Row = asyncpg.Record


def theme_json(row: Row) -> dict[str, Any]:
    """A theme as the API shows it (timestamps become ISO-8601 via orjson)."""
    return {
        "id": row[0],
        "name": row[1],
        "config": orjson.Fragment(row[2]),
        "created_at": row[3],
        "updated_at": row[4],
    }


def get_theme(theme_id: int) -> Op[Row | None]:
    async def op(conn: Conn) -> Row | None:
        return await conn.fetchrow(GET_SQL, theme_id)

    return op


def list_themes(limit: int, before_id: int | None) -> Op[Sequence[Row]]:
    """One more row than asked for, so the caller knows whether a next page exists."""

    async def op(conn: Conn) -> Sequence[Row]:
        if before_id is None:
            return await conn.fetch(FIRST_PAGE_SQL, limit + 1)
        return await conn.fetch(NEXT_PAGE_SQL, before_id, limit + 1)

    return op


def create_theme(theme: ThemeInput) -> Op[Row | None]:
    async def op(conn: Conn) -> Row | None:
        return await conn.fetchrow(CREATE_SQL, theme.name, theme.config_json or "{}")

    return op


def replace_theme(theme_id: int, theme: ThemeInput) -> Op[Row | None]:
    async def op(conn: Conn) -> Row | None:
        return await conn.fetchrow(REPLACE_SQL, theme_id, theme.name, theme.config_json)

    return op


def patch_theme(theme_id: int, theme: ThemeInput) -> Op[Row | None]:
    async def op(conn: Conn) -> Row | None:
        return await conn.fetchrow(PATCH_SQL, theme_id, theme.name, theme.config_json)

    return op


def delete_theme(theme_id: int) -> Op[bool]:
    async def op(conn: Conn) -> bool:
        return await conn.fetchval(DELETE_SQL, theme_id) is not None

    return op
