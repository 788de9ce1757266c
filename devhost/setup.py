"""First-use set-up (`python -m devhost setup`): generate the local secrets and folders, once.

Set-up is a list of `Step`s. Each step names the files it makes and is skipped when they already exist, so running
set-up again is harmless and later secrets (a dev JWT signing key, SSH keys) are one more `Step` in `STEPS`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devhost.settings import EXAMPLE_SETTINGS, LOCAL_SETTINGS
from devhost.tokens import JWKS_FILE, SIGNING_KEY, make_key_pair

log = logging.getLogger(__name__)

CERT_FILE = Path(".local/certs/azurite.pem")
KEY_FILE = Path(".local/certs/azurite-key.pem")
AZURITE_DIR = Path(".local/azurite")
CERT_DAYS = 365
# Renew the certificate this long before it expires, so a long-lived checkout never starts with a dead cert.
CERT_RENEW_BEFORE = dt.timedelta(days=14)


@dataclass(frozen=True)
class Step:
    """One idempotent set-up step: `make(root)` runs only when `is_done(root)` says the output is missing."""

    name: str
    outputs: tuple[Path, ...]
    make: Callable[[Path], None]
    is_fresh: Callable[[Path], bool] | None = None

    def is_done(self, root: Path) -> bool:
        """True when every output exists (and, if the step checks it, is still fresh)."""
        if not all((root / p).exists() for p in self.outputs):
            return False
        return self.is_fresh is None or self.is_fresh(root)


@dataclass(frozen=True)
class StepResult:
    """What a set-up run did with one step."""

    name: str
    ran: bool


def write_private(path: Path, data: bytes) -> None:
    """Write a secret readable by the owner only (0600), creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to a file that already existed


def make_self_signed_cert(cert_path: Path, key_path: Path, days: int = CERT_DAYS) -> None:
    """Make a self-signed TLS certificate for localhost/127.0.0.1 that is its own CA (a trust anchor for clients)."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _build_cert(key, days)
    write_private(key_path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _build_cert(key: ec.EllipticCurvePrivateKey, days: int) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    # CA:TRUE lets the file be the client's trust anchor; the key identifiers keep strict verifiers
    # (Python 3.13's VERIFY_X509_STRICT) happy.
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_san(), critical=False)
        .add_extension(_key_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
    )
    return builder.sign(key, hashes.SHA256())


def _san() -> x509.SubjectAlternativeName:
    return x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))])


def _key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False)


def cert_is_fresh(cert_path: Path, renew_before: dt.timedelta = CERT_RENEW_BEFORE) -> bool:
    """True when the certificate parses and does not expire within `renew_before`."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return False
    return cert.not_valid_after_utc - renew_before > dt.datetime.now(dt.UTC)


def _make_azurite_cert(root: Path) -> None:
    make_self_signed_cert(root / CERT_FILE, root / KEY_FILE)


def _copy_local_settings(root: Path) -> None:
    source = root / EXAMPLE_SETTINGS
    if not source.is_file():
        raise FileNotFoundError(f"{source} is missing; cannot create {LOCAL_SETTINGS}")
    write_private(root / LOCAL_SETTINGS, source.read_bytes())


def _make_azurite_dir(root: Path) -> None:
    (root / AZURITE_DIR).mkdir(parents=True, exist_ok=True)


def _make_signing_key(root: Path) -> None:
    make_key_pair(root / SIGNING_KEY, root / JWKS_FILE)


STEPS: tuple[Step, ...] = (
    Step("Azurite TLS certificate", (CERT_FILE, KEY_FILE), _make_azurite_cert,
         is_fresh=lambda root: cert_is_fresh(root / CERT_FILE)),
    Step(LOCAL_SETTINGS, (Path(LOCAL_SETTINGS),), _copy_local_settings),
    Step("Azurite data folder", (AZURITE_DIR,), _make_azurite_dir),
    Step("development token signing key", (SIGNING_KEY, JWKS_FILE), _make_signing_key),
)


def run_setup(root: Path, steps: Sequence[Step] = STEPS) -> list[StepResult]:
    """Run every step whose output is missing; return what ran and what was skipped."""
    results = []
    for step in steps:
        if step.is_done(root):
            log.debug("set-up: %s already present", step.name)
            results.append(StepResult(step.name, ran=False))
            continue
        log.info("set-up: making %s", step.name)
        step.make(root)
        results.append(StepResult(step.name, ran=True))
    return results

