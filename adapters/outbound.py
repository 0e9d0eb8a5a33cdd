"""The outbound guard: every connection Portlog opens to an address a user supplied (webhook
targets, registry endpoints of replication and proxy-cache projects, the realms and redirects
they answer with) goes through it.

The host is resolved and every address it resolves to is checked before anything connects;
the connection then goes to a checked address (the name still in Host and TLS SNI), so a DNS
answer that changes between check and connect (rebinding) cannot reach anything else. Each
redirect is a new connection, checked again.

Refused by default: unspecified, loopback, link-local (cloud metadata at 169.254.169.254),
multicast and broadcast addresses, and the host:port pairs of Portlog itself — its own listen
address, and the database, S3 endpoint and NATS servers it is configured with (often on private
addresses). Private ranges are allowed otherwise: enterprises replicate over them.
`security.outbound_deny` wins over everything, `security.outbound_allow` over the defaults.

Connections to that operator-configured infrastructure do not go through the guard.

When tracing is on, the composition root gives the guard its `tracing` (adapters/tracing.py):
each request through the guard's clients is then a client span, its `traceparent` sent along.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
from typing import TYPE_CHECKING, ContextManager, Iterable, NamedTuple
from urllib.parse import urlsplit

import httpcore
import httpx
import urllib3
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

if TYPE_CHECKING:
    from adapters.tracing import OutgoingRequest, Tracing

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_DENY: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "unspecified"), ("::/128", "unspecified"),
    ("127.0.0.0/8", "loopback"), ("::1/128", "loopback"),
    ("169.254.0.0/16", "link-local"), ("fe80::/10", "link-local"),
    ("224.0.0.0/4", "multicast"), ("ff00::/8", "multicast"),
    ("255.255.255.255/32", "broadcast"),
)
ALLOW_SETTING = "security.outbound_allow (PORTLOG_OUTBOUND_ALLOW)"
DENY_SETTING = "security.outbound_deny (PORTLOG_OUTBOUND_DENY)"
DEFAULT_PORTS = {"http": 80, "https": 443}
UNSPECIFIED_HOSTS = ("", "0.0.0.0", "::")
# httpx's own defaults, which its transport would have used.
MAX_CONNECTIONS, MAX_KEEPALIVE_CONNECTIONS, KEEPALIVE_EXPIRY_SECONDS = 100, 20, 5.0


class OwnService(NamedTuple):
    """A host:port of Portlog itself (where it listens, what it depends on), refused unless allowed."""

    host: str
    port: int
    what: str  # named in the refusal: "Portlog's NATS server"


class OutboundRefused(Exception):
    """A connection the guard refuses; the message says why and which setting changes it."""


def networks(cidrs: Iterable[str | Network]) -> tuple[Network, ...]:
    """CIDR blocks (or single addresses); ValueError for one that is neither."""
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


class OutboundGuard:
    def __init__(self, allow: Iterable[str | Network] = (), deny: Iterable[str | Network] = (),
                 own: Iterable[OwnService] = (), reachable: Iterable[OwnService] = ()) -> None:
        """`own`: Portlog's listen address and its infrastructure, refused unless allowed.
        `reachable`: host:port pairs reached even so, unless denied: only the built-in scanner's
        guard has one, Portlog's own listen address, whose /v2/ it pulls the images to scan from."""
        self.allow = networks(allow)
        self.deny = networks(deny)
        self.own = tuple(own)
        self.reachable = tuple(reachable)
        self._default_deny = tuple((ipaddress.ip_network(cidr), kind) for cidr, kind in DEFAULT_DENY)
        self._ssl_contexts: dict[bool, ssl.SSLContext] = {}
        self.tracing: Tracing | None = None  # set by the composition root when tracing is on

    def request_span(self, method: str, url: str) -> ContextManager[OutgoingRequest | _Untraced]:
        """The span of one outbound request (a no-op when tracing is off)."""
        if self.tracing is None:
            return contextlib.nullcontext(_UNTRACED)
        return self.tracing.client_span(method, url)

    # --- checking ---

    def refusal_of(self, url: str) -> str | None:
        """At configuration time: why connections to the URL's host would be refused; None when
        they would not. A name that does not resolve (yet) passes: connecting checks it again."""
        try:
            parts = urlsplit(url)
            self.addresses(parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme, 80))
        except OutboundRefused as refused:
            return str(refused)
        except (OSError, UnicodeError, ValueError):
            pass
        return None

    def addresses(self, host: str, port: int) -> list[tuple[socket.AddressFamily, tuple]]:
        """Every (family, sockaddr) `host` resolves to, when all of them may be reached."""
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        resolved = [(family, sockaddr) for family, _, _, _, sockaddr in found]
        for family, sockaddr in resolved:
            reason = self._refusal(family, sockaddr, port)
            if reason:
                raise OutboundRefused(f"outbound connection to {_shown(host)}:{port} refused: {reason}")
        return resolved

    def _refusal(self, family: socket.AddressFamily, sockaddr: tuple, port: int) -> str | None:
        """Why the resolved address may not be reached on `port`; None when it may."""
        address = _address(sockaddr[0])
        if any(address in network for network in self.deny):
            return f"{address} is in {DENY_SETTING}"
        if any(address in network for network in self.allow):
            return None
        if any(pair.port == port and _is_host(pair.host, address, family, sockaddr) for pair in self.reachable):
            return None
        kind = next((kind for network, kind in self._default_deny if address in network), None)
        if kind is None:
            kind = next((own.what for own in self.own
                         if own.port == port and _is_host(own.host, address, family, sockaddr)), None)
        return f"{address} is {kind}; {ALLOW_SETTING} can allow it" if kind else None

    # --- connecting ---

    def connect(self, address: tuple[str, int], timeout: float | None = None,
                source_address: tuple[str, int] | None = None) -> socket.socket:
        """socket.create_connection to a checked address of the host."""
        host, port = address
        last_error: OSError | None = None
        for family, sockaddr in self.addresses(host, port):
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)
                return sock
            except OSError as error:
                sock.close()
                last_error = error
        raise last_error or OSError(f"{host} resolves to no address")

    def httpx_transport(self, verify: bool = True) -> httpx.HTTPTransport:
        """An httpx transport whose every connection goes through the guard, no proxy."""
        ssl_context = self._ssl_context(verify)
        transport = httpx.HTTPTransport(verify=ssl_context)
        # httpx takes no network backend; the httpcore pool under it does.
        transport._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context, max_connections=MAX_CONNECTIONS,
            max_keepalive_connections=MAX_KEEPALIVE_CONNECTIONS, keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
            network_backend=_GuardedBackend(self))
        return transport if self.tracing is None else _TracedTransport(transport, self)

    def urllib3_pool_manager(self, **options) -> urllib3.PoolManager:
        """A urllib3 pool manager (what the minio SDK sends through) whose every connection goes
        through the guard, no proxy."""
        guard = self

        class Connection(urllib3.connection.HTTPConnection):
            def _new_conn(self):
                return guard._urllib3_socket(self)

        class TlsConnection(urllib3.connection.HTTPSConnection):
            def _new_conn(self):
                return guard._urllib3_socket(self)

        manager = urllib3.PoolManager(**options)
        manager.pool_classes_by_scheme = {
            "http": type("GuardedPool", (HTTPConnectionPool,), {"ConnectionCls": Connection}),
            "https": type("GuardedTlsPool", (HTTPSConnectionPool,), {"ConnectionCls": TlsConnection})}
        return manager

    def _urllib3_socket(self, connection: urllib3.connection.HTTPConnection) -> socket.socket:
        timeout = connection.timeout if isinstance(connection.timeout, (int, float)) else None
        try:
            return self.connect((connection._dns_host, connection.port), timeout)
        except socket.gaierror as error:
            raise urllib3.exceptions.NameResolutionError(connection.host, connection, error) from error
        except OSError as error:
            raise urllib3.exceptions.NewConnectionError(connection, f"cannot connect: {error}") from error

    def _ssl_context(self, verify: bool) -> ssl.SSLContext:
        """Shared by every client of the guard: loading the CA certificates costs ~20 ms of CPU,
        and a context may serve many connections at once."""
        if verify not in self._ssl_contexts:
            self._ssl_contexts[verify] = httpx.create_ssl_context(verify=verify)
        return self._ssl_contexts[verify]


class _Untraced:
    """What `request_span` yields when tracing is off."""

    headers: dict[str, str] = {}

    def status(self, code: int) -> None:
        pass


_UNTRACED = _Untraced()


class _TracedTransport(httpx.BaseTransport):
    """Each request a client span, its traceparent sent along."""

    def __init__(self, inner: httpx.HTTPTransport, guard: OutboundGuard) -> None:
        self.inner, self.guard = inner, guard

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.guard.request_span(request.method, str(request.url)) as outgoing:
            request.headers.update(outgoing.headers)
            response = self.inner.handle_request(request)
            outgoing.status(response.status_code)
            return response

    def close(self) -> None:
        self.inner.close()


class _GuardedBackend(httpcore.NetworkBackend):
    """httpcore's connections, to checked addresses only (TLS still verifies the name)."""

    def __init__(self, guard: OutboundGuard) -> None:
        self._guard = guard
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options=None) -> httpcore.NetworkStream:
        try:
            resolved = self._guard.addresses(host, port)
        except socket.gaierror as error:
            raise httpcore.ConnectError(str(error)) from error
        last_error: Exception | None = None
        for _, sockaddr in resolved:
            try:
                return self._inner.connect_tcp(sockaddr[0], port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last_error = error
        raise last_error or httpcore.ConnectError(f"{host} resolves to no address")


def _address(text: str) -> Address:
    """The address, an IPv4-mapped IPv6 one (::ffff:127.0.0.1) as the IPv4 it is."""
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _is_host(host: str, address: Address, family: socket.AddressFamily, sockaddr: tuple) -> bool:
    """Whether `address` is one of `host`'s (any of this machine's, for an unspecified host)."""
    if host in UNSPECIFIED_HOSTS:  # listening everywhere
        return _is_local(family, sockaddr)
    try:
        return any(_address(found[4][0]) == address for found in socket.getaddrinfo(host, None))
    except (socket.gaierror, UnicodeError):
        return False


def _is_local(family: socket.AddressFamily, sockaddr: tuple) -> bool:
    """Whether the address belongs to this machine: only then can a socket be bound to it."""
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((sockaddr[0], 0, *sockaddr[2:]))
        except OSError:
            return False
    return True


def _shown(host: str) -> str:
    return f"[{host}]" if ":" in host else host
