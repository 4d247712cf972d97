"""The ASGI application: lifespan (pools), routing, error rendering, common headers.

`app` reads its settings from the environment at lifespan startup, so importing
this module never touches the database or fails on configuration.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from app.api.asgi import Headers, Receive, Scope, Send
from app.api.config import ConfigError, Settings, load_settings
from app.api.cors import CorsPolicy
from app.api.db import Database
from app.api.errors import ApiError
from app.api.fence import DcsFence
from app.api.handlers import Handler, Handlers
from app.api.http import (
    ClientDisconnected,
    Request,
    Response,
    discard_body,
    error_response,
    send_response,
)
from app.api.openapi import ROUTES
from app.api.routing import Router
from app.api.vantage import Vantage

log = logging.getLogger("geoha.api")


def build_router(h: Handlers) -> Router[Handler]:
    """Bind every route in openapi.ROUTES to its handler (and nothing else)."""
    table: dict[tuple[str, str], Handler] = {
        ("GET", "/health"): h.health,
        ("GET", "/health/deep"): h.health_deep,
        ("GET", "/health/vantage"): h.health_vantage,
        ("POST", "/admin/writes/pause"): h.pause_writes,
        ("POST", "/admin/writes/resume"): h.resume_writes,
        ("GET", "/api/v1/openapi.json"): h.openapi,
        ("GET", "/api/v1/themes"): h.list_themes,
        ("POST", "/api/v1/themes"): h.create_theme,
        ("GET", "/api/v1/themes/{id}"): h.get_theme,
        ("PUT", "/api/v1/themes/{id}"): h.replace_theme,
        ("PATCH", "/api/v1/themes/{id}"): h.patch_theme,
        ("DELETE", "/api/v1/themes/{id}"): h.delete_theme,
    }
    if set(table) != set(ROUTES):
        raise RuntimeError("main.build_router and openapi.ROUTES disagree")
    router: Router[Handler] = Router()
    for method, path in ROUTES:
        router.add(method, path, table[(method, path)])
    return router


@dataclass
class Running:
    """What exists between lifespan startup and shutdown."""

    settings: Settings
    db: Database
    fence: DcsFence | None
    vantage: Vantage | None
    router: Router[Handler]
    cors: CorsPolicy
    served_by: tuple[bytes, bytes]


class GeohaApi:
    """The ASGI callable. `settings` is a loader so tests can inject their own."""

    def __init__(self, settings: Callable[[], Settings]) -> None:
        self._load_settings = settings
        self.running: Running | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 1003})

    async def startup(self) -> None:
        settings = self._load_settings()
        fence = None
        if settings.etcd_health is not None:
            fence = DcsFence(settings.etcd_health)
            await fence.tick()  # fenced or not from the first request on
            fence.start()
        vantage = None
        if settings.vantage:
            vantage = Vantage(list(settings.vantage), settings.patroni_tls)
            vantage.start()
        db = Database(settings, fence)
        await db.open()
        served_by = (b"x-served-by", settings.served_by.encode())
        router = build_router(Handlers(settings, db, vantage))
        cors = CorsPolicy(settings.cors_origins)
        self.running = Running(settings, db, fence, vantage, router, cors, served_by)
        log.info("geoha api %s ready", settings.served_by)

    async def shutdown(self) -> None:
        running, self.running = self.running, None
        if running is not None:
            if running.fence is not None:
                await running.fence.stop()
            if running.vantage is not None:
                await running.vantage.stop()
            await running.db.close()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except ConfigError as exc:  # granian logs the message and exits 1
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        running = self.running
        request = Request.from_scope(scope, receive)
        if running is None:
            error = ApiError(
                503, "starting", "the API is not ready", headers=[(b"retry-after", b"2")]
            )
            await send_response(send, error_response(error), [])
            return
        common: Headers = [
            running.served_by,
            *running.cors.headers_for(request.headers.get(b"origin")),
        ]
        try:
            response = await self._dispatch(running, request)
        except ApiError as exc:
            response = error_response(exc)
        except ClientDisconnected:
            return
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            response = error_response(ApiError(500, "internal_error", "unexpected server error"))
        if request.method == "HEAD":
            response.body = b""
        try:  # an answer given before the body was read (a 413, a 404 ...) waits for it
            if not await discard_body(request):
                response.headers.append((b"connection", b"close"))
        except ClientDisconnected:
            return
        await send_response(send, response, common)

    async def _dispatch(self, running: Running, request: Request) -> Response:
        match = running.router.match(request.path)
        if match is None:
            raise ApiError(404, "not_found", f"no route {request.path[:100]!r}")
        method = "GET" if request.method == "HEAD" else request.method
        handler = match.route.handlers.get(method)
        if handler is not None:
            return await handler(request, match.params)
        allow = match.route.allow
        if request.method == "OPTIONS":
            if b"access-control-request-method" in request.headers and running.cors.enabled:
                return running.cors.preflight(request, allow)
            return Response(204, b"", [(b"allow", allow.encode())], content_type=None)
        raise ApiError(
            405,
            "method_not_allowed",
            f"{request.method[:10]} is not allowed here; allowed: {allow}",
            headers=[(b"allow", allow.encode())],
        )


def settings_from_environment() -> Settings:
    return load_settings(os.environ)


app = GeohaApi(settings_from_environment)
