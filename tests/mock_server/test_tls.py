"""The mock's local CA and server certificate: made, reused, and accepted by a real handshake."""

from __future__ import annotations

import http.server
import ssl
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from mock_server.tls import TlsFiles, make_tls_files


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello over tls"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    return make_tls_files(tmp_path / "tls")


@pytest.fixture
def https_url(tls_files: TlsFiles) -> Iterator[str]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files.cert_chain, tls_files.private_key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


def _contents(files: TlsFiles) -> dict[str, bytes]:
    paths = (files.ca_cert, files.ca_bundle, files.cert_chain, files.private_key)
    return {path.name: path.read_bytes() for path in paths}


def test_files_are_created(tls_files: TlsFiles) -> None:
    ca_pem = tls_files.ca_cert.read_bytes()
    assert len(x509.load_pem_x509_certificates(ca_pem)) == 1
    assert tls_files.ca_bundle.read_bytes().startswith(ca_pem.rstrip(b"\n"))
    assert x509.load_pem_x509_certificates(tls_files.cert_chain.read_bytes())
    assert b"PRIVATE KEY" in tls_files.private_key.read_bytes()
    if sys.platform != "win32":
        assert stat.S_IMODE(tls_files.private_key.stat().st_mode) == 0o600


def test_bundle_adds_public_roots_when_certifi_is_present(tls_files: TlsFiles) -> None:
    pytest.importorskip("certifi")
    # Count PEM blocks rather than parse: some public roots trip cryptography's deprecation
    # warnings (non-positive serial numbers), which this suite turns into errors.
    assert tls_files.ca_bundle.read_bytes().count(b"-----BEGIN CERTIFICATE-----") > 1


def test_second_call_reuses_the_files(tls_files: TlsFiles, tmp_path: Path) -> None:
    assert _contents(make_tls_files(tmp_path / "tls")) == _contents(tls_files)


def test_new_files_when_a_host_is_not_covered(tls_files: TlsFiles, tmp_path: Path) -> None:
    before = _contents(tls_files)
    again = make_tls_files(tmp_path / "tls", hosts=("mock.example.test",))
    assert _contents(again)["server-chain.pem"] != before["server-chain.pem"]
    leaf = x509.load_pem_x509_certificates(again.cert_chain.read_bytes())[0]
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["mock.example.test"]


def test_new_files_when_the_old_ones_are_damaged(tls_files: TlsFiles, tmp_path: Path) -> None:
    tls_files.cert_chain.write_bytes(b"garbage")
    again = make_tls_files(tmp_path / "tls")
    assert x509.load_pem_x509_certificates(again.cert_chain.read_bytes())


def test_handshake_succeeds_with_the_local_ca(tls_files: TlsFiles, https_url: str) -> None:
    for cafile in (tls_files.ca_cert, tls_files.ca_bundle):
        verify = ssl.create_default_context(cafile=str(cafile))
        with httpx.Client(verify=verify, timeout=5) as client:
            response = client.get(https_url)
        assert response.status_code == 200
        assert response.text == "hello over tls"


def test_handshake_fails_without_the_local_ca(https_url: str) -> None:
    # Proves the check above can fail: the system roots do not know the mock's CA.
    with (
        httpx.Client(verify=ssl.create_default_context(), timeout=5) as client,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.get(https_url)
