"""`geoha ca --renew`: every frontend LB gets a new certificate from the deployment's CA
and serves it at once, without a restart; HTTPS clients that trust the CA go on."""

from __future__ import annotations

import ssl

import httpx
import pytest
from cryptography import x509

from geoha.runtime.process import read_record
from tests.deployment import Deployment

pytestmark = pytest.mark.scenario


def served_serial(address: str, port: int) -> int:
    pem = ssl.get_server_certificate((address, port), timeout=5)
    return x509.load_pem_x509_certificate(pem.encode()).serial_number


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
