"""The lab's CA and the server certificates it signs (the emulator's: SAN 127.0.0.1 + localhost)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE = "ca.pem"
CA_KEY = "ca-key.pem"
CERT_FILE = "pve-ssl.pem"
KEY_FILE = "pve-ssl.key"
SAN_IPS = ("127.0.0.1",)
SAN_DNS = ("localhost",)


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _new_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "homelab-lab PVE CA")])
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(directory / CA_KEY, _key_pem(key), 0o600)
    _write(directory / CA_FILE, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert, key


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    try:
        cert = x509.load_pem_x509_certificate((directory / CA_FILE).read_bytes())
        key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), None)
    except (OSError, ValueError):
        return None
    if cert.not_valid_after_utc < dt.datetime.now(dt.UTC) + dt.timedelta(days=30):
        return None
    return cert, key  # type: ignore[return-value]


def _san(ips: tuple[str, ...], dns: tuple[str, ...]) -> list[x509.GeneralName]:
    return [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips] + [x509.DNSName(n) for n in dns]


def _server_cert_ok(cert_file: Path, key_file: Path, ca: x509.Certificate,
                    san: list[x509.GeneralName]) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        key_file.stat()
        have = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    if cert.issuer != ca.subject or set(have) != set(san):
        return False
    if cert.not_valid_after_utc < dt.datetime.now(dt.UTC) + dt.timedelta(days=30):
        return False
    try:
        ca.public_key().verify(  # type: ignore[call-arg]
            cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm)
        )
    except Exception:  # noqa: BLE001 - any verification failure means "reissue"
        return False
    return True


def _new_server_cert(cert_file: Path, key_file: Path, ca: x509.Certificate, ca_key,
                     san: list[x509.GeneralName], common_name: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(
            x509.KeyUsage(True, False, False, False, True, False, False, False, False), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(key_file, _key_pem(key), 0o600)
    _write(cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def ensure_server_cert(directory: str | os.PathLike, cert_file: str | os.PathLike,
                       key_file: str | os.PathLike, ips: tuple[str, ...] = SAN_IPS,
                       dns: tuple[str, ...] = SAN_DNS) -> tuple[str, str, str]:
    """Create (or reuse) the CA in directory and a cert it signs for these SANs; return (ca, cert, key)."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    loaded = _load_ca(path)
    ca, ca_key = loaded if loaded else _new_ca(path)
    cert, key, san = Path(cert_file), Path(key_file), _san(ips, dns)
    if not _server_cert_ok(cert, key, ca, san):
        cert.parent.mkdir(parents=True, exist_ok=True)
        _new_server_cert(cert, key, ca, ca_key, san, (ips or dns)[0])
    return str(path / CA_FILE), str(cert), str(key)


def ensure_ca(directory: str | os.PathLike) -> tuple[str, str, str]:
    """Create (or reuse) the CA and the emulator's server cert it signs; return (ca_file, cert_file, key_file)."""
    path = Path(directory)
    return ensure_server_cert(path, path / CERT_FILE, path / KEY_FILE)
