"""Errors the API answers with: a status, a code, the field at fault and a sentence.

The body is always `{"error": {"code": ..., "field": ... | null, "message": ...}}`.
"""

from __future__ import annotations

from app.api.asgi import Headers

RETRY_AFTER_S = 2


class ApiError(Exception):
    """An answer other than success; raised anywhere, rendered in one place."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: Headers | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers: Headers = headers or []


def bad_request(field: str | None, message: str, code: str = "invalid_parameter") -> ApiError:
    return ApiError(400, code, message, field)


def unprocessable(field: str | None, message: str) -> ApiError:
    return ApiError(422, "validation_failed", message, field)


def not_found(message: str = "no such resource", headers: Headers | None = None) -> ApiError:
    return ApiError(404, "not_found", message, headers=headers)


def unavailable(message: str) -> ApiError:
    """503 with Retry-After: the database tier cannot answer right now."""
    return ApiError(
        503,
        "database_unavailable",
        message,
        headers=[(b"retry-after", str(RETRY_AFTER_S).encode())],
    )
