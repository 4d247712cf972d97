"""docs/DESIGN.md's "Security" table names every listener the plan gives a node, and the
DNS server's and the monitor's: the scenario test_listeners checks a running deployment
against the plan, this keeps the documented table and the plan in step."""

from __future__ import annotations

import re
from pathlib import Path

from geoha.plan import Tools, expand
from geoha.spec import load_spec

DESIGN = Path(__file__).resolve().parents[2] / "docs" / "DESIGN.md"


def documented() -> set[tuple[str, str]]:
    """(role, listener) of each row of the Security section's table."""
    text = DESIGN.read_text(encoding="utf-8")
    section = text.split("\n## Security\n", 1)[1].split("\n## ", 1)[0]
    rows = set()
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or cells[0] in ("role", "") or cells[0].startswith("---"):
            continue
        named = re.match(r"`([^`]+)`", cells[1])
        rows.add((cells[0].strip("`"), named.group(1) if named else cells[1].split()[0]))
    return rows


def test_every_planned_listener_is_in_the_security_table() -> None:
    plan = expand(load_spec(None), Path("/srv/run"), Tools("/p", "/e", "/pg"))
    planned = {(n.role.value, port) for n in plan.nodes for port in n.ports}
    rows = documented()
    assert planned - rows == set()
    # Nothing documented that the plan no longer has (a Caddy admin port, say).
    node_rows = {(role, name) for role, name in rows if role in {n.role.value for n in plan.nodes}}
    unix_sockets = {(role, name) for role, name in node_rows if "admin" in name}
    assert node_rows - unix_sockets == planned


def test_the_table_names_the_other_listeners() -> None:
    roles = {role for role, _ in documented()}
    assert {"dns", "monitor", "controller"} <= roles
