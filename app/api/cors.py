"""CORS for the origins listed in GEOHA_CORS_ORIGINS, and no others.

Never `Access-Control-Allow-Origin: *`: an allowed origin is echoed back with
`Vary: Origin`, credentials allowed (the read-your-writes cookie). A preflight
from another origin gets 403 and no CORS headers, so the browser refuses.
"""

from __future__ import annotations

from app.api.asgi import Headers
from app.api.errors import ApiError
from app.api.http import Request, Response

EXPOSED = b"Location, X-Commit-LSN, X-DB-Role, X-Served-By, Retry-After"
ALLOWED_REQUEST_HEADERS = {"content-type", "x-min-lsn"}
PREFLIGHT_MAX_AGE_S = b"600"


class CorsPolicy:
    """Decides the CORS headers of every response from the request's `Origin`."""

    def __init__(self, origins: frozenset[str]) -> None:
        self.origins = frozenset(o.encode() for o in origins)

    @property
    def enabled(self) -> bool:
        return bool(self.origins)

    def headers_for(self, origin: bytes | None) -> Headers:
        """Headers to add to an ordinary response (errors included)."""
        if not self.origins:
            return []
        if origin is None or origin not in self.origins:
            return [(b"vary", b"Origin")]
        return [
            (b"vary", b"Origin"),
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-credentials", b"true"),
            (b"access-control-expose-headers", EXPOSED),
        ]

    def preflight(self, request: Request, allow: str) -> Response:
        """Answer `OPTIONS` carrying `Access-Control-Request-Method`."""
        origin = request.headers.get(b"origin")
        if origin is None or origin not in self.origins:
            raise ApiError(403, "cors_origin_denied", "this origin may not call the API", "origin")
        method = request.header(b"access-control-request-method") or ""
        if method not in allow.split(", "):
            raise ApiError(
                403,
                "cors_method_denied",
                f"{method[:20]!r} is not allowed here; allowed: {allow}",
                "access-control-request-method",
            )
        asked = request.header(b"access-control-request-headers") or ""
        wanted = {h.strip().lower() for h in asked.split(",") if h.strip()}
        refused = sorted(wanted - ALLOWED_REQUEST_HEADERS)
        if refused:
            raise ApiError(
                403,
                "cors_header_denied",
                f"request header {refused[0][:40]!r} is not allowed",
                "access-control-request-headers",
            )
        return Response(
            204,
            b"",
            [
                (b"access-control-allow-methods", allow.encode()),
                (b"access-control-allow-headers", b"Content-Type, X-Min-LSN"),
                (b"access-control-max-age", PREFLIGHT_MAX_AGE_S),
            ],
            content_type=None,
        )
