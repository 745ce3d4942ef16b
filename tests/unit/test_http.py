"""plugins/health/web.py against real HTTP(S) servers on 127.0.0.1."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import re
import ssl
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from plain_http import free_port

from plugins.health.web import accepted_codes, check_service, wait_for_service
from plugins.inventory import Service as InventoryService

pytestmark = pytest.mark.unit


def Service(name: str, url: str, **fields):
    """An inventory service (the model plugins/health/web.py is typed on), with the suite's usual codes."""
    return InventoryService(name=name, url=url, **{"accepted": [200], "warmup": [502, 503], "deadline": 2.0, **fields})


class Behaviour:
    """What the test server answers: a code per path, optionally 503 until a moment has passed."""

    def __init__(self, code=200, location=None, warm_until=0.0):
        self.code, self.location, self.warm_until = code, location, warm_until
        self.requests: list[str] = []


def serve(behaviour: Behaviour, tls_context: ssl.SSLContext | None = None):
    """Start an HTTP server on 127.0.0.1 in a thread; give (server, base url)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            behaviour.requests.append(self.path)
            code = 503 if time.monotonic() < behaviour.warm_until else behaviour.code
            if self.path == "/landing":
                code = 200
            self.send_response(code)
            if behaviour.location and 300 <= code < 400:
                self.send_header("Location", behaviour.location)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    scheme = "http"
    if tls_context is not None:
        server.socket = tls_context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, f"{scheme}://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def server():
    """Give a function that starts a server with a behaviour; all are shut down after the test."""
    started = []

    def start(behaviour, tls_context=None):
        srv, url = serve(behaviour, tls_context)
        started.append(srv)
        return url

    yield start
    for srv in started:
        srv.shutdown()
        srv.server_close()


def test_200_passes(server):
    url = server(Behaviour(200))
    result = wait_for_service(Service("app-demo", url + "/health"))
    assert result.ok, result.message
    assert result.status == 200 and result.attempts == 1


def test_302_passes_where_listed_and_is_not_followed(server):
    behaviour = Behaviour(302, location="/landing")
    url = server(behaviour)
    result = wait_for_service(Service("proxy-redirect", url + "/", accepted=[301, 302]))
    assert result.ok, result.message
    assert result.status == 302
    assert behaviour.requests == ["/"], "the redirect must not be followed"


def test_redirect_followed_when_the_service_says_so(server):
    url = server(Behaviour(302, location="/landing"))
    result = check_service(Service("proxy", url + "/", follow_redirects=True))
    assert result.ok and result.status == 200, result.message


def test_302_fails_where_not_listed(server):
    url = server(Behaviour(302, location="/login"))
    result = wait_for_service(Service("app-demo", url + "/health", deadline=0.5))
    assert not result.ok
    assert result.message.startswith(f"app-demo {url}/health: got 302 (redirect to /login, not followed) after ")
    assert result.message.endswith("; accepted 200 (502/503 while warming up)")


def test_503_then_200_passes_within_the_deadline(server):
    url = server(Behaviour(200, warm_until=time.monotonic() + 1.0))
    result = wait_for_service(Service("app-demo", url + "/health", deadline=3.0))
    assert result.ok, result.message
    assert 0.9 <= result.elapsed < 3.0 and result.attempts > 1


def test_always_503_fails_after_the_deadline(server):
    url = server(Behaviour(503))
    started = time.monotonic()
    result = wait_for_service(Service("app-demo", url + "/health", deadline=1.0))
    took = time.monotonic() - started
    assert not result.ok and result.warming_up
    assert 1.0 <= took < 1.6, f"the wait took {took:.2f} s for a 1 s deadline"
    assert result.message == f"app-demo {url}/health: got 503 after 1.0 s; accepted 200 (502/503 while warming up)"


def test_500_fails_naming_the_code(server):
    url = server(Behaviour(500))
    result = wait_for_service(Service("app-demo", url + "/health", deadline=1.0))
    assert not result.ok and not result.warming_up
    # the time it names is the wait's own (1.0 s, more on a loaded machine): the words around it are the contract
    assert re.fullmatch(rf"app-demo {re.escape(url)}/health: got 500 after 1\.\d s; accepted 200 \(502/503 while "
                        r"warming up\)", result.message), result.message


def test_warmup_code_is_never_a_success(server):
    url = server(Behaviour(502))
    result = check_service(Service("app-demo", url + "/", accepted=[200], warmup=[502]))
    assert not result.ok and result.warming_up


def test_connection_refused_is_named():
    url = f"http://127.0.0.1:{free_port()}/health"
    result = wait_for_service(Service("app-demo", url, deadline=1.0))
    assert not result.ok and result.status is None
    assert result.message == f"app-demo {url}: connection refused after 1.0 s; accepted 200 (502/503 while warming up)"
    assert result.attempts >= 3, "a refused connection is retried until the deadline"


def test_deadline_argument_overrides_the_service(server):
    url = server(Behaviour(500))
    started = time.monotonic()
    wait_for_service(Service("app-demo", url + "/", deadline=60), deadline=0.3)
    assert time.monotonic() - started < 1.0


def test_accepted_codes_text_without_warmup():
    assert accepted_codes(Service("x", "http://127.0.0.1/", accepted=[301, 302], warmup=[])) == "301/302"


@pytest.fixture(scope="module")
def tls_pki(tmp_path_factory):
    """Give (ca.pem path, server SSL context): a generated CA and a server certificate for 127.0.0.1."""
    directory = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "health test CA")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = directory / "ca.pem"
    ca_pem.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_pem = directory / "server.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_pem)
    return str(ca_pem), context


def test_tls_verified_with_the_services_ca(server, tls_pki):
    ca_file, context = tls_pki
    url = server(Behaviour(200), context)
    result = wait_for_service(Service("pve", url + "/", ca_file=ca_file, deadline=1.0))
    assert result.ok, result.message


def test_tls_refused_without_the_ca(server, tls_pki):
    _, context = tls_pki
    url = server(Behaviour(200), context)
    result = wait_for_service(Service("pve", url + "/", deadline=0.5))
    assert not result.ok and result.status is None
    assert result.message.startswith(f"pve {url}/: TLS certificate verify failed (")
    assert "inventory: ca_file" in result.message
