"""The web-download URI filter and a fetcher that only talks to addresses the filter checked.

Glance's ``[import_filtering_opts]`` rules (scheme, host, port; allow-list beats deny-list at each
level; port checked only when written) are kept so operators' configurations mean the same thing.
On top of them we close the SSRF gaps Glance leaves open:

* every address a host resolves to must be globally routable unless the operator listed the host
  in ``IMPORT_ALLOWED_HOSTS`` (Glance compares host *names*, so a deny-list of IPs never stopped a
  name that resolves to them);
* the fetcher connects to the very addresses that were checked instead of resolving again, which
  closes the DNS-rebinding window between check and connect;
* the initial URL is re-checked at fetch time, every redirect target is checked before any
  connection is made to it, and connect/read timeouts are always set;
* a whole fetch has a deadline and a minimum transfer rate (:class:`FetchClock`), so a source
  trickling a byte a second cannot hold a job worker for the queue's hour-long timeout.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import SplitResult, urljoin, urlsplit

from django.conf import settings

from importplugins.import_settings import current

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}
USER_AGENT = "imageservice-web-download"

# Digits and dots only: decimal (2130706433) and short-dotted (127.1) spellings of an address.
NUMERIC_HOST = re.compile(r"^[0-9.]+$")
# Letters, digits, hyphen, underscore (seen in internal names) and dots; anything else is not a
# host name a resolver should be asked about.
HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_.-]*[a-z0-9_.])?$")
# RFC 6052 well-known NAT64 prefix: a NAT64 gateway forwards these to the embedded IPv4 address.
NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")


class ImportURIRefused(Exception):
    """The URI (or a redirect target) is not allowed; ``str()`` explains which rule refused it."""


class ImportFetchError(Exception):
    """Fetching an allowed URI failed: a non-2xx answer, a connection error or a timeout."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class CheckedURI:
    """A URI that passed the filter, with the addresses the fetcher may connect to."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[IPAddress, ...]
    request_target: str


def validate_import_uri(uri: str | None) -> None:
    """Raise ``ImportURIRefused`` unless ``uri`` may be fetched by web-download."""
    check_import_uri(uri)


def check_import_uri(uri: str | None) -> CheckedURI:
    """Apply the filter and return what the fetcher needs to connect to the checked addresses."""
    if not uri:
        raise _refused(uri, "the URI is empty")
    if not isinstance(uri, str):
        # Glance itself answers 500 here (urlparse of a number or a boolean).
        raise _refused(uri, "the URI is not a string")
    try:
        parts = urlsplit(uri)
    except ValueError:
        raise _refused(uri, "the URI cannot be parsed") from None
    scheme = _check_scheme(uri, parts)
    host = _check_host(uri, parts)
    port = _check_port(uri, parts)
    addresses = _resolve(uri, host)
    _check_addresses(uri, host, addresses)
    return CheckedURI(
        url=uri,
        scheme=scheme,
        host=host,
        port=port if port is not None else DEFAULT_PORTS.get(scheme, 0),
        addresses=addresses,
        request_target=_request_target(parts),
    )


def _refused(uri: str | None, reason: str) -> ImportURIRefused:
    return ImportURIRefused(f"URI {uri} does not pass filtering: {reason}")


def _check_scheme(uri: str, parts: SplitResult) -> str:
    scheme = parts.scheme.lower()
    if not scheme:
        raise _refused(uri, "the scheme is missing")
    allowed = _lower_set(current().allowed_schemes)
    # Glance: a non-empty allow-list makes the deny-list of the same level irrelevant.
    if allowed:
        if scheme not in allowed:
            raise _refused(uri, f"scheme {scheme} is not allowed")
    elif scheme in _lower_set(current().disallowed_schemes):
        raise _refused(uri, f"scheme {scheme} is not allowed")
    return scheme


def _check_host(uri: str, parts: SplitResult) -> str:
    if not parts.hostname:
        raise _refused(uri, "the host is missing")
    host = normalise_host(parts.hostname)
    if host is None:
        raise _refused(uri, f"host {parts.hostname} is not a valid address or host name")
    allowed = _host_set(current().allowed_hosts)
    if allowed:
        if host not in allowed:
            raise _refused(uri, f"host {host} is not allowed")
    elif host in _host_set(current().disallowed_hosts):
        raise _refused(uri, f"host {host} is not allowed")
    return host


def _check_port(uri: str, parts: SplitResult) -> int | None:
    try:
        port = parts.port
    except ValueError:
        raise _refused(uri, "the port is not a number between 0 and 65535") from None
    # Glance checks the lists only for a port written in the URI: https://host/x passes even
    # when 443 is not in the allow-list.
    if port is None:
        return None
    allowed = _str_set(current().allowed_ports)
    if allowed:
        if str(port) not in allowed:
            raise _refused(uri, f"port {port} is not allowed")
    elif str(port) in _str_set(current().disallowed_ports):
        raise _refused(uri, f"port {port} is not allowed")
    return port


def normalise_host(host: str) -> str | None:
    """Canonical text of an IP literal, or the lower-cased host name; None if it is neither.

    Numeric spellings other than the standard dotted quad or IPv6 text (``2130706433``,
    ``127.1``, ``0x7f000001``, ``0177.0.0.1``) are refused: resolvers accept them, so a filter that
    compares strings could be walked around with them.
    """
    host = host.lower()
    address = _ip_literal(host)
    if address is not None:
        return str(address)
    if NUMERIC_HOST.match(host) or _is_inet_aton_form(host) or not HOST_NAME.match(host):
        return None
    return host


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _is_inet_aton_form(host: str) -> bool:
    # inet_aton is what the C resolver uses to read hex/octal/short address forms.
    try:
        socket.inet_aton(host)
    except (OSError, ValueError):
        return False
    return True


def _resolve(uri: str, host: str) -> tuple[IPAddress, ...]:
    literal = _ip_literal(host)
    if literal is not None:
        return (literal,)
    # Unlike Glance we ask the system resolver for the name as written (no forced trailing dot):
    # the addresses are what we check and connect to, so /etc/hosts names are judged by where
    # they point, exactly as any other name.
    try:
        answers = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise _refused(uri, f"host {host} does not resolve") from None
    addresses: dict[IPAddress, None] = {}
    for family, _type, _proto, _canon, sockaddr in answers:
        if family in (socket.AF_INET, socket.AF_INET6):
            addresses[ipaddress.ip_address(sockaddr[0])] = None
    if not addresses:
        raise _refused(uri, f"host {host} does not resolve")
    return tuple(addresses)


def _check_addresses(uri: str, host: str, addresses: tuple[IPAddress, ...]) -> None:
    # Operators may point imports at internal mirrors, but only by naming the host explicitly.
    if host in _host_set(current().allowed_hosts):
        return
    # Every answer must be acceptable: one public record next to a private one would otherwise
    # let a DNS owner pick which of them we connect to.
    for address in addresses:
        problem = address_problem(address)
        if problem:
            raise _refused(uri, f"{problem} and the host is not allowed by the operator")


def address_problem(address: IPAddress) -> str | None:
    """Why ``address`` needs operator consent before we fetch from it; None if it is public."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        kind = _address_kind(embedded)
        return f"address {address} (IPv4 {embedded}) is {kind}" if kind else None
    kind = _address_kind(address)
    return f"address {address} is {kind}" if kind else None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    # IPv6 forms that reach an IPv4 host: mapped (dual-stack sockets), 6to4 and NAT64.
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _address_kind(address: IPAddress) -> str | None:
    # Most specific first, so the message names the category an operator would recognise.
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        # Before "private": Python counts reserved ranges such as 240.0.0.0/4 as private too.
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        # Catches the rest of the special-purpose space, e.g. 100.64.0.0/10 (carrier-grade NAT).
        ("not globally routable", not address.is_global),
    )
    return next((kind for kind, matches in checks if matches), None)


def _request_target(parts: SplitResult) -> str:
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


def _lower_set(values: list[str]) -> set[str]:
    return {str(value).strip().lower() for value in values if str(value).strip()}


def _str_set(values: list[str]) -> set[str]:
    return {str(value).strip() for value in values if str(value).strip()}


def _host_set(values: list[str]) -> set[str]:
    # Normalised like the URI's host, so "::0001" in a list matches http://[::1]/ as Glance's
    # canonicalisation intends; entries that normalise to nothing can never match.
    return {normalise_host(value) or value for value in _lower_set(values)}


class FetchClock:
    """The overall deadline and the minimum transfer rate of one fetch, redirects included.

    The rate is judged over each ``window`` seconds: fewer than ``min_rate × window`` bytes in
    one ends the fetch. At the deadline a timer shuts the socket down, which also ends a read
    blocked in the headers, where no check of ours runs.
    """

    def __init__(self, url: str, deadline: float, min_rate: int, window: float) -> None:
        self.url = url
        self.seconds = deadline
        self.min_rate = min_rate
        self.window = window
        now = time.monotonic()
        self.deadline = now + deadline
        self.window_start, self.window_bytes = now, 0
        self.expired = False
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(deadline, self._expire)
        self._timer.daemon = True
        self._timer.start()

    @classmethod
    def from_settings(cls, url: str) -> FetchClock:
        return cls(
            url,
            settings.WEB_DOWNLOAD_DEADLINE,
            settings.WEB_DOWNLOAD_MIN_RATE,
            settings.WEB_DOWNLOAD_RATE_WINDOW,
        )

    def watch(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._socket = sock
            if self.expired:
                _shut_down(sock)

    def stop(self) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            _shut_down(self._socket)

    def check(self) -> None:
        if self.expired or time.monotonic() >= self.deadline:
            raise self.overdue()

    def overdue(self) -> ImportFetchError:
        return ImportFetchError(
            f"Fetching {self.url} took longer than the {self.seconds:g} seconds allowed for a "
            "web-download"
        )

    def count(self, received: int) -> None:
        self.check()
        self.window_bytes += received
        elapsed = time.monotonic() - self.window_start
        if not self.min_rate or elapsed < self.window:
            return
        if self.window_bytes < self.min_rate * elapsed:
            raise ImportFetchError(
                f"Fetching {self.url} was too slow: {self.window_bytes} bytes in the last "
                f"{elapsed:.0f} seconds, below the minimum of {self.min_rate} bytes per second "
                "for a web-download"
            )
        self.window_start, self.window_bytes = time.monotonic(), 0


def _shut_down(sock: socket.socket | None) -> None:
    if sock is None:
        return
    # The plain socket's shutdown, also under TLS: SSLSocket's would touch the TLS state that
    # the reading thread is using. OSError: already closed.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class ImportResponse:
    """The body of a fetched image, read in chunks; closes its connection when done."""

    def __init__(
        self,
        url: str,
        connection: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        clock: FetchClock,
    ) -> None:
        self.url = url
        self.status = response.status
        self.content_length = _content_length(response)
        self._connection = connection
        self._response = response
        self._clock = clock
        self._received = 0

    def read(self, n: int = 65536) -> bytes:
        """Up to ``n`` bytes; b"" at the end. A body shorter than Content-Length is an error."""
        chunk = bytearray()
        # read1 returns what one receive brought: between two of them the deadline and the
        # rate are checked, where read(n) would wait for n bytes however slowly they came.
        while len(chunk) < n:
            part = self._read1(n - len(chunk))
            self._clock.count(len(part))
            if not part:
                break
            chunk += part
        self._received += len(chunk)
        # http.client returns b"" rather than failing when the peer closes early.
        if not chunk and self.content_length is not None and self._received < self.content_length:
            raise ImportFetchError(
                f"Connection to {self.url} closed after {self._received} of "
                f"{self.content_length} bytes"
            )
        return bytes(chunk)

    def _read1(self, n: int) -> bytes:
        try:
            return self._response.read1(n)
        except (OSError, http.client.HTTPException) as exc:
            self._clock.check()  # a socket shut at the deadline reads as a reset connection
            raise ImportFetchError(f"Error reading from {self.url}: {exc}") from exc

    def close(self) -> None:
        self._clock.stop()
        self._response.close()
        self._connection.close()

    def __enter__(self) -> ImportResponse:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _content_length(response: http.client.HTTPResponse) -> int | None:
    if response.getheader("Transfer-Encoding", "").lower() == "chunked":
        return None
    value = response.getheader("Content-Length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def open_import_uri(
    uri: str,
    *,
    timeout: float | None = None,
    max_redirects: int = 10,
    ssl_context: ssl.SSLContext | None = None,
) -> ImportResponse:
    """GET ``uri`` for web-download and return its 2xx response.

    Raises ``ImportURIRefused`` if ``uri`` or any redirect target fails the filter (checked before
    connecting to it) and ``ImportFetchError`` for connection errors, timeouts, too many redirects
    or a non-2xx final status. ``ssl_context`` defaults to the system trust store.
    """
    timeout = settings.WEB_DOWNLOAD_TIMEOUT if timeout is None else timeout
    context = ssl_context or ssl.create_default_context()
    clock = FetchClock.from_settings(uri)
    try:
        target = _checked_fetch_target(uri, redirected=False)
        for _hop in range(max_redirects + 1):
            connection, response = _get(target, timeout, context, clock)
            location = response.getheader("Location")
            if response.status not in REDIRECT_STATUSES or not location:
                return _final_response(target.url, connection, response, clock)
            _discard(connection, response)
            target = _checked_fetch_target(urljoin(target.url, location.strip()), redirected=True)
        raise ImportFetchError(f"Too many redirects (more than {max_redirects}) fetching {uri}")
    except BaseException:
        clock.stop()
        raise


def _checked_fetch_target(url: str, *, redirected: bool) -> CheckedURI:
    try:
        target = check_import_uri(url)
        # With an empty scheme allow-list the filter passes any scheme; we only speak HTTP(S).
        if target.scheme not in DEFAULT_PORTS:
            raise _refused(url, f"scheme {target.scheme} cannot be fetched")
    except ImportURIRefused as exc:
        if redirected:
            raise ImportURIRefused(f"Redirect to disallowed URL: {url} ({exc})") from exc
        raise
    return target


def _final_response(
    url: str,
    connection: http.client.HTTPConnection,
    response: http.client.HTTPResponse,
    clock: FetchClock,
) -> ImportResponse:
    if 200 <= response.status < 300:
        return ImportResponse(url, connection, response, clock)
    _discard(connection, response)
    raise ImportFetchError(
        f"Fetching {url} failed: HTTP {response.status} {response.reason}", status=response.status
    )


def _discard(connection: http.client.HTTPConnection, response: http.client.HTTPResponse) -> None:
    # When the server closes after the answer, http.client hands the socket over to the
    # response, so closing the connection alone would leak it.
    response.close()
    connection.close()


def _get(
    target: CheckedURI, timeout: float, context: ssl.SSLContext, clock: FetchClock
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    clock.check()
    connection = _connect(target, timeout, context)
    clock.watch(connection.sock)
    try:
        connection.request("GET", target.request_target, headers={"User-Agent": USER_AGENT})
        return connection, connection.getresponse()
    except (OSError, http.client.HTTPException) as exc:
        connection.close()
        clock.check()
        raise ImportFetchError(f"Error fetching {target.url}: {_describe(exc)}") from exc


def _connect(
    target: CheckedURI, timeout: float, context: ssl.SSLContext
) -> http.client.HTTPConnection:
    # Only connection failures move on to the next checked address; a server that accepted the
    # connection and then stalls is not retried elsewhere, so one timeout bounds the wait.
    errors = []
    for address in target.addresses:
        connection = _connection_for(target, address, timeout, context)
        try:
            connection.connect()
        except OSError as exc:
            connection.close()
            errors.append(f"{address}: {_describe(exc)}")
            continue
        return connection
    raise ImportFetchError(f"Could not connect to {target.url}: {'; '.join(errors)}")


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _connection_for(
    target: CheckedURI, address: IPAddress, timeout: float, context: ssl.SSLContext
) -> http.client.HTTPConnection:
    if target.scheme == "https":
        return PinnedHTTPSConnection(
            target.host, target.port, address=str(address), timeout=timeout, context=context
        )
    return PinnedHTTPConnection(target.host, target.port, address=str(address), timeout=timeout)


class PinnedHTTPConnection(http.client.HTTPConnection):
    """Sends ``Host: <host>`` but connects to ``address``, never resolving ``host`` again."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.pinned_address = address

    def connect(self) -> None:
        # The timeout set here stays on the socket, so it bounds every later read as well.
        self.sock = socket.create_connection((self.pinned_address, self.port), self.timeout)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to ``address`` with SNI and certificate verification against the name ``host``."""

    def __init__(
        self, host: str, port: int, *, address: str, timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.pinned_address = address
        self.tls_context = context

    def connect(self) -> None:
        sock = socket.create_connection((self.pinned_address, self.port), self.timeout)
        try:
            self.sock = self.tls_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
