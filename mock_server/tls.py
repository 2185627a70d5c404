"""A local certificate authority and server certificate for the mock's ``--tls`` mode.

fal-client builds ``https://`` URLs from its host settings, so a live mock that clients reach by
environment variables alone must speak TLS with a certificate they trust. The files are made
with trustme, kept in a directory, and reused across runs while they are still good, so a CA
that a user pointed a client at once stays the same.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import trustme
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

DEFAULT_HOSTS: Final = ("127.0.0.1", "localhost", "::1")

_CA_CERT: Final = "ca.pem"
_CA_BUNDLE: Final = "ca-bundle.pem"
_CERT_CHAIN: Final = "server-chain.pem"
_PRIVATE_KEY: Final = "server-key.pem"

# One year rather than trustme's default (the year 3000): some TLS stacks (Apple's) reject
# server certificates valid for longer than 825 days, and a bounded lifetime is what makes the
# reuse check below meaningful.
_LEAF_LIFETIME: Final = dt.timedelta(days=365)
_MIN_REMAINING: Final = dt.timedelta(days=1)
_CLOCK_SKEW: Final = dt.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Paths of the PEM files for one mock server.

    - ``ca_cert``: the local CA's certificate alone; give it to a client as its only trust
      anchor (``ssl.create_default_context(cafile=...)``, ``NODE_EXTRA_CA_CERTS``).
    - ``ca_bundle``: the local CA followed by certifi's bundle (when ``certifi`` is importable).
      Setting ``SSL_CERT_FILE`` (or ``REQUESTS_CA_BUNDLE``) to it lets a process trust the mock
      while its other HTTPS connections keep working. Without certifi it is the CA alone.
    - ``cert_chain``: the server certificate followed by its chain, for the server.
    - ``private_key``: the server certificate's key (mode 0o600).
    """

    ca_cert: Path
    ca_bundle: Path
    cert_chain: Path
    private_key: Path


def make_tls_files(directory: Path, hosts: Sequence[str] = DEFAULT_HOSTS) -> TlsFiles:
    """Return TLS files in ``directory`` for a server reachable as each of ``hosts``.

    Existing files are reused when all of them are present, parse, belong together, and the
    server certificate covers every host and stays valid for at least another day; otherwise a
    new CA and certificate replace them. ``hosts`` are DNS names or IP addresses.
    """
    if isinstance(hosts, str):  # a lone "localhost" is a Sequence[str] too
        hosts = (hosts,)
    if not hosts:
        raise ValueError("make_tls_files needs at least one host name or IP address")
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(
        ca_cert=directory / _CA_CERT,
        ca_bundle=directory / _CA_BUNDLE,
        cert_chain=directory / _CERT_CHAIN,
        private_key=directory / _PRIVATE_KEY,
    )
    ca_pem = files.ca_cert.read_bytes() if _reusable(files, hosts) else _issue(files, hosts)
    # The bundle is derived from the CA: rebuild it when certifi's bundle has changed since.
    bundle = _bundle(ca_pem)
    if not files.ca_bundle.is_file() or files.ca_bundle.read_bytes() != bundle:
        _write_atomic(files.ca_bundle, bundle, mode=0o644)
    return files


def _issue(files: TlsFiles, hosts: Sequence[str]) -> bytes:
    ca = trustme.CA(organization_name="fal-lipsync-mock")
    now = dt.datetime.now(dt.UTC)
    leaf = ca.issue_cert(
        *hosts,
        organization_name="fal-lipsync-mock",
        not_before=now - _CLOCK_SKEW,
        not_after=now + _LEAF_LIFETIME,
    )
    ca_pem: bytes = ca.cert_pem.bytes()
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    # Key first: a reader that sees the new chain must never pair it with the old key.
    _write_atomic(files.private_key, leaf.private_key_pem.bytes(), mode=0o600)
    _write_atomic(files.cert_chain, chain, mode=0o644)
    _write_atomic(files.ca_cert, ca_pem, mode=0o644)
    return ca_pem


def _reusable(files: TlsFiles, hosts: Sequence[str]) -> bool:
    if not all(path.is_file() for path in (files.ca_cert, files.cert_chain, files.private_key)):
        return False
    try:
        ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
        chain = x509.load_pem_x509_certificates(files.cert_chain.read_bytes())
        key = serialization.load_pem_private_key(files.private_key.read_bytes(), password=None)
        leaf = chain[0]
        leaf.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        # Unreadable, mismatched or half-written files: make a fresh set rather than fail.
        return False
    if key.public_key() != leaf.public_key():
        return False
    now = dt.datetime.now(dt.UTC)
    for cert in (ca, leaf):
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc - _MIN_REMAINING:
            return False
    return _covers(leaf, hosts)


def _covers(cert: x509.Certificate, hosts: Sequence[str]) -> bool:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    dns_names = {name.lower() for name in names.get_values_for_type(x509.DNSName)}
    addresses = set(names.get_values_for_type(x509.IPAddress))
    for host in hosts:
        try:
            if ipaddress.ip_address(host.strip("[]")) not in addresses:
                return False
        except ValueError:
            if host.lower() not in dns_names:
                return False
    return True


def _bundle(ca_pem: bytes) -> bytes:
    try:
        import certifi
    except ImportError:  # certifi is optional: the CA alone is still a valid bundle
        return ca_pem
    public_roots = Path(certifi.where()).read_bytes()
    return ca_pem.rstrip(b"\n") + b"\n" + public_roots


def _write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    # mkstemp creates the file with mode 0o600, so a key is never readable by others, not even
    # for a moment; readers see either the old file or the complete new one.
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
