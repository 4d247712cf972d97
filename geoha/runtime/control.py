"""The controller's local control endpoint: one JSON request line, one JSON answer line.

It listens on a Unix socket in the run directory (mode 0600), so only the
user who started the deployment can drive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import socket
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from geoha.errors import EXIT_BAD_INPUT, EXIT_FAILED, BadInput, GeohaError

MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes

Handler = Callable[[str, dict[str, Any]], Awaitable[Any]]


class ControlError(GeohaError):
    """The controller is unreachable or could not do what was asked."""


def socket_path(run_dir: Path) -> Path:
    path = run_dir / "control.sock"
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(run_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"geoha-{digest}.sock"


async def serve(run_dir: Path, handler: Handler) -> asyncio.Server:
    path = socket_path(run_dir)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            request = json.loads(line)
            op, args = str(request["op"]), dict(request.get("args") or {})
            try:
                answer = {"ok": True, "result": await handler(op, args)}
            except Exception as exc:  # reported to the caller, the controller goes on
                code = exc.exit_code if isinstance(exc, GeohaError) else EXIT_FAILED
                answer = {"ok": False, "error": str(exc) or type(exc).__name__, "code": code}
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (ValueError, KeyError, ConnectionError):
            pass
        finally:
            writer.close()

    old_umask = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(on_client, path=str(path), limit=1 << 20)
    finally:
        os.umask(old_umask)
    return server


def call(run_dir: Path, op: str, timeout_s: float = 10.0, **args: Any) -> Any:
    """Send one request to the controller and return its result.

    Raises BadInput when the controller refused the request's arguments, and
    ControlError when it is unreachable or failed to do what was asked.
    """
    path = socket_path(run_dir)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(str(path))
            sock.sendall(json.dumps({"op": op, "args": args}).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
    except (FileNotFoundError, ConnectionRefusedError):
        raise ControlError("no controller is running for this run directory") from None
    except OSError as exc:
        raise ControlError(f"controller did not answer: {exc}") from None
    try:
        answer = json.loads(data)
    except ValueError:
        raise ControlError("controller closed the connection without an answer") from None
    if not answer.get("ok"):
        if answer.get("code") == EXIT_BAD_INPUT:
            raise BadInput(str(answer.get("error")))
        raise ControlError(str(answer.get("error")))
    return answer.get("result")


def controller_running(run_dir: Path) -> bool:
    try:
        call(run_dir, "ping", timeout_s=2.0)
    except ControlError:
        return False
    return True
