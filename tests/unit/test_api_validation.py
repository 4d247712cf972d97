"""Pure validation of client input: ids, limits, cursors, LSNs, theme bodies."""

from __future__ import annotations

import orjson
import pytest

from app.api.errors import ApiError
from app.api.validation import (
    CONFIG_MAX_BYTES,
    decode_cursor,
    encode_cursor,
    parse_id,
    parse_list_query,
    parse_lsn,
    parse_theme,
)


def field_of(exc: pytest.ExceptionInfo[ApiError]) -> str | None:
    return exc.value.field


@pytest.mark.parametrize("text", ["1", "42", "9223372036854775807", "007"])
def test_valid_ids(text: str) -> None:
    assert parse_id(text) == int(text)


@pytest.mark.parametrize(
    "text",
    [
        "0",
        "-1",
        "+1",
        "1.0",
        "abc",
        "",
        " 1",
        "9223372036854775808",
        "١٢",
        "1e3",
        "99999999999999999999999",
    ],
)
def test_invalid_ids(text: str) -> None:
    with pytest.raises(ApiError) as exc:
        parse_id(text)
    assert exc.value.status == 400 and field_of(exc) == "id"


@pytest.mark.parametrize("value", [1, 20, 12345, 2**63 - 1])
def test_cursor_round_trip(value: int) -> None:
    cursor = encode_cursor(value)
    assert "=" not in cursor and "/" not in cursor and "+" not in cursor
    assert decode_cursor(cursor) == value


@pytest.mark.parametrize(
    "cursor", ["", "!!", "MTIz", "dDow", "dDotMQ", "dDphYmM", "dDo" + "x" * 40]
)
def test_invalid_cursors(cursor: str) -> None:
    with pytest.raises(ApiError) as exc:
        decode_cursor(cursor)
    assert field_of(exc) == "cursor"


def test_list_query_defaults_and_values() -> None:
    assert parse_list_query(b"").limit == 20
    query = parse_list_query(b"limit=5&cursor=" + encode_cursor(99).encode())
    assert (query.limit, query.before_id) == (5, 99)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (b"limit=0", "limit"),
        (b"limit=101", "limit"),
        (b"limit=x", "limit"),
        (b"limit=", "limit"),
        (b"limit=1&limit=2", "limit"),
        (b"page=2", "page"),
        (b"cursor=zz", "cursor"),
    ],
)
def test_invalid_list_queries(query: bytes, field: str) -> None:
    with pytest.raises(ApiError) as exc:
        parse_list_query(query)
    assert exc.value.status == 400 and field_of(exc) == field


def test_lsn_is_normalised() -> None:
    assert parse_lsn("0/16b3748", "X-Min-LSN") == "0/16B3748"
    assert parse_lsn("FFFFFFFF/FFFFFFFF", "X-Min-LSN") == "FFFFFFFF/FFFFFFFF"


@pytest.mark.parametrize("text", ["", "0", "0/", "/0", "g/1", "1/2/3", "123456789/1", " 0/1"])
def test_invalid_lsns(text: str) -> None:
    with pytest.raises(ApiError) as exc:
        parse_lsn(text, "X-Min-LSN")
    assert field_of(exc) == "X-Min-LSN"


def test_theme_bodies() -> None:
    theme = parse_theme(
        b'{"name": "a", "config": {"x": [1, 2]}}', partial=False, config_required=True
    )
    assert theme.name == "a" and orjson.loads(theme.config_json or "") == {"x": [1, 2]}
    assert parse_theme(b'{"name": "a"}', partial=False, config_required=False).config_json is None
    patch = parse_theme(b'{"config": {}}', partial=True, config_required=False)
    assert patch.name is None and patch.config_json == "{}"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{", 400, None),
        (b"", 400, None),
        (b"\xff", 400, None),
        (b"[]", 422, None),
        (b'{"name": 1}', 422, "name"),
        (b'{"name": ""}', 422, "name"),
        (b'{"name": "' + b"x" * 101 + b'"}', 422, "name"),
        (b'{"name": "a\\u0000"}', 422, "name"),
        (b'{"name": "a", "config": []}', 422, "config"),
        (b'{"name": "a", "config": {"k": "\\u0000"}}', 422, "config"),
        (b'{"name": "a", "config": {"\\u0000": 1}}', 422, "config"),
        (b'{"name": "a", "zzz": 1, "aaa": 2}', 422, "aaa"),
        (b'{"config": {}}', 422, "name"),
    ],
)
def test_invalid_theme_bodies(body: bytes, status: int, field: str | None) -> None:
    with pytest.raises(ApiError) as exc:
        parse_theme(body, partial=False, config_required=False)
    assert (exc.value.status, field_of(exc)) == (status, field)


def test_config_size_limit_is_on_serialized_bytes() -> None:
    filler = CONFIG_MAX_BYTES - len(b'{"k":""}')
    exact = orjson.dumps({"name": "a", "config": {"k": "x" * filler}})
    assert parse_theme(exact, partial=False, config_required=True).config_json is not None
    over = orjson.dumps({"name": "a", "config": {"k": "x" * (filler + 1)}})
    with pytest.raises(ApiError) as exc:
        parse_theme(over, partial=False, config_required=True)
    assert field_of(exc) == "config"


def test_escaped_backslash_u0000_is_not_a_nul() -> None:
    body = orjson.dumps({"name": "a", "config": {"k": "\\u0000"}})
    assert parse_theme(body, partial=False, config_required=False).config_json is not None


def test_patch_needs_a_field_and_put_needs_config() -> None:
    with pytest.raises(ApiError) as exc:
        parse_theme(b"{}", partial=True, config_required=False)
    assert field_of(exc) is None
    with pytest.raises(ApiError) as exc:
        parse_theme(b'{"name": "a"}', partial=False, config_required=True)
    assert field_of(exc) == "config"
