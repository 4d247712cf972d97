"""Pure validation of everything a client sends: ids, query strings, cursors, LSNs, bodies.

Each function returns the clean value or raises `ApiError` naming the field.
No I/O here, so unit tests cover it in milliseconds.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson

from app.api.errors import ApiError, bad_request, unprocessable
from app.api.gate import MAX_HOLD_S

MAX_ID = 2**63 - 1
NAME_MAX_CHARS = 100
CONFIG_MAX_BYTES = 16384
LIMIT_DEFAULT = 20
LIMIT_MAX = 100
THEME_FIELDS = frozenset({"name", "config"})
LSN_PATTERN = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")
CURSOR_PREFIX = b"t:"
HOLD_DEFAULT_S = 5.0


@dataclass(frozen=True)
class ThemeInput:
    """A validated theme body; `None` means "not given" (PATCH only)."""

    name: str | None
    config_json: str | None


@dataclass(frozen=True)
class ListQuery:
    limit: int
    before_id: int | None


def parse_id(text: str) -> int:
    """A theme id: a positive int64 written in plain decimal digits."""
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or not 0 < int(text) <= MAX_ID:
        raise bad_request("id", f"id must be a positive 64-bit integer, got {text[:40]!r}")
    return int(text)


def encode_cursor(last_id: int) -> str:
    """Opaque cursor for the page after the row with `last_id` (URL-safe base64)."""
    return base64.urlsafe_b64encode(CURSOR_PREFIX + str(last_id).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    digits = raw.removeprefix(CURSOR_PREFIX)
    if not raw.startswith(CURSOR_PREFIX) or not digits.isdigit() or len(digits) > 19:
        raise bad_request("cursor", "cursor is not one this API issued")
    value = int(digits)
    if not 0 < value <= MAX_ID:
        raise bad_request("cursor", "cursor is not one this API issued")
    return value


def parse_limit(text: str) -> int:
    digits = text.isascii() and text.isdigit() and len(text) <= 3
    if not digits or not 1 <= int(text) <= LIMIT_MAX:
        raise bad_request("limit", f"limit must be an integer 1..{LIMIT_MAX}, got {text[:40]!r}")
    return int(text)


def _query(query_string: bytes, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query's parameters; unknown or repeated ones are rejected by name."""
    try:
        pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    except ValueError:
        raise bad_request(None, "query string is malformed") from None
    seen: dict[str, str] = {}
    for key, value in pairs:
        if key not in allowed:
            raise bad_request(key, f"unknown query parameter {key[:40]!r}")
        if key in seen:
            raise bad_request(key, f"{key} given more than once")
        seen[key] = value
    return seen


def parse_list_query(query_string: bytes) -> ListQuery:
    """`?limit=N&cursor=C`; unknown or repeated parameters are rejected by name."""
    seen = _query(query_string, ("limit", "cursor"))
    limit = parse_limit(seen["limit"]) if "limit" in seen else LIMIT_DEFAULT
    before = decode_cursor(seen["cursor"]) if "cursor" in seen else None
    return ListQuery(limit, before)


def parse_hold(query_string: bytes) -> float:
    """`?hold_s=S` of a write pause: seconds above 0, at most MAX_HOLD_S (default 5)."""
    text = _query(query_string, ("hold_s",)).get("hold_s")
    if text is None:
        return HOLD_DEFAULT_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= MAX_HOLD_S:  # NaN fails too
        raise bad_request("hold_s", f"hold_s must be seconds above 0, at most {MAX_HOLD_S:g}")
    return value


def parse_lsn(text: str, field: str) -> str:
    """A PostgreSQL LSN `X/Y` (hex), normalised to upper case."""
    if not LSN_PATTERN.fullmatch(text):
        raise bad_request(field, f"{field} must be a WAL position like 0/16B3748")
    return text.upper()


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in k or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _check_name(value: Any) -> str:
    if not isinstance(value, str):
        raise unprocessable("name", "name must be a string")
    if not 1 <= len(value) <= NAME_MAX_CHARS:
        raise unprocessable("name", f"name must be 1..{NAME_MAX_CHARS} characters")
    if "\x00" in value:
        raise unprocessable("name", "name must not contain NUL characters")
    return value


def _check_config(value: Any) -> str:
    if not isinstance(value, dict):
        raise unprocessable("config", "config must be a JSON object")
    serialized = orjson.dumps(value)
    if len(serialized) > CONFIG_MAX_BYTES:
        raise unprocessable("config", f"config must be at most {CONFIG_MAX_BYTES} bytes as JSON")
    # Cheap pre-check: the exact walk runs only when an escaped NUL may be present.
    if b"u0000" in serialized and _has_nul(value):
        raise unprocessable("config", "config strings must not contain NUL characters")
    return serialized.decode()


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "malformed_json", f"body is not valid JSON: {exc}") from None


def parse_theme(body: bytes, *, partial: bool, config_required: bool) -> ThemeInput:
    """Validate a theme body: POST (config optional), PUT (both), PATCH (`partial`)."""
    data = parse_json(body)
    if not isinstance(data, dict):
        raise unprocessable(None, "body must be a JSON object")
    unknown = sorted(set(data) - THEME_FIELDS)
    if unknown:
        raise unprocessable(unknown[0], f"unknown field {unknown[0][:40]!r}")
    if not partial and "name" not in data:
        raise unprocessable("name", "name is required")
    if config_required and "config" not in data:
        raise unprocessable("config", "config is required")
    if partial and not data:
        raise unprocessable(None, "give at least one of name, config")
    name = _check_name(data["name"]) if "name" in data else None
    config = _check_config(data["config"]) if "config" in data else None
    return ThemeInput(name, config)
