"""The control endpoint over a real Unix socket."""

from __future__ import annotations

import asyncio
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from geoha.errors import BadInput
from geoha.runtime import control


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Path]:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = asyncio.Event()

    async def handler(op: str, args: dict[str, Any]) -> Any:
        if op == "fail":
            raise BadInput("NODE: one of a, b (got 'c')")
        if op == "crash":
            raise RuntimeError("disk full")
        return {"op": op, "args": args}

    async def main() -> None:
        srv = await control.serve(tmp_path, handler)
        ready.set()
        await stop.wait()
        srv.close()
        await srv.wait_closed()

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    assert ready.wait(5)
    yield tmp_path
    loop.call_soon_threadsafe(stop.set)
    thread.join(5)
    loop.close()


def test_request_and_answer(server: Path) -> None:
    assert control.call(server, "status", node="x") == {"op": "status", "args": {"node": "x"}}
    assert control.controller_running(server)


def test_errors_reach_the_caller_with_their_kind(server: Path) -> None:
    with pytest.raises(BadInput, match="NODE: one of a, b"):
        control.call(server, "fail")
    with pytest.raises(control.ControlError, match="disk full"):
        control.call(server, "crash")


def test_socket_is_private(server: Path) -> None:
    mode = stat.S_IMODE(control.socket_path(server).stat().st_mode)
    assert mode & 0o077 == 0


def test_no_controller(tmp_path: Path) -> None:
    assert not control.controller_running(tmp_path)
    with pytest.raises(control.ControlError, match="no controller"):
        control.call(tmp_path, "status")


def test_long_run_dir_gets_a_short_socket_path(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 120)
    path = control.socket_path(deep)
    assert len(str(path)) <= control.MAX_SOCKET_PATH
    assert path == control.socket_path(deep)
