"""The platform's own certificate authority and the broker's certificate.

Made on the first start of a platform home and kept in `<home>/tls/`: clients trust only
this CA, the broker proves its name with a certificate the CA signed. The CA's private
key never leaves the home (mode 0600); the broker's key and certificate chain sit in
one PEM file, which Kafka reads as a PEM keystore.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_NAME = "Panjereh platform CA"
#: The broker nodes' certificate subject; the controller listener maps it to `admin`.
NODE_COMMON_NAME = "panjereh-kafka-node"
_CA_YEARS = 10
_NODE_DAYS = 825


def _write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read, never leaving it readable for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def _pkcs8(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class PlatformTls:
    """The TLS material of one platform home."""

    directory: Path

    @property
    def ca_file(self) -> Path:
        """The CA certificate: what every client trusts (`ssl.ca.location`)."""
        return self.directory / "ca.pem"

    @property
    def ca_key_file(self) -> Path:
        return self.directory / "ca-key.pem"

    @property
    def node_keystore(self) -> Path:
        """The broker's private key and certificate chain, one PEM file."""
        return self.directory / "kafka-node.pem"

    def ensure(self, hostnames: tuple[str, ...] = ("localhost",)) -> None:
        """Create the CA and the node certificate unless both exist and name `hostnames`."""
        if not (self.ca_file.exists() and self.ca_key_file.exists()):
            self._new_ca()
            self.node_keystore.unlink(missing_ok=True)
        if not self._node_covers(hostnames):
            self._new_node(hostnames)

    def _new_ca(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365 * _CA_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        _write_private(self.ca_key_file, _pkcs8(key))
        self.ca_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))

    def _node_covers(self, hostnames: tuple[str, ...]) -> bool:
        if not self.node_keystore.exists():
            return False
        certificate = x509.load_pem_x509_certificates(self.node_keystore.read_bytes())[0]
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        dns = set(names.value.get_values_for_type(x509.DNSName))
        remaining = certificate.not_valid_after_utc - dt.datetime.now(dt.UTC)
        return set(hostnames) <= dns and remaining > dt.timedelta(days=30)

    def _new_node(self, hostnames: tuple[str, ...]) -> None:
        ca_key = serialization.load_pem_private_key(self.ca_key_file.read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        ca_certificate = x509.load_pem_x509_certificate(self.ca_file.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        alternative_names: list[x509.GeneralName] = [x509.DNSName(name) for name in hostnames]
        alternative_names += [
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NODE_COMMON_NAME)]))
            .issuer_name(ca_certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=_NODE_DAYS))
            .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            # Server for clients, client towards the controller listener (mutual TLS).
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        chain = certificate.public_bytes(serialization.Encoding.PEM) + self.ca_file.read_bytes()
        _write_private(self.node_keystore, _pkcs8(key) + chain)
