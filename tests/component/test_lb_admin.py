"""HAProxy's runtime API against a real haproxy running a rendered backend-LB config.

The LB runs on addresses of its own (127.213.0.0/16, a region no other test
uses), in its own temporary folder; its servers' slots have nothing behind
them, which the admin commands do not need.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from geoha.plan import NodeRole, Tools, expand
from geoha.render.files import write_files
from geoha.render.haproxy import admin_socket, render_haproxy
from geoha.spec import parse_spec
from geoha.traffic.lb_admin import (
    LbAdminError,
    ServerSettings,
    ServerState,
    admin_command,
    server_settings,
    set_server_address,
    set_server_state,
    set_server_weight,
)

pytestmark = pytest.mark.component

HAPROXY = "/usr/sbin/haproxy"
REGIONS = {
    "delhi": {"role": "primary", "cidr": "10.10.0.0/16", "local_net": "127.213.0.0/16"},
    "chennai": {"role": "replica", "cidr": "10.20.0.0/16", "local_net": "127.214.0.0/16"},
    "mumbai": {"role": "witness", "cidr": "10.30.0.0/16", "local_net": "127.215.0.0/16"},
}
START_TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The admin socket of delhi's backend LB (API slots 1-2 started, 3-5 standby)."""
    if not Path(HAPROXY).exists():
        pytest.fail(f"{HAPROXY} is not installed: run scripts/setup.sh")
    run_dir = tmp_path_factory.mktemp("lb")
    tools = Tools(patroni="/p", etcd="/e", pg_bin_dir="/pg", haproxy=HAPROXY)
    plan = expand(parse_spec({"regions": REGIONS}), run_dir, tools)
    lb = plan.only("delhi", NodeRole.BACKEND_LB)
    assert lb.address == "127.213.3.1"
    write_files(render_haproxy(plan, lb))
    socket_path = Path(admin_socket(lb))
    proc = subprocess.Popen(
        [HAPROXY, "-db", "-f", str(lb.config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=run_dir,
    )
    try:
        wait_for_socket(socket_path, proc)
        yield socket_path
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        shutil.rmtree(run_dir, ignore_errors=True)


def wait_for_socket(socket_path: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = proc.stdout.read().decode() if proc.stdout else ""
            pytest.fail(f"haproxy exited ({proc.returncode}): {output}")
        try:
            admin_command(socket_path, "show info")
            return
        except LbAdminError:
            time.sleep(0.05)
    pytest.fail(f"haproxy's admin socket did not answer within {START_TIMEOUT_S} s")


def test_the_rendered_slots_start_ready_or_in_maintenance(admin: Path) -> None:
    servers = server_settings(admin, "api")
    assert {name: s.state for name, s in servers.items()} == {
        "delhi-api-1": ServerState.READY,
        "delhi-api-2": ServerState.READY,
        "delhi-api-3": ServerState.MAINT,
        "delhi-api-4": ServerState.MAINT,
        "delhi-api-5": ServerState.MAINT,
    }
    assert servers["delhi-api-4"] == ServerSettings("127.213.4.4", 8080, 1, ServerState.MAINT)


def test_a_standby_slot_is_enabled_drained_and_disabled(admin: Path) -> None:
    for state in (ServerState.READY, ServerState.DRAIN, ServerState.MAINT, ServerState.READY):
        set_server_state(admin, "api", "delhi-api-3", state)
        assert server_settings(admin, "api")["delhi-api-3"].state is state
    assert server_settings(admin, "api")["delhi-api-4"].state is ServerState.MAINT  # untouched


def test_weight_changes_at_runtime(admin: Path) -> None:
    set_server_weight(admin, "api", "delhi-api-2", 37)
    assert server_settings(admin, "api")["delhi-api-2"].weight == 37
    assert admin_command(admin, "get weight api/delhi-api-2").split()[0] == "37"
    set_server_weight(admin, "api", "delhi-api-2", 0)
    assert server_settings(admin, "api")["delhi-api-2"].weight == 0


def test_address_and_port_change_at_runtime(admin: Path) -> None:
    set_server_address(admin, "api", "delhi-api-5", "127.213.4.77", 9090)
    moved = server_settings(admin, "api")["delhi-api-5"]
    assert (moved.address, moved.port) == ("127.213.4.77", 9090)
    set_server_address(admin, "api", "delhi-api-5", "127.213.4.77", 9090)  # already there


@pytest.mark.parametrize(
    "change",
    [
        lambda s: set_server_state(s, "api", "delhi-api-9", ServerState.READY),
        lambda s: set_server_weight(s, "api", "delhi-api-9", 5),
        lambda s: set_server_address(s, "api", "delhi-api-9", "127.213.4.9", 8080),
    ],
    ids=["state", "weight", "address"],
)
def test_a_refused_change_raises_with_haproxys_answer(
    admin: Path, change: Callable[[Path], None]
) -> None:
    with pytest.raises(LbAdminError, match=r"api/delhi-api-9.*No such server"):
        change(admin)


def test_an_unknown_backend_is_refused(admin: Path) -> None:
    with pytest.raises(LbAdminError, match="No such backend"):
        set_server_state(admin, "web", "delhi-api-1", ServerState.DRAIN)
    with pytest.raises(LbAdminError, match="show servers state web"):
        server_settings(admin, "web")
