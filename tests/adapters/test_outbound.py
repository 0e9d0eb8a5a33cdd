"""The outbound guard (adapters/outbound.py) under both of Portlog's HTTP clients, the registry
client (httpx) and the webhook sender (http.client), against real servers: a connection goes to
the address that was checked even when the name resolves elsewhere a moment later (DNS
rebinding), redirects and token realms pointing at refused addresses are refused, and a
failure is told by status and a short reason, never by what the peer sent.

The allowed "peer" is 127.0.0.2, allowed alone, while the trap listens on 127.0.0.1 (refused by
default): both on one port."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from adapters import webhook_sender
from adapters.outbound import OutboundGuard, OwnService
from adapters.registry_client import RegistryClient, RegistryClientError
from tests.support.outbound import Trap

SETTING = "security.outbound_allow"
SECRET = "INTERNAL-SECRET-7f3a"
PEER_ONLY = OutboundGuard(allow=["127.0.0.2/32"])
DIGEST = "sha256:" + "0" * 64


@pytest.fixture
def trap():
    listener = Trap()
    yield listener
    listener.close()


class Peer:
    """An HTTP server on 127.0.0.2 (the trap's port) answering every request as `answer` says."""

    def __init__(self, port: int, answer) -> None:
        self.hosts: list[str] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def handle_one(self) -> None:
                peer.hosts.append(self.headers.get("Host", ""))
                status, headers, body = answer(self.path)
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_HEAD = handle_one

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.2", port), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def peer(trap):
    started: list[Peer] = []

    def start(answer) -> Peer:
        started.append(Peer(trap.port, answer))
        return started[-1]

    yield start
    for server in started:
        server.close()


@pytest.fixture
def banner(trap):
    """A service that is no HTTP server, on 127.0.0.2: it greets every connection with a banner."""
    listener = socket.create_server(("127.0.0.2", trap.port))

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.sendall(f"SSH-2.0-OpenSSH_9.2 {SECRET}\r\n".encode())
                connection.recv(65536)  # what the client sends, before closing

    threading.Thread(target=serve, daemon=True).start()
    yield f"127.0.0.2:{trap.port}"
    listener.close()


@pytest.fixture
def rebinding(monkeypatch):
    """`rebind.test` resolves to the allowed 127.0.0.2 once, to 127.0.0.1 ever after."""
    real, answers = socket.getaddrinfo, []

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "rebind.test":
            return real(host, port, *args, **kwargs)
        answers.append("127.0.0.2" if not answers else "127.0.0.1")
        return real(answers[-1], port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def ok(path: str):
    return 200, {}, b"{}"


def post(url: str, guard: OutboundGuard = PEER_ONLY):
    return webhook_sender.post(url, b"{}", {"Content-Type": "application/json"}, outbound=guard,
                               connect_timeout=2, read_timeout=2)


# --- pinned to the checked address ---

def test_the_registry_client_connects_to_the_address_it_checked(trap, peer, rebinding):
    server = peer(ok)
    with RegistryClient(f"http://rebind.test:{trap.port}", outbound=PEER_ONLY) as client:
        assert client.ping().ok
    assert server.hosts == [f"rebind.test:{trap.port}"] and rebinding == ["127.0.0.2"]
    assert trap.connections() == 0


def test_the_webhook_sender_connects_to_the_address_it_checked(trap, peer, rebinding):
    server = peer(ok)
    outcome = post(f"http://rebind.test:{trap.port}/hook")
    assert (outcome.status_code, outcome.error) == (200, None)
    assert server.hosts == [f"rebind.test:{trap.port}"] and rebinding == ["127.0.0.2"]
    assert trap.connections() == 0


def test_a_name_with_one_refused_address_among_others_is_refused(trap, monkeypatch):
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, *a, **k: real("127.0.0.2", port, *a, **k)
                        + real("127.0.0.1", port, *a, **k) if host == "both.test" else real(host, port, *a, **k))
    outcome = post(f"http://both.test:{trap.port}/hook")
    assert outcome.status_code is None and SETTING in outcome.error
    assert trap.connections() == 0


# --- redirects and token realms ---

def test_a_redirect_to_a_refused_address_is_refused(trap, peer):
    peer(lambda path: (307, {"Location": f"http://127.0.0.1:{trap.port}/blob"}, b"") if "/blobs/" in path
         else ok(path))
    with RegistryClient(f"http://127.0.0.2:{trap.port}", outbound=PEER_ONLY) as client:
        with pytest.raises(RegistryClientError) as refused:
            with client.open_blob("team/app", DIGEST):
                pass
    assert SETTING in refused.value.message and not refused.value.retryable
    assert trap.connections() == 0


def test_a_token_realm_at_a_refused_address_is_refused(trap, peer):
    peer(lambda path: (401, {"WWW-Authenticate": f'Bearer realm="http://localhost:{trap.port}/token"'}, b""))
    with RegistryClient(f"http://127.0.0.2:{trap.port}", "user", "password", outbound=PEER_ONLY) as client:
        result = client.ping()
    assert not result.ok and SETTING in result.message
    assert trap.connections() == 0


def test_webhooks_never_follow_redirects(trap, peer):
    peer(lambda path: (302, {"Location": f"http://127.0.0.1:{trap.port}/"}, b""))
    outcome = post(f"http://127.0.0.2:{trap.port}/hook")
    assert (outcome.status_code, outcome.error) == (302, "HTTP 302 Found")
    assert trap.connections() == 0


# --- what a failure tells ---

def secret_answer(path: str):
    """An OCI error whose message is what the service guards, and whose code is no code."""
    code = "UNKNOWN" if path == "/v2/" else f"not a code: {SECRET}"
    return 500, {"Content-Type": "application/json"}, (
        f'{{"errors":[{{"code":"{code}","message":"{SECRET}"}}]}}'.encode())


def test_a_webhook_failure_tells_the_status_not_the_body(peer, trap):
    peer(secret_answer)
    outcome = post(f"http://127.0.0.2:{trap.port}/hook")
    assert (outcome.status_code, outcome.error) == (500, "HTTP 500 Internal Server Error")


def test_a_webhook_to_a_service_that_is_no_http_server_does_not_tell_its_banner(banner):
    outcome = post(f"http://{banner}/hook")
    assert outcome.status_code is None and SECRET not in outcome.error and "HTTP" in outcome.error


def test_a_registry_failure_tells_the_status_not_the_body(peer, trap):
    peer(secret_answer)
    with RegistryClient(f"http://127.0.0.2:{trap.port}", outbound=PEER_ONLY) as client:
        result = client.ping()
        with pytest.raises(RegistryClientError) as failed:
            client.manifest("team/app", "1.0")
    assert (result.status, result.message) == (500, "GET /v2/: 500 UNKNOWN")
    assert failed.value.message == "GET manifest team/app:1.0: 500 Internal Server Error"


def test_a_registry_that_is_no_http_server_does_not_tell_its_banner(banner):
    with RegistryClient(f"http://{banner}", outbound=PEER_ONLY) as client:
        result = client.ping()
    assert not result.ok and SECRET not in result.message


# --- the rules ---

def test_the_built_in_refusals_and_what_loosens_or_tightens_them():
    default = OutboundGuard()
    for url in ("http://127.0.0.1", "http://localhost:4222", "http://0x7f000001", "http://2130706433",
                "http://169.254.169.254/latest/meta-data/", "http://[::1]:5000", "http://[::ffff:127.0.0.1]",
                "http://[fe80::1]", "http://224.0.0.1", "http://0.0.0.0:5000", "http://[::]"):
        assert SETTING in default.refusal_of(url), url
    for url in ("http://10.0.0.1:5000", "http://192.168.1.10", "http://172.16.0.1", "http://[fd00::1]",
                "http://192.0.2.10", "http://unresolvable.invalid"):
        assert default.refusal_of(url) is None, url
    assert OutboundGuard(allow=["127.0.0.0/8"]).refusal_of("http://localhost") is None
    tightened = OutboundGuard(allow=["127.0.0.0/8"], deny=["127.0.0.1", "10.0.0.0/8"])
    assert "security.outbound_deny" in tightened.refusal_of("http://127.0.0.1")
    assert "security.outbound_deny" in tightened.refusal_of("http://10.1.2.3")
    assert tightened.refusal_of("http://127.0.0.2") is None


def test_portlogs_own_listen_address_and_port_are_refused():
    own = [OwnService("192.0.2.10", 5000, "Portlog's own listen address")]
    guard = OutboundGuard(own=own)
    assert "own listen address" in guard.refusal_of("http://192.0.2.10:5000")
    assert guard.refusal_of("http://192.0.2.10:5001") is None and guard.refusal_of("http://192.0.2.11:5000") is None
    allowed = OutboundGuard(allow=["192.0.2.0/24"], own=own)
    assert allowed.refusal_of("http://192.0.2.10:5000") is None  # an allowance covers it too


@pytest.fixture
def infrastructure_names(monkeypatch):
    """`nats.internal` and `alias.test` both resolve to the private 10.20.30.40."""
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, *a, **k: real(
        "10.20.30.40" if host in ("nats.internal", "alias.test") else host, port, *a, **k))


def test_the_infrastructure_portlog_uses_is_refused_by_name_and_address(infrastructure_names):
    guard = OutboundGuard(own=[OwnService("nats.internal", 4222, "Portlog's NATS server"),
                               OwnService("10.0.0.7", 5432, "Portlog's database"),
                               OwnService("fd00::5", 9000, "Portlog's S3 endpoint")])
    for url, what in (("http://nats.internal:4222", "Portlog's NATS server"),
                      ("http://alias.test:4222/hook", "Portlog's NATS server"),
                      ("http://10.20.30.40:4222", "Portlog's NATS server"),
                      ("http://10.0.0.7:5432", "Portlog's database"),
                      ("http://[fd00::5]:9000", "Portlog's S3 endpoint")):
        refusal = guard.refusal_of(url)
        assert refusal and what in refusal and SETTING in refusal, url
    for url in ("http://10.20.30.40:4223", "http://10.0.0.7", "http://10.0.0.8:5432", "http://[fd00::5]"):
        assert guard.refusal_of(url) is None, url
    allowed = OutboundGuard(allow=["10.20.30.40/32"], own=guard.own)
    assert allowed.refusal_of("http://alias.test:4222") is None


def test_a_reachable_pair_opens_that_host_and_port_only_and_deny_still_wins():
    """The built-in scanner's guard: Portlog's own listen address, and nothing beside it."""
    own = OwnService("127.0.0.1", 5000, "Portlog's own listen address")
    guard = OutboundGuard(own=[own], reachable=[own])
    assert guard.refusal_of("http://127.0.0.1:5000/v2/") is None
    assert "127.0.0.1 is loopback" in guard.refusal_of("http://127.0.0.1:5001/")
    assert "127.0.0.1 is loopback" in OutboundGuard(own=[own]).refusal_of("http://127.0.0.1:5000/")
    denied = OutboundGuard(deny=["127.0.0.1/32"], reachable=[own])
    assert "is in security.outbound_deny" in denied.refusal_of("http://127.0.0.1:5000/")
