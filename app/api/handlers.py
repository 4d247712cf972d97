"""Endpoint handlers: validate, call the database through `Database`, shape the answer."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import orjson

from app.api import store
from app.api.asgi import Headers
from app.api.config import Settings
from app.api.db import Answer, Database, Op
from app.api.errors import ApiError, bad_request, not_found, unavailable, unprocessable
from app.api.gate import PauseState
from app.api.http import (
    MIN_LSN_COOKIE,
    Request,
    Response,
    json_response,
    read_body,
    require_json,
)
from app.api.openapi import openapi_json
from app.api.validation import (
    encode_cursor,
    parse_hold,
    parse_id,
    parse_list_query,
    parse_lsn,
    parse_theme,
)
from app.api.vantage import Vantage

T = TypeVar("T")
Handler = Callable[[Request, dict[str, str]], Awaitable[Response]]
THEMES_PATH = "/api/v1/themes"
CONSTRAINT_FIELDS = {"themes_name_check": "name", "themes_config_check": "config"}


def _role_header(answer: Answer[object]) -> Headers:
    return [(b"x-db-role", answer.role.value.encode())]


def _commit_headers(answer: Answer[object]) -> Headers:
    headers = _role_header(answer)
    if answer.lsn is not None:
        lsn = answer.lsn.encode()
        headers.append((b"x-commit-lsn", lsn))
        headers.append(
            (
                b"set-cookie",
                b"%s=%s; Path=/; SameSite=Lax; HttpOnly" % (MIN_LSN_COOKIE.encode(), lsn),
            )
        )
    return headers


def min_lsn_of(request: Request) -> str | None:
    """The read-your-writes token: `X-Min-LSN` header, else the cookie."""
    header = request.header(b"x-min-lsn")
    if header is not None:
        return parse_lsn(header.strip(), "X-Min-LSN")
    cookie = request.cookie(MIN_LSN_COOKIE)
    if cookie is None:
        return None
    try:
        return parse_lsn(cookie, MIN_LSN_COOKIE)
    except ApiError as exc:  # clear a bad cookie so the browser recovers
        exc.headers.append((b"set-cookie", f"{MIN_LSN_COOKIE}=; Path=/; Max-Age=0".encode()))
        raise


class Handlers:
    """The API's endpoints; one method per route and method."""

    def __init__(self, settings: Settings, db: Database, vantage: Vantage | None = None) -> None:
        self._settings = settings
        self._db = db
        self._vantage = vantage
        self._health_body = orjson.dumps(
            {"status": "ok", "region": settings.region, "instance": settings.instance}
        )

    async def health(self, _request: Request, _params: dict[str, str]) -> Response:
        return Response(200, self._health_body)

    async def health_deep(self, _request: Request, _params: dict[str, str]) -> Response:
        try:
            role = await self._db.local_node()
        except ApiError as exc:
            return json_response(
                503, {"status": "unavailable", "error": exc.message}, [(b"retry-after", b"2")]
            )
        body = {"status": "ok", "database": {"role": role.value}}
        return json_response(200, body, [(b"x-db-role", role.value.encode())])

    async def health_vantage(self, _request: Request, _params: dict[str, str]) -> Response:
        """This instance's latest view of every database node (vantage.py): for geoha's
        fast failover, which declares a primary dead only when no region reaches it."""
        nodes = {} if self._vantage is None else self._vantage.report()
        body = {"region": self._settings.region, "instance": self._settings.instance}
        return json_response(200, {**body, "nodes": nodes}, [(b"cache-control", b"no-store")])

    async def openapi(self, _request: Request, _params: dict[str, str]) -> Response:
        return Response(200, openapi_json())

    async def pause_writes(self, request: Request, _params: dict[str, str]) -> Response:
        """Instance-only: hold new writes for `?hold_s=` seconds (default 5) and answer
        once the running ones have ended; geoha's switchover calls it (gate.py)."""
        self._authorize(request)
        hold_s = parse_hold(request.query_string)
        state = await self._db.pause_writes(hold_s)
        return self._pause_response(state, hold_s)

    async def resume_writes(self, request: Request, _params: dict[str, str]) -> Response:
        """Instance-only: release the writes held by `pause_writes`."""
        self._authorize(request)
        if request.query_string:
            raise bad_request(None, "resume takes no query parameters")
        return self._pause_response(await self._db.resume_writes(), None)

    def _pause_response(self, state: PauseState, hold_s: float | None) -> Response:
        body = {
            "instance": self._settings.served_by,
            "paused": state.paused,
            "hold_s": hold_s,
            "in_flight": state.in_flight,
            "held": state.held,
        }
        return json_response(200, body, [(b"cache-control", b"no-store")])

    def _authorize(self, request: Request) -> None:
        token = self._settings.admin_token
        if token is None:
            raise not_found("the admin routes are off on this instance (no GEOHA_ADMIN_TOKEN_FILE)")
        scheme, _, given = (request.header(b"authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            raise ApiError(
                401,
                "unauthorized",
                "an Authorization: Bearer header with the instance's admin token is required",
                "authorization",
                headers=[(b"www-authenticate", b"Bearer")],
            )

    async def list_themes(self, request: Request, _params: dict[str, str]) -> Response:
        query = parse_list_query(request.query_string)
        answer = await self._db.read(
            store.list_themes(query.limit, query.before_id), min_lsn_of(request)
        )
        rows = answer.value[: query.limit]
        more = len(answer.value) > query.limit
        body = {
            "items": [store.theme_json(row) for row in rows],
            "next_cursor": encode_cursor(rows[-1][0]) if more else None,
        }
        return json_response(200, body, _role_header(answer))

    async def get_theme(self, request: Request, params: dict[str, str]) -> Response:
        theme_id = parse_id(params["id"])
        answer = await self._db.read(store.get_theme(theme_id), min_lsn_of(request))
        if answer.value is None:
            raise not_found(f"theme {theme_id} does not exist", _role_header(answer))
        return json_response(200, store.theme_json(answer.value), _role_header(answer))

    async def _body(self, request: Request) -> bytes:
        require_json(request)
        return await read_body(request, self._settings.max_body_bytes)

    async def create_theme(self, request: Request, _params: dict[str, str]) -> Response:
        theme = parse_theme(await self._body(request), partial=False, config_required=False)
        answer = await self._write(store.create_theme(theme))
        if answer.value is None:
            raise unavailable("the insert returned no row")
        headers = _commit_headers(answer)
        headers.append((b"location", f"{THEMES_PATH}/{answer.value[0]}".encode()))
        return json_response(201, store.theme_json(answer.value), headers)

    async def replace_theme(self, request: Request, params: dict[str, str]) -> Response:
        theme_id = parse_id(params["id"])
        theme = parse_theme(await self._body(request), partial=False, config_required=True)
        return await self._updated(
            theme_id, await self._write(store.replace_theme(theme_id, theme))
        )

    async def patch_theme(self, request: Request, params: dict[str, str]) -> Response:
        theme_id = parse_id(params["id"])
        theme = parse_theme(await self._body(request), partial=True, config_required=False)
        return await self._updated(theme_id, await self._write(store.patch_theme(theme_id, theme)))

    async def _updated(self, theme_id: int, answer: Answer[store.Row | None]) -> Response:
        if answer.value is None:
            raise not_found(f"theme {theme_id} does not exist", _role_header(answer))
        return json_response(200, store.theme_json(answer.value), _commit_headers(answer))

    async def delete_theme(self, _request: Request, params: dict[str, str]) -> Response:
        theme_id = parse_id(params["id"])
        answer = await self._write(store.delete_theme(theme_id))
        if not answer.value:
            raise not_found(f"theme {theme_id} does not exist", _role_header(answer))
        return Response(204, b"", _commit_headers(answer), content_type=None)

    async def _write(self, op: Op[T]) -> Answer[T]:
        """A write; constraint and data errors become 422 naming the field."""
        try:
            return await self._db.write(op)
        except asyncpg.exceptions.CheckViolationError as exc:
            field = CONSTRAINT_FIELDS.get(exc.constraint_name or "")
            raise unprocessable(field, f"rejected by the database: {exc}") from None
        except asyncpg.exceptions.ProgramLimitExceededError as exc:  # e.g. nesting too deep
            raise unprocessable("config", f"rejected by the database: {exc}") from None
        except asyncpg.exceptions.DataError as exc:
            raise unprocessable(None, f"rejected by the database: {exc}") from None
