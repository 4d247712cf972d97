"""A deployment's own certificate authority and the frontend LBs' server certificates.

`RUN_DIR/tls/ca.pem` is the CA clients trust (`geoha ca` prints it); its key
(`ca.key`, mode 0600) never leaves the run directory. Each frontend LB gets a
certificate for its region's names and address, written with its key into
one PEM file (mode 0600), as HAProxy expects. Each node with internal TLS
(PostgreSQL, Patroni's REST API, etcd) gets one for its name and address, good
for server and client use (geoha.runtime.certificates).
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from geoha.plan import Plan
from geoha.render.files import File, write_files

CA_DAYS = 3650
SERVER_DAYS = 397
RENEW_BEFORE_DAYS = 30
"""A certificate with fewer days left is issued again when its node's configs are rendered."""
PEM = serialization.Encoding.PEM
CA = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
"""The deployment's CA: its certificate and key."""


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "geoha"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def load_ca(cert_path: Path, key_path: Path) -> CA:
    """A CA from its certificate and key files; ValueError naming the file when either
    is not one."""
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except ValueError as exc:
        raise ValueError(
            f"{cert_path} / {key_path}: not a PEM CA certificate and key ({exc})"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_path}: not an EC private key")
    return cert, key


def new_ca(common_name: str) -> CA:
    """A new CA (P-256, CA_DAYS) that signs only end-entity certificates."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return cert, key


def ca_files(ca: CA, cert_path: Path, key_path: Path) -> list[File]:
    """The CA's certificate (0644) and key (0600) as files."""
    cert, key = ca
    return [
        File(key_path, _key_pem(key).decode(), 0o600),
        File(cert_path, cert.public_bytes(PEM).decode(), 0o644),
    ]


def ensure_ca(tls_dir: Path, deployment: str) -> CA:
    """Load the deployment's CA, creating it on first use."""
    cert_path, key_path = tls_dir / "ca.pem", tls_dir / "ca.key"
    if cert_path.exists() and key_path.exists():
        return load_ca(cert_path, key_path)
    ca = new_ca(f"geoha {deployment} local CA")
    write_files(ca_files(ca, cert_path, key_path))
    return ca


def issue(
    ca: CA, names: list[str], addresses: list[str], *, server: bool, client: bool
) -> tuple[str, str]:
    """A certificate for `names` and `addresses` (at least one of either) signed by `ca`,
    good for TLS `server` and/or `client` use, and its new key: (certificate PEM, key PEM)."""
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] if server else []
    usages += [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name((names or addresses)[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(PEM).decode(), _key_pem(key).decode()


def server_pem(ca: CA, names: list[str], addresses: list[str]) -> str:
    """A server certificate for `names` and `addresses`, followed by its key (HAProxy's format)."""
    cert, key = issue(ca, names, addresses, server=True, client=False)
    return cert + ca[0].public_bytes(PEM).decode() + key


def valid_for(
    cert_path: Path, key_path: Path, ca_path: Path, names: list[str], addresses: list[str]
) -> bool:
    """Whether the certificate at `cert_path` was issued by the CA at `ca_path`, goes with
    the key at `key_path` (a write cut between the two leaves a pair that does not), names
    exactly `names` and `addresses`, and has more than RENEW_BEFORE_DAYS left."""
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        ca_cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        cert.verify_directly_issued_by(ca_cert)  # a new CA of the same name does not pass
    except (OSError, ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    return (
        key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki)
        and sorted(alt.get_values_for_type(x509.DNSName)) == sorted(names)
        and sorted(str(a) for a in alt.get_values_for_type(x509.IPAddress)) == sorted(addresses)
        and left > dt.timedelta(days=RENEW_BEFORE_DAYS)
    )


@dataclass(frozen=True)
class ClientTls:
    """How geoha's own clients verify the deployment's servers (against its CA, names
    and addresses checked), and the client certificate they show a server that asks
    for one (etcd). Paths, as text: the cloud watcher reads it from JSON."""

    ca: str
    cert: str | None = None
    key: str | None = None


@functools.cache
def _context(ca: str, cert: str | None, key: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca)
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context


def context(tls: ClientTls | None) -> ssl.SSLContext | None:
    """The client SSL context for `tls`; None (no internal TLS): none, plain connections."""
    return None if tls is None else _context(tls.ca, tls.cert, tls.key)


def verify(tls: ClientTls | None) -> ssl.SSLContext | bool:
    """httpx's `verify` for `tls`; None (no internal TLS): the default, for plain HTTP."""
    return context(tls) or True


def ca_only(ca: Path | None) -> ClientTls | None:
    """Verifying servers against `ca` without a client certificate; None for None."""
    return None if ca is None else ClientTls(str(ca))


def client_tls(plan: Plan) -> ClientTls | None:
    """The TLS of geoha's clients that talk to etcd (the controller, its watcher): the
    CA and geoha's client certificate; None with internal TLS off."""
    if not plan.tls:
        return None
    return ClientTls(str(plan.ca_path), str(plan.client_cert_path), str(plan.client_key_path))
