"""The web-download URI filter (Glance's rules plus our address checks) and the pinned fetcher.

No traffic leaves 127.0.0.1: a fake resolver answers every name except ``localhost``, and the
fetch tests run a real HTTP(S) server on loopback that the operator settings allow.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tasks.web_download import (
    ImportFetchError,
    ImportURIRefused,
    open_import_uri,
    validate_import_uri,
)

# The URI filter reads its lists from the import settings in the database.
pytestmark = pytest.mark.django_db

PUBLIC_IP = "93.184.216.34"
PAYLOAD = bytes(range(256)) * (3 * 4096) + b"tail!!!"  # 3 MiB and a few bytes
STALL_LIMIT = 10  # seconds a stalling handler waits at most, so teardown never hangs


def refusal(uri: str | None, reason: str) -> str:
    return f"URI {uri} does not pass filtering: {reason}"


# -- a resolver that never leaves the machine ------------------------------------------------


@dataclass
class FakeDNS:
    records: dict[str, list[str]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)


@pytest.fixture(autouse=True)
def dns(monkeypatch) -> FakeDNS:
    fake = FakeDNS(records={"images.example": [PUBLIC_IP], "mirror.example": [PUBLIC_IP]})
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        fake.lookups.append(host)
        if host == "localhost" or _is_ip(host):
            return real_getaddrinfo(host, port, *args, **kwargs)
        if host not in fake.records:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [_answer(address, port) for address in fake.records[host]]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return fake


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _answer(address: str, port: int | None) -> tuple:
    if ":" in address:
        return (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port or 0, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 0))


# -- Glance's rules (§4.2, §4.3) and the §4.7 examples ---------------------------------------


@pytest.mark.parametrize("uri", [None, ""])
def test_validate_empty_uri_refused(uri):
    with pytest.raises(ImportURIRefused) as caught:
        validate_import_uri(uri)

    assert str(caught.value) == refusal(uri, "the URI is empty")


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("http://127.0.0.1:8080/x", "port 8080 is not allowed"),
        ("http://2130706433/x", "host 2130706433 is not a valid address or host name"),
        ("http://no-such-host.invalid/x", "host no-such-host.invalid does not resolve"),
        ("ftp://127.0.0.1/x", "scheme ftp is not allowed"),
    ],
)
def test_validate_glance_examples_refused(uri, reason):
    with pytest.raises(ImportURIRefused) as caught:
        validate_import_uri(uri)

    assert str(caught.value) == refusal(uri, reason)


def test_validate_glance_example_loopback_port_80_needs_the_operator(settings):
    # Glance accepts this one; we refuse loopback unless the operator names the host.
    with pytest.raises(ImportURIRefused) as caught:
        validate_import_uri("http://127.0.0.1:80/x")
    assert "address 127.0.0.1 is loopback" in str(caught.value)

    settings.IMPORT_ALLOWED_HOSTS = ["127.0.0.1"]
    validate_import_uri("http://127.0.0.1:80/x")


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("127.0.0.1/x", "the scheme is missing"),
        ("http:///x", "the host is missing"),
        ("http://[::1/x", "the URI cannot be parsed"),
        ("http://images.example:99999/x", "the port is not a number between 0 and 65535"),
        ("http://127.1/x", "host 127.1 is not a valid address or host name"),
        ("http://0x7f000001/x", "host 0x7f000001 is not a valid address or host name"),
        ("http://0x7f.1/x", "host 0x7f.1 is not a valid address or host name"),
        ("http://0177.0.0.1/x", "host 0177.0.0.1 is not a valid address or host name"),
        ("http://bad%20host/x", "host bad%20host is not a valid address or host name"),
    ],
)
def test_validate_malformed_uris_refused(uri, reason):
    with pytest.raises(ImportURIRefused) as caught:
        validate_import_uri(uri)

    assert str(caught.value) == refusal(uri, reason)


def test_validate_public_host_accepted_with_defaults(dns):
    validate_import_uri("https://Images.Example/disk.qcow2?sig=1")

    assert dns.lookups == ["images.example"]


def test_validate_port_checked_only_when_written(settings):
    settings.IMPORT_ALLOWED_PORTS = ["8080"]

    validate_import_uri("https://images.example/x")
    validate_import_uri("http://images.example:8080/x")
    with pytest.raises(ImportURIRefused, match="port 443 is not allowed"):
        validate_import_uri("https://images.example:443/x")


def test_validate_scheme_allow_list_ignores_deny_list(settings):
    settings.IMPORT_ALLOWED_SCHEMES = ["http"]
    settings.IMPORT_DISALLOWED_SCHEMES = ["http"]

    validate_import_uri("http://images.example/x")
    with pytest.raises(ImportURIRefused, match="scheme https is not allowed"):
        validate_import_uri("https://images.example/x")


def test_validate_scheme_deny_list_applies_without_allow_list(settings):
    settings.IMPORT_ALLOWED_SCHEMES = []
    settings.IMPORT_DISALLOWED_SCHEMES = ["ftp"]

    validate_import_uri("gopher://images.example/x")
    with pytest.raises(ImportURIRefused, match="scheme ftp is not allowed"):
        validate_import_uri("ftp://images.example/x")


def test_validate_empty_scheme_lists_still_need_a_host(settings):
    settings.IMPORT_ALLOWED_SCHEMES = []

    with pytest.raises(ImportURIRefused) as caught:
        validate_import_uri("file:///etc/passwd")

    assert str(caught.value) == refusal("file:///etc/passwd", "the host is missing")


def test_validate_host_allow_list_ignores_deny_list(settings):
    settings.IMPORT_ALLOWED_HOSTS = ["images.example"]
    settings.IMPORT_DISALLOWED_HOSTS = ["images.example"]

    validate_import_uri("http://images.example/x")
    with pytest.raises(ImportURIRefused) as caught:
        validate_import_uri("http://mirror.example/x")
    assert str(caught.value) == refusal(
        "http://mirror.example/x", "host mirror.example is not allowed"
    )


def test_validate_host_deny_list_is_exact_string_equality(settings):
    settings.IMPORT_DISALLOWED_HOSTS = [PUBLIC_IP, "Mirror.Example"]

    # A deny-listed address does not stop a name that resolves to it (Glance §4.3).
    validate_import_uri("http://images.example/x")
    with pytest.raises(ImportURIRefused, match=f"host {PUBLIC_IP} is not allowed"):
        validate_import_uri(f"http://{PUBLIC_IP}/x")
    with pytest.raises(ImportURIRefused, match=r"host mirror\.example is not allowed"):
        validate_import_uri("http://MIRROR.example/x")


def test_validate_port_allow_list_ignores_deny_list(settings):
    settings.IMPORT_ALLOWED_PORTS = ["8080"]
    settings.IMPORT_DISALLOWED_PORTS = ["8080"]

    validate_import_uri("http://images.example:8080/x")
    with pytest.raises(ImportURIRefused, match="port 8081 is not allowed"):
        validate_import_uri("http://images.example:8081/x")


def test_validate_port_deny_list_applies_without_allow_list(settings):
    settings.IMPORT_ALLOWED_PORTS = []
    settings.IMPORT_DISALLOWED_PORTS = ["8080"]

    validate_import_uri("http://images.example:8081/x")
    with pytest.raises(ImportURIRefused, match="port 8080 is not allowed"):
        validate_import_uri("http://images.example:8080/x")


# -- our address hardening --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        ("127.0.0.1", "address 127.0.0.1 is loopback"),
        ("10.0.0.1", "address 10.0.0.1 is private"),
        ("172.16.0.1", "address 172.16.0.1 is private"),
        ("192.168.1.1", "address 192.168.1.1 is private"),
        ("169.254.169.254", "address 169.254.169.254 is link-local"),
        ("0.0.0.0", "address 0.0.0.0 is unspecified"),
        ("224.0.0.1", "address 224.0.0.1 is multicast"),
        ("240.0.0.1", "address 240.0.0.1 is reserved"),
        ("100.64.0.1", "address 100.64.0.1 is not globally routable"),
        ("[::1]", "address ::1 is loopback"),
        ("[::]", "address :: is unspecified"),
        ("[fe80::1]", "address fe80::1 is link-local"),
        ("[fc00::1]", "address fc00::1 is private"),
        ("[ff02::1]", "address ff02::1 is multicast"),
        ("[::ffff:127.0.0.1]", "address ::ffff:7f00:1 (IPv4 127.0.0.1) is loopback"),
        ("[::ffff:10.0.0.1]", "address ::ffff:a00:1 (IPv4 10.0.0.1) is private"),
        ("[2002:a9fe:a9fe::]", "address 2002:a9fe:a9fe:: (IPv4 169.254.169.254) is link-local"),
        ("[64:ff9b::a00:1]", "address 64:ff9b::a00:1 (IPv4 10.0.0.1) is private"),
    ],
)
def test_validate_non_public_literal_refused(host, problem):
    uri = f"http://{host}/x"

    with pytest.raises(ImportURIRefused) as caught:
        validate_import_uri(uri)

    assert str(caught.value) == refusal(
        uri, f"{problem} and the host is not allowed by the operator"
    )


@pytest.mark.parametrize(
    ("uri", "allowed"),
    [
        ("http://10.0.0.1/x", "10.0.0.1"),
        ("http://[::1]/x", "::1"),
        ("http://[0:0::1]/x", "0::0001"),
        ("http://[::FFFF:127.0.0.1]/x", "::ffff:127.0.0.1"),
    ],
)
def test_validate_non_public_literal_allowed_by_operator(settings, uri, allowed):
    settings.IMPORT_ALLOWED_HOSTS = [allowed]

    validate_import_uri(uri)


def test_validate_name_resolving_to_loopback_refused_unless_allowed(settings):
    with pytest.raises(ImportURIRefused) as caught:
        validate_import_uri("http://localhost/x")
    assert re.fullmatch(
        r"URI http://localhost/x does not pass filtering: address (127\.0\.0\.1|::1) is "
        r"loopback and the host is not allowed by the operator",
        str(caught.value),
    )

    settings.IMPORT_ALLOWED_HOSTS = ["LocalHost"]
    validate_import_uri("http://localhost/x")


def test_validate_name_resolving_to_private_refused_unless_allowed(settings, dns):
    dns.records["internal.example"] = ["10.1.2.3"]

    with pytest.raises(ImportURIRefused) as caught:
        validate_import_uri("http://internal.example/x")
    assert str(caught.value) == refusal(
        "http://internal.example/x",
        "address 10.1.2.3 is private and the host is not allowed by the operator",
    )

    settings.IMPORT_ALLOWED_HOSTS = ["internal.example"]
    validate_import_uri("http://internal.example/x")


def test_validate_any_private_answer_among_public_ones_refused(dns):
    dns.records["mixed.example"] = [PUBLIC_IP, "fd00::5"]

    with pytest.raises(ImportURIRefused, match="address fd00::5 is private"):
        validate_import_uri("http://mixed.example/x")


def test_validate_allowed_host_by_ip_does_not_cover_names_resolving_to_it(settings, dns):
    settings.IMPORT_ALLOWED_HOSTS = ["10.1.2.3", "internal.example"]
    dns.records["internal.example"] = ["10.1.2.3"]
    dns.records["other.example"] = ["10.1.2.3"]

    validate_import_uri("http://internal.example/x")
    with pytest.raises(ImportURIRefused, match=r"host other\.example is not allowed"):
        validate_import_uri("http://other.example/x")


# -- a real server on loopback ----------------------------------------------------------------


class ImageHandler(BaseHTTPRequestHandler):
    server: LocalServer

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers["Host"]))
        parts = urlsplit(self.path)
        route = getattr(self, "route_" + parts.path.strip("/").replace("-", "_"), None)
        if route is None:
            self.send_error(404)
            return
        route(parse_qs(parts.query))

    def route_image(self, query: dict) -> None:
        self.send_body(PAYLOAD)

    def route_no_length(self, query: dict) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(PAYLOAD)

    def route_short(self, query: dict) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"x" * 10)

    def route_redirect(self, query: dict) -> None:
        self.send_response(int(query.get("status", ["302"])[0]))
        self.send_header("Location", query["to"][0])
        self.send_header("Content-Length", "0")
        self.end_headers()

    def route_loop(self, query: dict) -> None:
        self.route_redirect({"to": ["/loop"]})

    def route_stall_headers(self, query: dict) -> None:
        self.server.release.wait(STALL_LIMIT)

    def route_stall_body(self, query: dict) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        self.wfile.write(b"x" * 10)
        self.wfile.flush()
        self.server.release.wait(STALL_LIMIT)

    def send_body(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class LocalServer(ThreadingHTTPServer):
    # Joined on close, so a stalled handler never outlives its test.
    daemon_threads = False

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), ImageHandler)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.port = self.server_address[1]
        self.requests: list[tuple[str, str]] = []
        self.release = threading.Event()

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"


@pytest.fixture
def serve() -> Iterator:
    started: list[LocalServer] = []

    def start(tls: ssl.SSLContext | None = None) -> LocalServer:
        server = LocalServer(tls)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.release.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def server(serve, settings) -> LocalServer:
    local = serve()
    settings.IMPORT_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.IMPORT_ALLOWED_PORTS = [str(local.port)]
    return local


@pytest.fixture
def connections(monkeypatch) -> list[str]:
    """Every address the fetcher opens a TCP connection to."""
    opened: list[str] = []
    real_create_connection = socket.create_connection

    def create_connection(address, *args, **kwargs):
        opened.append(address[0])
        return real_create_connection(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    return opened


def read_all(response, chunk_size: int = 65536) -> bytes:
    chunks = []
    while chunk := response.read(chunk_size):
        chunks.append(chunk)
    return b"".join(chunks)


def test_fetch_streams_exact_bytes(server):
    with open_import_uri(server.url("/image")) as response:
        body = read_all(response)

    assert response.status == 200
    assert response.content_length == len(PAYLOAD)
    assert body == PAYLOAD


def test_fetch_without_content_length_reads_to_close(server):
    with open_import_uri(server.url("/no-length")) as response:
        body = read_all(response)

    assert response.content_length is None
    assert body == PAYLOAD


def test_fetch_body_shorter_than_content_length_fails(server):
    with (
        open_import_uri(server.url("/short")) as response,
        pytest.raises(ImportFetchError) as caught,
    ):
        read_all(response)

    assert str(caught.value) == (
        f"Connection to {server.url('/short')} closed after 10 of 1000 bytes"
    )


def test_fetch_revalidates_the_uri(server, settings, connections):
    settings.IMPORT_ALLOWED_HOSTS = []
    uri = server.url("/image")

    with pytest.raises(ImportURIRefused) as caught:
        open_import_uri(uri)

    assert str(caught.value) == refusal(
        uri, "address 127.0.0.1 is loopback and the host is not allowed by the operator"
    )
    assert connections == []
    assert server.requests == []


def test_fetch_connects_to_the_checked_address_with_the_original_host(server, settings, dns):
    dns.records["images.example"] = ["127.0.0.1"]
    settings.IMPORT_ALLOWED_HOSTS = ["images.example"]

    with open_import_uri(server.url("/image", host="images.example")) as response:
        body = read_all(response)

    assert body == PAYLOAD
    assert server.requests == [("/image", f"images.example:{server.port}")]
    # The name was looked up once, by the filter; the connection used the checked address.
    assert [host for host in dns.lookups if not _is_ip(host)] == ["images.example"]


def test_fetch_tries_next_checked_address_when_one_refuses(server, settings, dns, connections):
    dns.records["images.example"] = ["::1", "127.0.0.1"]
    settings.IMPORT_ALLOWED_HOSTS = ["images.example"]

    with open_import_uri(server.url("/image", host="images.example")) as response:
        assert read_all(response) == PAYLOAD

    assert connections == ["::1", "127.0.0.1"]


def test_fetch_localhost_when_allowed(server, settings):
    settings.IMPORT_ALLOWED_HOSTS = ["localhost"]

    with open_import_uri(server.url("/image", host="localhost")) as response:
        assert read_all(response) == PAYLOAD

    assert server.requests[-1] == ("/image", f"localhost:{server.port}")


def test_fetch_follows_allowed_redirects(server):
    uri = server.url("/redirect?status=307&to=/redirect%3Fto%3D/image")

    with open_import_uri(uri) as response:
        body = read_all(response)

    assert body == PAYLOAD
    assert response.url == server.url("/image")
    assert [path for path, _host in server.requests] == [
        "/redirect?status=307&to=/redirect%3Fto%3D/image",
        "/redirect?to=/image",
        "/image",
    ]


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://10.0.0.1/x", "host 10.0.0.1 is not allowed"),
        ("http://127.0.0.1:1/x", "port 1 is not allowed"),
        ("ftp://127.0.0.1/x", "scheme ftp is not allowed"),
        ("file:///etc/passwd", "scheme file is not allowed"),
    ],
)
def test_fetch_redirect_to_disallowed_target_refused_before_connecting(
    server, connections, target, reason
):
    with pytest.raises(ImportURIRefused) as caught:
        open_import_uri(server.url(f"/redirect?to={target}"))

    assert str(caught.value) == f"Redirect to disallowed URL: {target} ({refusal(target, reason)})"
    assert connections == ["127.0.0.1"]


def test_fetch_redirect_to_scheme_we_cannot_fetch_refused(server, settings, connections):
    settings.IMPORT_ALLOWED_SCHEMES = []
    target = f"ftp://127.0.0.1:{server.port}/x"

    with pytest.raises(ImportURIRefused) as caught:
        open_import_uri(server.url(f"/redirect?to={target}"))

    assert str(caught.value) == (
        f"Redirect to disallowed URL: {target} ({refusal(target, 'scheme ftp cannot be fetched')})"
    )
    assert connections == ["127.0.0.1"]


def test_fetch_redirect_loop_stops_at_the_limit(server):
    with pytest.raises(ImportFetchError) as caught:
        open_import_uri(server.url("/loop"), max_redirects=3)

    assert str(caught.value) == f"Too many redirects (more than 3) fetching {server.url('/loop')}"
    assert len(server.requests) == 4


def test_fetch_not_found_raises_with_status(server):
    with pytest.raises(ImportFetchError) as caught:
        open_import_uri(server.url("/missing"))

    assert caught.value.status == 404
    assert str(caught.value) == f"Fetching {server.url('/missing')} failed: HTTP 404 Not Found"


def test_fetch_connection_refused(server, settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    settings.IMPORT_ALLOWED_PORTS = [str(free_port)]
    uri = f"http://127.0.0.1:{free_port}/x"

    with pytest.raises(
        ImportFetchError, match=re.escape(f"Could not connect to {uri}: 127.0.0.1:")
    ):
        open_import_uri(uri)


def test_fetch_server_stalling_before_headers_times_out(server, settings):
    settings.WEB_DOWNLOAD_TIMEOUT = 1
    started = time.monotonic()

    with pytest.raises(ImportFetchError) as caught:
        open_import_uri(server.url("/stall-headers"))

    assert time.monotonic() - started < STALL_LIMIT / 2
    assert str(caught.value) == f"Error fetching {server.url('/stall-headers')}: timed out"
    assert caught.value.status is None


def test_fetch_server_stalling_mid_body_times_out(server):
    started = time.monotonic()

    with open_import_uri(server.url("/stall-body"), timeout=1) as response:
        assert response.read(10) == b"x" * 10
        with pytest.raises(ImportFetchError) as caught:
            response.read(10)

    assert time.monotonic() - started < STALL_LIMIT / 2
    assert str(caught.value) == f"Error reading from {server.url('/stall-body')}: timed out"


# -- TLS: connect to the pinned address, verify the certificate against the name -------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for images.example: (cert PEM path, key PEM path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "images.example")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("images.example")]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(folder / "cert.pem"), str(folder / "key.pem")


@pytest.fixture
def tls_server(serve, settings, dns, certificate) -> tuple[LocalServer, ssl.SSLContext]:
    cert_path, key_path = certificate
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_path, key_path)
    local = serve(server_context)
    dns.records.update({"images.example": ["127.0.0.1"], "other.example": ["127.0.0.1"]})
    settings.IMPORT_ALLOWED_HOSTS = ["images.example", "other.example"]
    settings.IMPORT_ALLOWED_PORTS = [str(local.port)]
    return local, ssl.create_default_context(cafile=cert_path)


def test_fetch_https_verifies_the_name_while_connecting_to_the_address(tls_server, connections):
    server, client_context = tls_server

    uri = server.url("/image", host="images.example", scheme="https")
    with open_import_uri(uri, ssl_context=client_context) as response:
        body = read_all(response)

    assert body == PAYLOAD
    assert connections == ["127.0.0.1"]
    assert server.requests == [("/image", f"images.example:{server.port}")]


def test_fetch_https_certificate_for_another_name_refused(tls_server):
    server, client_context = tls_server
    uri = server.url("/image", host="other.example", scheme="https")

    with pytest.raises(ImportFetchError, match="certificate verify failed"):
        open_import_uri(uri, ssl_context=client_context)

    assert server.requests == []
