"""Patroni configuration of a database node (PostgreSQL 15 under Patroni, etcd3 DCS)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from geoha.db_access import (
    APP_USER,
    REPLICATION_USER,
    REST_USER,
    SUPERUSER,
    Secrets,
    libpq_tls,
)
from geoha.plan import Node, Plan
from geoha.render.files import File
from geoha.spec import ReplicationMode

# On one machine every loopback connection leaves from 127.0.0.1, whatever
# address it goes to; the cloud render lists only the plan's addresses.
LOCAL_SOURCE = "127.0.0.1"


def hba_rules(
    plan: Plan, local: bool | None = None, app_networks: Sequence[str] | None = None
) -> list[str]:
    """pg_hba: scram-sha-256 only, and only from the addresses that need each user.

    `local` (default: unless the plan is a cloud plan) adds the loopback source
    every connection on one machine comes from. `app_networks` (CIDRs; a cloud
    plan's default: its data regions' networks) replaces the API instances' /32
    addresses for the application user: in the cloud, API instances come from
    scaler groups and have no fixed address, only their region's network.
    """
    if local is None:
        local = not plan.cloud
    if app_networks is None and plan.cloud:
        app_networks = plan.app_client_networks
    db_hosts = [n.address for n in plan.database_nodes]
    app_hosts = list(plan.app_client_addresses)
    if local:
        db_hosts.append(LOCAL_SOURCE)
        app_hosts.append(LOCAL_SOURCE)
    app_sources = [f"{h}/32" for h in app_hosts] if app_networks is None else list(app_networks)
    database = plan.spec.database.name
    # With internal TLS, a connection in clear text matches no line that admits it.
    admit = "hostssl" if plan.tls else "host"
    rules = ["local all all reject"]
    rules += ["hostnossl all all 0.0.0.0/0 reject"] if plan.tls else []
    rules += [f"{admit} all {SUPERUSER} {h}/32 scram-sha-256" for h in db_hosts]
    rules += [f"{admit} replication {REPLICATION_USER} {h}/32 scram-sha-256" for h in db_hosts]
    rules += [f"{admit} {database} {APP_USER} {s} scram-sha-256" for s in app_sources]
    rules.append("host all all 0.0.0.0/0 reject")
    return rules


def tls_settings(node: Node) -> dict[str, dict[str, Any]]:
    """What internal TLS adds to a database node's Patroni config: PostgreSQL serves
    TLS; Patroni's own connections, replication and pg_rewind verify the server's
    certificate and name (verify-full); its REST API serves HTTPS; it talks to etcd
    with its certificate. Empty when internal TLS is off."""
    if node.ca is None:
        return {}
    verify = libpq_tls(node.ca)
    return {
        "restapi": {
            "certfile": str(node.cert_path),
            "keyfile": str(node.key_path),
            # Also what Patroni verifies other members' REST APIs against.
            "cafile": str(node.ca),
        },
        "etcd3": {
            "protocol": "https",
            "cacert": str(node.ca),
            "cert": str(node.cert_path),
            "key": str(node.key_path),
        },
        "parameters": {
            "ssl": "on",
            "ssl_cert_file": str(node.cert_path),
            "ssl_key_file": str(node.key_path),
            "ssl_min_protocol_version": "TLSv1.2",
        },
        "superuser": verify,
        "replication": verify,
    }


def patroni_config(
    plan: Plan,
    node: Node,
    secrets: Secrets,
    local: bool | None = None,
    app_networks: Sequence[str] | None = None,
) -> dict[str, Any]:
    spec = plan.spec
    timing = spec.patroni
    sync = spec.replication is ReplicationMode.SYNC
    tls = tls_settings(node)
    parameters: dict[str, Any] = {
        "wal_level": "replica",
        "hot_standby": "on",
        "wal_log_hints": "on",  # pg_rewind needs it: a failed primary rejoins by itself
        "wal_sender_timeout": f"{spec.database.wal_sender_timeout_s}s",
        "wal_receiver_timeout": f"{spec.database.wal_sender_timeout_s}s",
        "max_wal_senders": 10,
        "max_replication_slots": 10,
        "wal_keep_size": "256MB",
        "password_encryption": "scram-sha-256",
        "max_connections": 200,
        "hot_standby_feedback": "on",
    }
    return {
        "scope": spec.name,
        "namespace": "/geoha/",
        "name": node.name,
        "log": {"level": "INFO", "format": "%(asctime)s %(levelname)s: %(message)s"},
        "restapi": {
            "listen": node.endpoint("patroni"),
            "connect_address": node.endpoint("patroni"),
            # Unsafe endpoints (POST /switchover, /restart, /reinitialize, PATCH /config)
            # need it; reads (the health and state GETs) stay open.
            "authentication": {"username": REST_USER, "password": secrets.rest},
            **tls.get("restapi", {}),
        },
        "etcd3": {
            "hosts": [e.named_endpoint("client") for e in plan.etcd_nodes],
            **tls.get("etcd3", {}),
        },
        "bootstrap": {
            "dcs": {
                "ttl": timing.ttl_s,
                "loop_wait": timing.loop_wait_s,
                "retry_timeout": timing.retry_timeout_s,
                "maximum_lag_on_failover": timing.maximum_lag_on_failover_bytes,
                "synchronous_mode": sync,
                "failsafe_mode": True,
                "postgresql": {
                    "use_pg_rewind": True,
                    "use_slots": True,
                    "parameters": parameters,
                },
            },
            "initdb": [
                {"encoding": "UTF8"},
                {"locale": "C.UTF-8"},
                "data-checksums",
                {"auth": "scram-sha-256"},
            ],
        },
        "postgresql": {
            "listen": node.endpoint("postgres"),
            "connect_address": node.endpoint("postgres"),
            "data_dir": str(node.data_dir),
            "bin_dir": plan.pg_bin_dir,
            "pgpass": str(node.dir / "pgpass"),
            "authentication": {
                "superuser": {
                    "username": SUPERUSER,
                    "password": secrets.superuser,
                    **tls.get("superuser", {}),
                },
                "replication": {
                    "username": REPLICATION_USER,
                    "password": secrets.replication,
                    **tls.get("replication", {}),
                },
            },
            "parameters": {
                # Every node listens on port 5432 of its own address: no shared socket folder.
                "unix_socket_directories": str(node.dir),
                "logging_collector": "on",
                "log_directory": str(node.dir / "pglog"),
                "log_filename": "postgresql-%a.log",
                "log_truncate_on_rotation": "on",
                "log_min_error_statement": "panic",
                **tls.get("parameters", {}),
            },
            "pg_hba": hba_rules(plan, local, app_networks),
        },
        "tags": {"nofailover": not spec.automatic_failover, "noloadbalance": False},
    }


def render_patroni(
    plan: Plan,
    node: Node,
    secrets: Secrets,
    local: bool | None = None,
    app_networks: Sequence[str] | None = None,
) -> list[File]:
    """The node's Patroni YAML (mode 0600: it holds the superuser and replication passwords).

    `local` and `app_networks` shape pg_hba (see `hba_rules`); by default they
    follow the plan (one machine, or cloud VMs).
    """
    config = patroni_config(plan, node, secrets, local, app_networks)
    text = "# rendered by geoha; changes are overwritten\n" + yaml.safe_dump(
        config, sort_keys=False
    )
    return [File(node.config_path, text, 0o600)]
