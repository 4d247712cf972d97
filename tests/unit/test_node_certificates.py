"""Certificates in the cloud: the identity files cloud-init writes, made real by the boot
address step and signed at boot (geoha.cloud.node_certificates), and `geoha ca --cloud`."""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from geoha.cloud import boot_addresses
from geoha.cloud.cloudinit import identities, render_vm
from geoha.cloud.node_certificates import USAGES, Identity, ensure, parse_identity
from geoha.cloud.vms import cloud_plan, cloud_vms
from geoha.render.files import write_files
from geoha.spec import load_spec, parse_spec
from geoha.traffic.tls import ca_files, issue, new_ca, valid_for
from tests.unit.cloud_specs import E2E_WITNESS

ME = pwd.getpwuid(os.getuid()).pw_name


def make_ca(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "ca.pem", folder / "ca.key"
    write_files(ca_files(new_ca("test CA"), cert, key))
    return cert, key


def alt_names(path: Path) -> tuple[list[str], list[str], list[x509.ObjectIdentifier]]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    return (
        alt.get_values_for_type(x509.DNSName),
        [str(a) for a in alt.get_values_for_type(x509.IPAddress)],
        list(usage),
    )


def test_a_database_vm_signs_certificates_for_its_real_address(tmp_path: Path) -> None:
    plan = cloud_plan(load_spec(None))
    vm = next(v for v in cloud_vms(plan) if v.name == "delhi-db")
    found = identities(plan, vm)
    assert [i.label for i in found] == ["delhi-db", "delhi-etcd"]
    ca_cert, ca_key = make_ca(tmp_path)
    real = "10.77.0.23"  # what E2E gave the VM; the files hold the slots
    for identity in found:
        text = boot_addresses.substitute(identity.render(), {a: real for a in identity.addresses})
        parsed = parse_identity(text, "x.identity")
        assert parsed.addresses == (real,)
        moved = Identity(
            tmp_path / parsed.label / "node.crt",
            tmp_path / parsed.label / "node.key",
            ME,
            parsed.names,
            parsed.addresses,
            parsed.usages,
        )
        assert ensure(moved, ca_cert, ca_key) is True
        names, addresses, usages = alt_names(moved.cert)
        assert addresses == [real]
        assert names == [parsed.label, f"{parsed.label}.internal.geoha.test"]
        assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
        assert stat.S_IMODE(moved.key.stat().st_mode) == 0o600
        assert stat.S_IMODE(moved.cert.parent.stat().st_mode) == 0o700
        # The next boot, same address: kept; a new address: issued again.
        assert ensure(moved, ca_cert, ca_key) is False
        again = Identity(moved.cert, moved.key, ME, moved.names, ("10.77.0.24",), moved.usages)
        assert ensure(again, ca_cert, ca_key) is True
        assert alt_names(moved.cert)[1] == ["10.77.0.24"]


def test_the_watcher_gets_a_client_certificate_and_the_web_vms_none() -> None:
    plan = cloud_plan(parse_spec(E2E_WITNESS))
    by_name = {vm.name: vm for vm in cloud_vms(plan)}
    (watcher,) = identities(plan, by_name["mumbai-etcd"])[1:]
    assert watcher.usages == frozenset({"client"}) and watcher.addresses == ()
    assert watcher.cert == plan.client_cert_path
    assert identities(plan, by_name["delhi-web"]) == []
    # An AWS witness runs no watcher: its own member's certificate only.
    reference = cloud_plan(load_spec(None))
    (member,) = identities(reference, {vm.name: vm for vm in cloud_vms(reference)}["mumbai-etcd"])
    assert member.names == ("mumbai-etcd", "mumbai-etcd.internal.geoha.test")


def test_internal_tls_off_renders_no_certificate() -> None:
    plan = cloud_plan(parse_spec({"security": {"internal_tls": False}}))
    for vm in cloud_vms(plan):
        text = render_vm(plan, vm)
        assert "ca_key" not in text and "geoha-certificates" not in text, vm.name


@pytest.mark.parametrize(
    ("text", "wrong"),
    [
        ("cert /a\nkey /b\nowner x\nusage server\n", "missing a name or an address"),
        ("cert /a\nkey /b\nname n\nusage server\n", "missing owner"),
        ("cert /a\nkey /b\nowner x\nname n\n", "missing usage"),
        ("cert /a\nkey /b\nowner x\nname n\nusage server peer\n", ":5: not an identity line"),
        ("cert /a\ncert /c\nkey /b\nowner x\nname n\nusage server\n", ":2: not an identity"),
    ],
)
def test_a_bad_identity_file_is_named(text: str, wrong: str) -> None:
    with pytest.raises(ValueError, match=wrong):
        parse_identity(text, "f.identity")


def test_cli_makes_a_cloud_ca_and_never_overwrites_one(tmp_path: Path) -> None:
    folder = tmp_path / "cloud-ca"

    def ca(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "geoha", "ca", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            check=False,
        )

    made = ca("--cloud", str(folder))
    assert made.returncode == 0, made.stderr
    assert "TF_VAR_internal_ca_key" in made.stdout
    key = (folder / "ca.key").read_text()
    assert stat.S_IMODE((folder / "ca.key").stat().st_mode) == 0o600
    assert key not in made.stdout + made.stderr
    cert = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    again = ca("--cloud", str(folder))
    assert again.returncode != 0 and "--cloud" in again.stderr and "already exist" in again.stderr
    assert (folder / "ca.key").read_text() == key


def test_a_certificate_is_kept_only_for_the_same_names_and_the_same_ca(tmp_path: Path) -> None:
    ca_cert, ca_key = make_ca(tmp_path)
    identity = Identity(
        tmp_path / "n" / "node.crt",
        tmp_path / "n" / "node.key",
        ME,
        ("n",),
        ("10.0.0.1",),
        frozenset(USAGES),
    )
    assert not valid_for(identity.cert, identity.key, ca_cert, ["n"], ["10.0.0.1"])  # none yet
    assert ensure(identity, ca_cert, ca_key) is True
    assert valid_for(identity.cert, identity.key, ca_cert, ["n"], ["10.0.0.1"])
    assert not valid_for(identity.cert, identity.key, ca_cert, ["n", "m"], ["10.0.0.1"])
    assert not valid_for(identity.cert, identity.key, ca_cert, ["n"], ["10.0.0.2"])
    # A key that does not go with the certificate (a write cut between the two).
    good_key = identity.key.read_text()
    identity.key.write_text(issue(new_ca("x"), ["n"], [], server=True, client=False)[1])
    assert not valid_for(identity.cert, identity.key, ca_cert, ["n"], ["10.0.0.1"])
    identity.key.write_text(good_key)
    # A new CA of the very same name signed nothing of it: issued again.
    other = tmp_path / "other"
    other.mkdir()
    other_cert, other_key = make_ca(other)
    assert not valid_for(identity.cert, identity.key, other_cert, ["n"], ["10.0.0.1"])
    assert ensure(identity, other_cert, other_key) is True
    assert valid_for(identity.cert, identity.key, other_cert, ["n"], ["10.0.0.1"])
