"""The API as a real granian process (`python -m app.api`) on 127.240.4.1.

Graceful shutdown is tested honestly through a normal endpoint: with the
replica's replay paused, a read carrying a fresh commit LSN waits
GEOHA_RYW_WAIT_MS (3 s here) before the primary answers it. SIGTERM arrives
during that wait; the request must still complete, new connections must be
refused, and the process must then exit 0.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.component.conftest import api_env
from tests.component.pg import PgCluster

pytestmark = pytest.mark.component

LISTEN_HOST = "127.240.4.1"
LISTEN_PORT = 18080
BASE = f"http://{LISTEN_HOST}:{LISTEN_PORT}"
REPO = Path(__file__).resolve().parents[2]


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL, of exactly the group this test started."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _start_api(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "app.api"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_healthy(process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"API exited {process.returncode}: {log.read_text()}")
        try:
            if httpx.get(f"{BASE}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"API not healthy within 20 s: {log.read_text()}")


@pytest.fixture
def api_server(pg: PgCluster, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **api_env(pg, GEOHA_RYW_WAIT_MS="3000", GEOHA_API_LISTEN=f"{LISTEN_HOST}:{LISTEN_PORT}"),
    }
    log = tmp_path / "api.log"
    process = _start_api(env, log)
    try:
        _wait_healthy(process, log)
        yield process
    finally:
        _stop(process)


def test_real_server_serves_the_api(api_server: subprocess.Popen[bytes]) -> None:
    with httpx.Client(base_url=BASE, timeout=10) as client:
        created = client.post("/api/v1/themes", json={"name": "over tcp", "config": {"a": [1]}})
        assert created.status_code == 201
        assert created.headers["x-served-by"] == "chennai/chennai-api-1"
        assert created.headers["x-db-role"] == "primary"
        fetched = client.get(created.headers["location"])  # the cookie carries the LSN
        assert fetched.status_code == 200 and fetched.json() == created.json()
        too_big = client.post(
            "/api/v1/themes",
            content=b"{" + b" " * 70000 + b"}",
            headers={"content-type": "application/json"},
        )
        assert too_big.status_code == 413


def test_sigterm_lets_the_in_flight_request_finish(
    api_server: subprocess.Popen[bytes], pg: PgCluster
) -> None:
    with httpx.Client(base_url=BASE, timeout=10) as client:
        created = client.post("/api/v1/themes", json={"name": "in flight"})
    lsn = created.headers["x-commit-lsn"]
    url = created.headers["location"]
    with pg.connect(pg.replica) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
    # A write the paused replica cannot have replayed: the token read will wait 3 s.
    with httpx.Client(base_url=BASE, timeout=10) as client:
        lsn = client.post("/api/v1/themes", json={"name": "unreplayed"}).headers["x-commit-lsn"]
    result: dict[str, object] = {}

    def slow_read() -> None:
        started = time.monotonic()
        try:
            response = httpx.get(f"{BASE}{url}", headers={"x-min-lsn": lsn}, timeout=15)
            result.update(status=response.status_code, role=response.headers.get("x-db-role"))
        except httpx.HTTPError as exc:
            result["error"] = repr(exc)
        result["elapsed"] = time.monotonic() - started

    reader = threading.Thread(target=slow_read)
    reader.start()
    time.sleep(0.7)  # the read is now waiting on the replica
    api_server.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{BASE}/health", timeout=2)  # no new connections while draining
    reader.join(timeout=20)
    assert result.get("status") == 200, result
    assert result["role"] == "primary"
    assert isinstance(result["elapsed"], float) and result["elapsed"] >= 2.5
    assert api_server.wait(timeout=15) == 0


def test_bad_configuration_exits_with_one_line(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "GEOHA_REGION": "delhi",
        "GEOHA_INSTANCE": "delhi-api-1",
        "GEOHA_WRITE_DSN": "postgresql://u:secret@127.0.0.1/db?target_session_attrs=read-write",
        "GEOHA_READ_DSN": "postgresql://u@127.0.0.1/db",
        "GEOHA_RYW_WAIT_MS": "soon",
    }
    result = subprocess.run(
        [sys.executable, "-m", "app.api"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "GEOHA_RYW_WAIT_MS" in lines[0], result.stderr
    assert "secret" not in result.stderr
