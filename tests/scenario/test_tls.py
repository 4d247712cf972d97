"""Every internal link speaks TLS with the deployment's CA, and etcd wants a client
certificate: PostgreSQL (the app's and the replication connections), etcd (client and
peer ports) and Patroni's REST API, on a running deployment."""

from __future__ import annotations

import socket
import ssl

import httpx
import psycopg
import pytest

from geoha.data.secrets import load_or_create_secrets
from geoha.db_access import APP_USER, SUPERUSER
from geoha.plan import Node
from tests.deployment import Deployment

pytestmark = pytest.mark.scenario


def refused_in_clear(dep: Deployment, node: Node, user: str, password: str, dbname: str) -> str:
    """The server's refusal of a connection with sslmode=disable (fails if it admits it)."""
    with pytest.raises(psycopg.OperationalError) as refused:
        dep.connect_as(node.name, user, password, dbname, tls=False).close()
    return str(refused.value)


def handshake(node: Node, port: str, context: ssl.SSLContext) -> None:
    """A TLS handshake, then one read, so a refused client certificate shows (TLS 1.3
    reports it only after the handshake); raises ssl.SSLError or OSError when refused."""
    with (
        socket.create_connection((node.address, node.ports[port]), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=node.address) as tls,
    ):
        tls.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        if not tls.recv(64):
            raise ConnectionResetError("closed without an answer")


def test_postgres_admits_only_tls(shared_deployment: Deployment) -> None:
    dep = shared_deployment
    secrets = load_or_create_secrets(dep.plan.spec, dep.plan.secrets_path)
    for node in dep.plan.database_nodes:
        for user, password, dbname in (
            (APP_USER, secrets.app, "geoha"),
            (SUPERUSER, secrets.superuser, "postgres"),
        ):
            why = refused_in_clear(dep, node, user, password, dbname)
            # The same user, password and database over TLS are let in.
            dep.connect_as(node.name, user, password, dbname).close()
            assert "no encryption" in why, why
    # The app's own connection (`geoha dsn`: verify-full against the CA) is encrypted.
    write_dsn = dep.dsn("delhi", write=True)
    assert "sslmode=verify-full" in write_dsn and "sslrootcert=" in write_dsn
    with psycopg.connect(write_dsn, autocommit=True) as conn:
        own = conn.execute(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        ).fetchone()
    assert own is not None and own[0] is True and own[1] in ("TLSv1.2", "TLSv1.3"), own


def test_replication_is_encrypted(shared_deployment: Deployment) -> None:
    dep = shared_deployment
    dep.wait_for("chennai-db a streaming replica", lambda: dep.replica_streaming("chennai-db"))
    secrets = load_or_create_secrets(dep.plan.spec, dep.plan.secrets_path)
    with dep.connect_as("delhi-db", SUPERUSER, secrets.superuser, "postgres") as conn:
        rows = conn.execute(
            "SELECT r.application_name, s.ssl FROM pg_stat_replication r "
            "JOIN pg_stat_ssl s USING (pid)"
        ).fetchall()
    assert rows == [("chennai-db", True)], rows


def test_etcd_wants_a_client_certificate(shared_deployment: Deployment) -> None:
    dep = shared_deployment
    plan = dep.plan
    assert plan.ca_path.exists()
    with_cert = ssl.create_default_context(cafile=str(plan.ca_path))
    with_cert.load_cert_chain(str(plan.client_cert_path), str(plan.client_key_path))
    without_cert = ssl.create_default_context(cafile=str(plan.ca_path))
    for node in plan.etcd_nodes:
        # geoha's own certificate is let in, on the client port.
        answer = httpx.get(node.url("client", "/health"), verify=with_cert, timeout=5)
        assert answer.status_code == 200 and answer.json()["health"] == "true"
        # The peer port lets a member in (etcd checks its address against its certificate).
        member = ssl.create_default_context(cafile=str(plan.ca_path))
        member.load_cert_chain(str(node.cert_path), str(node.key_path))
        handshake(node, "client", with_cert)
        handshake(node, "peer", member)
        for port in ("client", "peer"):
            with pytest.raises((ssl.SSLError, OSError)):
                handshake(node, port, without_cert)
            # Plain HTTP gets no etcd answer: Go's TLS listener only says it wants TLS.
            plain = f"http://{node.endpoint(port)}/v3/kv/range"
            try:
                answer = httpx.post(plain, json={"key": "Lw=="}, timeout=5)
            except httpx.HTTPError:
                continue
            assert answer.status_code == 400 and "HTTPS" in answer.text, answer.text


def test_patroni_rest_is_https_and_its_unsafe_endpoints_want_credentials(
    shared_deployment: Deployment,
) -> None:
    dep = shared_deployment
    for node in dep.plan.database_nodes:
        with dep.patroni(node.name) as patroni:
            assert patroni.base_url.scheme == "https"
            assert patroni.get("/patroni").status_code == 200
            assert patroni.post("/restart", json={}).status_code == 401
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://{node.endpoint('patroni')}/patroni", timeout=5)
        # Not signed by the deployment's CA: a client that trusts only the system's
        # authorities refuses the certificate.
        with pytest.raises(httpx.ConnectError):
            httpx.get(node.url("patroni", "/patroni"), timeout=5)
