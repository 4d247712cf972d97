"""Body reading: the limit by header and by count, and the rest of a refused body read
before the answer, so the answer arrives instead of a reset.

The ASGI `receive` here is a script of messages; the app is driven without a
server or a database.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.api.config import Settings
from app.api.errors import ApiError
from app.api.http import DISCARD_MAX_BYTES, Request, discard_body, read_body
from app.api.main import GeohaApi
from tests.unit.api_settings import BODY_LIMIT, unit_settings

pytestmark = pytest.mark.anyio

LIMIT = BODY_LIMIT


def settings() -> Settings:
    """No database is reached: pools open empty, and every test here stops before a query."""
    return unit_settings()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Upload:
    """An ASGI `receive` handing out `chunks` one message at a time; after the last,
    `then` says what the client does: "end" (the last chunk ends the body),
    "stall" (keeps the connection, sends nothing) or "leave" (disconnects)."""

    def __init__(self, chunks: list[bytes], then: str = "end") -> None:
        self.chunks = chunks
        self.taken = 0
        self.then = then

    async def __call__(self) -> dict[str, Any]:
        if self.taken == len(self.chunks):
            if self.then == "leave":
                return {"type": "http.disconnect"}
            await asyncio.Event().wait()
        self.taken += 1
        more = self.taken < len(self.chunks) or self.then != "end"
        return {"type": "http.request", "body": self.chunks[self.taken - 1], "more_body": more}


def request(upload: Upload, headers: dict[bytes, bytes], method: str = "POST") -> Request:
    headers = {b"content-type": b"application/json", **headers}
    return Request(method, "/api/v1/themes", b"", headers, upload)


def chunked() -> dict[bytes, bytes]:
    return {b"transfer-encoding": b"chunked"}


def length(n: int) -> dict[bytes, bytes]:
    return {b"content-length": str(n).encode()}


async def test_a_body_within_the_limit_is_read_whole() -> None:
    upload = Upload([b"{", b" " * (LIMIT - 2), b"}"])
    assert await read_body(request(upload, chunked()), LIMIT) == b"{" + b" " * (LIMIT - 2) + b"}"


async def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    upload = Upload([b"x" * 1000] * 5)
    req = request(upload, length(5000))
    with pytest.raises(ApiError) as refused:
        await read_body(req, LIMIT)
    assert (refused.value.status, refused.value.field) == (413, "body")
    assert upload.taken == 0
    assert await discard_body(req) is True  # then the whole upload is read
    assert upload.taken == 5 and req.body_done


async def test_a_counted_body_over_the_limit_is_read_to_its_end_after_refusal() -> None:
    upload = Upload([b"x" * 1000] * 8)
    req = request(upload, chunked())
    with pytest.raises(ApiError):
        await read_body(req, LIMIT)
    assert upload.taken == 3  # refused as soon as the count passes the limit
    assert await discard_body(req) is True
    assert upload.taken == 8


async def test_discarding_stops_at_its_byte_bound() -> None:
    upload = Upload([b"x" * 1000] * 100)
    req = request(upload, length(100_000))
    assert await discard_body(req, max_bytes=10_000) is False  # the answer closes
    assert 10 <= upload.taken <= 12


async def test_discarding_stops_at_its_time_bound() -> None:
    upload = Upload([b"x" * 1000] * 3, then="stall")
    req = request(upload, length(100_000))
    assert await discard_body(req, max_s=0.05) is False
    assert upload.taken == 3


async def test_nothing_is_read_when_there_is_no_body_or_it_was_read() -> None:
    upload = Upload([b"{}"])
    assert await discard_body(request(upload, {}, method="GET")) is True
    assert await discard_body(request(upload, length(0))) is True
    assert upload.taken == 0
    req = request(upload, length(2))
    assert await read_body(req, LIMIT) == b"{}"
    assert await discard_body(req) is True and upload.taken == 1


async def test_a_client_waiting_for_100_continue_is_not_asked_for_its_body() -> None:
    upload = Upload([b"x" * 1000] * 5)
    req = request(upload, {**length(5000), b"expect": b"100-continue"})
    with pytest.raises(ApiError):
        await read_body(req, LIMIT)
    assert await discard_body(req) is False and upload.taken == 0


def post_scope(headers: dict[bytes, bytes]) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/themes",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), *headers.items()],
    }


class Answer:
    """An ASGI `send` recording each message with how much of `upload` was read by then."""

    def __init__(self, upload: Upload) -> None:
        self.upload = upload
        self.sent: list[tuple[int, dict[str, Any]]] = []

    async def __call__(self, message: dict[str, Any]) -> None:
        self.sent.append((self.upload.taken, message))

    @property
    def start(self) -> dict[str, Any]:
        return self.sent[0][1]


async def test_the_app_answers_413_only_after_the_upload_is_read() -> None:
    api = GeohaApi(settings)
    await api.startup()
    try:
        for headers in (length(40_000), chunked()):
            upload = Upload([b"x" * 1000] * 40)
            answer = Answer(upload)
            await api(post_scope(headers), upload, answer)
            assert answer.start["status"] == 413
            taken_when_answered = answer.sent[0][0]
            assert taken_when_answered == 40, "the answer went out before the upload was read"
            assert (b"connection", b"close") not in answer.start["headers"]  # reusable
    finally:
        await api.shutdown()


async def test_the_app_closes_when_the_upload_is_past_the_bound() -> None:
    api = GeohaApi(settings)
    await api.startup()
    try:
        mib = b"x" * 1024 * 1024
        upload = Upload([mib] * (DISCARD_MAX_BYTES // len(mib) + 4))
        answer = Answer(upload)
        await api(post_scope(length(len(mib) * len(upload.chunks))), upload, answer)
        assert answer.start["status"] == 413
        assert (b"connection", b"close") in answer.start["headers"]
        assert upload.taken < len(upload.chunks)
    finally:
        await api.shutdown()


async def test_a_client_that_leaves_while_the_rest_is_read_gets_no_answer() -> None:
    api = GeohaApi(settings)
    await api.startup()
    try:
        upload = Upload([b"x" * 1000] * 3, then="leave")
        answer = Answer(upload)
        await api(post_scope(length(9000)), upload, answer)
        assert answer.sent == []
    finally:
        await api.shutdown()
