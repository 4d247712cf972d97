"""`python -m geoha.cloud.dbinit PATRONI_YML DATABASE`: the application schema, in the cloud.

Locally the controller creates the application role, database, schema and
migrations once the primary is up. A cloud database VM runs this instead
(geoha-app-schema.service, after Patroni): it waits until its own Patroni
answers, and if this node is the primary applies geoha.data.migrate's steps
(idempotent); a replica has nothing to do. Passwords come from the
environment (the VM's /etc/geoha/secrets.env), the address from the live
Patroni config, which holds this VM's real address.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import httpx
import yaml

from geoha.data.migrate import (
    apply_migrations,
    ensure_app_role,
    ensure_database,
    ensure_schema,
    superuser_conn,
)
from geoha.db_access import Secrets
from geoha.health import trust
from geoha.plan import Node, NodeRole

POLL_S = 5.0


def secrets_from_environment(env: dict[str, str]) -> Secrets:
    return Secrets(
        superuser=env["PATRONI_SUPERUSER_PASSWORD"],
        replication=env["PATRONI_REPLICATION_PASSWORD"],
        app=env["GEOHA_APP_PASSWORD"],
        rest=env["PATRONI_RESTAPI_PASSWORD"],
    )


def local_node(config: dict[str, object]) -> tuple[Node, str]:
    """This database node (its real address) and its Patroni REST base URL."""
    postgresql = config["postgresql"]
    restapi = config["restapi"]
    assert isinstance(postgresql, dict) and isinstance(restapi, dict)
    host, port = str(postgresql["connect_address"]).rsplit(":", 1)
    ca = restapi.get("cafile")
    node = Node(
        name=str(config["name"]),
        region="",
        role=NodeRole.DATABASE,
        address=host,
        ports={"postgres": int(port)},
        dir=Path(str(postgresql["data_dir"])).parent,
        command=(),
        health_url="",
        ca=None if ca is None else Path(str(ca)),
    )
    scheme = "https" if ca is not None else "http"
    return node, f"{scheme}://{restapi['connect_address']}"


def patroni_role(node: Node, rest_url: str) -> str | None:
    """'primary', 'replica', or None while Patroni does not answer yet."""
    for role in ("primary", "replica"):
        try:
            answer = httpx.get(f"{rest_url}/{role}", timeout=2.0, verify=trust(node))
            if answer.status_code == 200:
                return role
        except httpx.HTTPError:
            return None
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m geoha.cloud.dbinit PATRONI_YML DATABASE", file=sys.stderr)
        return 2
    config = yaml.safe_load(Path(argv[0]).read_text(encoding="utf-8"))
    node, rest_url = local_node(config)
    secrets = secrets_from_environment(dict(os.environ))
    role = patroni_role(node, rest_url)
    while role is None:
        time.sleep(POLL_S)
        role = patroni_role(node, rest_url)
    if role != "primary":
        print(f"dbinit: {node.name} is a replica; the primary applies the schema")
        return 0
    with superuser_conn(node, secrets) as conn:
        ensure_app_role(conn, secrets)
        ensure_database(conn, argv[1])
    with superuser_conn(node, secrets, argv[1]) as conn:
        ensure_schema(conn, argv[1])
        applied = apply_migrations(conn)
    print(f"dbinit: {node.name} is primary; migrations applied: {applied or 'none pending'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
