"""etcd member configuration (etcd --config-file YAML)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from geoha.plan import Node, Plan
from geoha.render.files import File


def peer_url(node: Node) -> str:
    return node.named_url("peer")


def client_url(node: Node) -> str:
    return node.named_url("client")


def transport_security(node: Node, ca: Path) -> dict[str, Any]:
    """TLS with the member's certificate, and only clients (or peers) holding a
    certificate from the deployment's CA get an answer."""
    return {
        "cert-file": str(node.cert_path),
        "key-file": str(node.key_path),
        "trusted-ca-file": str(ca),
        "client-cert-auth": True,
    }


def render_etcd(plan: Plan, node: Node) -> list[File]:
    """The config of one etcd member of the deployment's three-region DCS."""
    members = ",".join(f"{m.name}={peer_url(m)}" for m in plan.etcd_nodes)
    tls: dict[str, Any] = {}
    if node.ca is not None:
        tls = {
            "client-transport-security": transport_security(node, node.ca),
            "peer-transport-security": transport_security(node, node.ca),
        }
    config = {
        "name": node.name,
        "data-dir": str(node.data_dir),
        "listen-client-urls": node.listen_url("client"),
        "advertise-client-urls": client_url(node),
        # /health and /metrics only, without the key-value API: the API's DCS fence.
        "listen-metrics-urls": node.url("health"),
        "listen-peer-urls": node.listen_url("peer"),
        "initial-advertise-peer-urls": peer_url(node),
        "initial-cluster": members,
        "initial-cluster-token": f"{plan.spec.name}-dcs",
        "initial-cluster-state": "new",
        # Loopback "regions": a fast heartbeat lets a member notice a dead peer quickly.
        "heartbeat-interval": 100,
        "election-timeout": 1000,
        "enable-v2": False,
        # With --config-file, options left out take Go zero values, not etcd's defaults:
        # Patroni's etcd3 client needs the gRPC JSON gateway.
        "enable-grpc-gateway": True,
        "log-level": "warn",
        "logger": "zap",
        "log-outputs": ["stderr"],
        **tls,
    }
    text = "# rendered by geoha; changes are overwritten\n" + yaml.safe_dump(
        config, sort_keys=False
    )
    return [File(node.config_path, text, 0o644)]
