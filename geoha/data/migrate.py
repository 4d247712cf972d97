"""Application roles, database, schema and migrations, applied once to the primary.

Least privilege: the application user owns only the application schema; the
database belongs to the superuser and only the application user may connect.
The application password reaches the server as a SCRAM verifier computed
client-side, so no statement ever carries it in clear.
"""

from __future__ import annotations

from importlib import resources

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from geoha.db_access import APP_SCHEMA, APP_USER, SUPERUSER, Secrets, libpq_tls
from geoha.plan import Node, Plan

MIGRATIONS_PACKAGE = "geoha.data.migrations"


def migrations() -> list[tuple[str, str]]:
    """(version, SQL) of every migration, in order."""
    files = resources.files(MIGRATIONS_PACKAGE)
    found = sorted((f for f in files.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in found]


def superuser_conn(node: Node, secrets: Secrets, dbname: str = "postgres") -> psycopg.Connection:
    """The superuser's connection to `node`, over TLS when its listeners speak it."""
    conninfo = make_conninfo(
        "",
        host=node.address,
        port=node.ports["postgres"],
        user=SUPERUSER,
        password=secrets.superuser,
        dbname=dbname,
        connect_timeout=5,
        application_name="geoha-controller",
        **libpq_tls(node.ca),
    )
    return psycopg.connect(conninfo, autocommit=True)


def scram_verifier(conn: psycopg.Connection, role: str, password: str) -> str:
    """The role's SCRAM-SHA-256 verifier, computed here: no statement carries the password."""
    return conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()


def set_password(conn: psycopg.Connection, role: str, password: str) -> None:
    """A new password for an existing role (as its SCRAM verifier)."""
    verifier = scram_verifier(conn, role, password)
    conn.execute(
        sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(verifier))
    )


def ensure_app_role(conn: psycopg.Connection, secrets: Secrets) -> None:
    verifier = scram_verifier(conn, APP_USER, secrets.app)
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_USER,)).fetchone()
    verb = sql.SQL("ALTER ROLE") if exists else sql.SQL("CREATE ROLE")
    conn.execute(
        sql.SQL("{} {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
            verb, sql.Identifier(APP_USER), sql.Literal(verifier)
        )
    )


def ensure_database(conn: psycopg.Connection, dbname: str) -> None:
    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
    db, app = sql.Identifier(dbname), sql.Identifier(APP_USER)
    if not exists:
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(db, sql.Identifier(SUPERUSER)))
    conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))
    conn.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(db, app))


def ensure_schema(conn: psycopg.Connection, dbname: str) -> None:
    schema, app = sql.Identifier(APP_SCHEMA), sql.Identifier(APP_USER)
    conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(schema, app))
    conn.execute(
        sql.SQL("ALTER ROLE {} IN DATABASE {} SET search_path = {}").format(
            app, sql.Identifier(dbname), schema
        )
    )


def apply_migrations(conn: psycopg.Connection) -> list[str]:
    """Apply pending migrations as the application user; returns the versions applied."""
    applied: list[str] = []
    with conn.transaction():
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(APP_USER)))
        conn.execute(sql.SQL("SET LOCAL search_path = {}").format(sql.Identifier(APP_SCHEMA)))
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('geoha-migrations'))")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for version, text in migrations():
            if version in done:
                continue
            conn.execute(text.encode())
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
            applied.append(version)
    return applied


def bootstrap_application(plan: Plan, primary: Node, secrets: Secrets) -> list[str]:
    """Roles, database, schema and migrations on the primary; idempotent."""
    dbname = plan.spec.database.name
    with superuser_conn(primary, secrets) as conn:
        ensure_app_role(conn, secrets)
        ensure_database(conn, dbname)
    with superuser_conn(primary, secrets, dbname) as conn:
        ensure_schema(conn, dbname)
        return apply_migrations(conn)
