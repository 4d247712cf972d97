"""Runtime server changes refuse bad arguments before anything reaches HAProxy
(the commands themselves run against a real HAProxy in tests/component)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from geoha.traffic.lb_admin import (
    ServerState,
    server_settings,
    set_server_address,
    set_server_state,
    set_server_weight,
)

NO_SOCKET = Path("/nonexistent/admin.sock")  # reaching it would raise LbAdminError


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda: set_server_weight(NO_SOCKET, "api", "s1", 257), "weight"),
        (lambda: set_server_weight(NO_SOCKET, "api", "s1", -1), "weight"),
        (lambda: set_server_weight(NO_SOCKET, "api", "s1", True), "weight"),
        (lambda: set_server_address(NO_SOCKET, "api", "s1", "10.0.0.1", 65536), "port"),
        (lambda: set_server_address(NO_SOCKET, "api", "s1", "10.0.0.1", 0), "port"),
        (lambda: set_server_address(NO_SOCKET, "api", "s1", "bogus", 80), "address"),
        (lambda: set_server_address(NO_SOCKET, "api", "s1", "10.0.0.1 port 1;", 80), "address"),
        (lambda: set_server_state(NO_SOCKET, "api", "s1; shutdown", ServerState.MAINT), "server"),
        (lambda: set_server_state(NO_SOCKET, "api\nshow", "s1", ServerState.MAINT), "backend"),
        (lambda: set_server_state(NO_SOCKET, "api", "", ServerState.MAINT), "server"),
        (lambda: server_settings(NO_SOCKET, "api web"), "backend"),
    ],
)
def test_bad_arguments_never_reach_the_socket(change: Callable[[], None], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}: "):
        change()
