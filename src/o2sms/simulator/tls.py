"""A self-signed certificate for the TLS listener when none is given (like smpp-ssl on 8887).

Generated with :mod:`cryptography` at start: an ECDSA P-256 key and a certificate valid for a
year, naming ``localhost`` and the listening host, so clients can trust it by its PEM
(:meth:`o2sms.simulator.Simulator.client_ssl_context`).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _san(hosts: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    seen: set[str] = set()
    for host in hosts:
        if not host or host in seen:
            continue
        seen.add(host)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def self_signed(hosts: Iterable[str] = ("localhost", "127.0.0.1")) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) of a fresh self-signed certificate for ``hosts``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "o2sms simulator")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(_san(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem


def write_self_signed(
    directory: str | Path, hosts: Iterable[str] = ("localhost", "127.0.0.1")
) -> tuple[str, str]:
    """Write a fresh self-signed certificate and key into ``directory``; their paths."""
    cert_pem, key_pem = self_signed((*hosts, "localhost", "127.0.0.1"))
    directory = Path(directory)
    certfile = directory / "simulator-cert.pem"
    keyfile = directory / "simulator-key.pem"
    certfile.write_bytes(cert_pem)
    keyfile.write_bytes(key_pem)
    os.chmod(keyfile, 0o600)
    return str(certfile), str(keyfile)


__all__ = ["self_signed", "write_self_signed"]
