"""`geoha ca --renew`: every node that holds a certificate gets a new one from the
deployment's CA and serves it at once, without a restart: the frontend LBs, Patroni's
REST API and etcd; clients that trust the CA go on."""

from __future__ import annotations

import functools
import socket
import ssl

import httpx
import psycopg
import pytest
from cryptography import x509

from geoha.runtime.process import read_record
from tests.deployment import Deployment

pytestmark = pytest.mark.scenario


def served_serial(address: str, port: int, context: ssl.SSLContext | None = None) -> int:
    """The serial number of the certificate served at address:port (verified by `context`
    when given, which may carry a client certificate)."""
    if context is None:
        pem = ssl.get_server_certificate((address, port), timeout=5)
        return x509.load_pem_x509_certificate(pem.encode()).serial_number
    with (
        socket.create_connection((address, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=address) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def pid_of(dep: Deployment, name: str) -> int:
    record = read_record(dep.plan.node(name).dir)
    assert record is not None, name
    return record.pid


def test_renewed_certificates_are_served_without_a_restart(shared_deployment: Deployment) -> None:
    dep = shared_deployment
    ca = dep.plan.run_dir / "tls" / "ca.pem"
    fes = [dep.plan.node(f"{region}-fe") for region in dep.plan.spec.data_regions]
    before = {fe.name: served_serial(fe.address, fe.ports["https"]) for fe in fes}
    pids = {fe.name: pid_of(dep, fe.name) for fe in fes}
    renewed = dep.geoha("ca", "--renew")
    for fe in fes:
        assert f"{fe.name}: new certificate, valid until " in renewed.stdout
        assert "in use now, without a restart" in renewed.stdout
        assert served_serial(fe.address, fe.ports["https"]) != before[fe.name]
        assert pid_of(dep, fe.name) == pids[fe.name]  # the same HAProxy: no restart
        url = f"https://{fe.address}:{fe.ports['https']}/health/"
        trusting = ssl.create_default_context(cafile=str(ca))
        assert httpx.get(url, verify=trusting, timeout=5).status_code == 200


def test_renewed_internal_certificates_are_served_without_a_restart(
    shared_deployment: Deployment,
) -> None:
    dep = shared_deployment
    plan = dep.plan
    client = ssl.create_default_context(cafile=str(plan.ca_path))
    client.load_cert_chain(str(plan.client_cert_path), str(plan.client_key_path))
    served = {n.name: (n.address, n.ports["patroni"]) for n in plan.database_nodes}
    served |= {n.name: (n.address, n.ports["client"]) for n in plan.etcd_nodes}

    def serial(name: str) -> int | None:
        try:
            return served_serial(*served[name], client)
        except OSError:  # Patroni restarts its REST server to load a new certificate
            return None

    def serves(name: str, new: int) -> bool:
        return serial(name) == new

    def on_disk(name: str) -> int:
        pem = plan.node(name).cert_path.read_bytes()
        return x509.load_pem_x509_certificate(pem).serial_number

    before = {name: on_disk(name) for name in served}
    pids = {name: pid_of(dep, name) for name in served}
    renewed = dep.geoha("ca", "--renew").stdout
    for name in served:
        assert f"{name}: new certificate, valid until " in renewed
        new = on_disk(name)
        assert new != before[name]
        dep.wait_for(f"{name} serving its new certificate", functools.partial(serves, name, new))
        assert pid_of(dep, name) == pids[name]
    # Replication and the app's connections go on with the new certificates.
    dep.wait_for("chennai-db streaming", lambda: dep.replica_streaming("chennai-db"))
    with psycopg.connect(dep.dsn("delhi", write=True), autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
