"""RegistryClient against real registries: CNCF Distribution 2.8 without authentication and
behind htpasswd (Basic), and a live Portlog (Bearer tokens); plus what no real peer here can
show on demand (redirects to another host, 429 and 5xx, TLS, a server that never answers)
against stand-ins. Referrers: from Portlog's referrers API, and from the referrers tag on
Distribution, which has no such API."""

from __future__ import annotations

import datetime
import http.server
import json
import os
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from adapters.registry_client import (
    CHUNK_SIZE,
    RegistryAuthenticationError,
    RegistryClient,
    RegistryClientError,
    RegistryUnreachable,
    referrers_tag,
)
from tests.support.oci import OCI_INDEX, OCI_MANIFEST, descriptor, digest_of, image_manifest
from tests.support.outbound import LOOPBACK_ALLOWED

MiB = 1024 * 1024
SIGNATURE = "application/vnd.dev.cosign.artifact.sig.v1+json"
PEERS = ["distribution", "distribution_with_auth", "portlog"]
WITH_AUTH = ["distribution_with_auth", "portlog"]


@dataclass
class Peer:
    kind: str
    url: str
    credentials: tuple[str, str] | None

    def client(self, **options) -> RegistryClient:
        return RegistryClient(self.url, *(self.credentials or ()), **options, outbound=LOOPBACK_ALLOWED)


@pytest.fixture(scope="module", params=PEERS)
def peer(request) -> Peer:
    if request.param == "portlog":
        server = request.getfixturevalue("live_server")
        return Peer("portlog", server.url, server.admin_auth)
    server = request.getfixturevalue(request.param)
    return Peer(request.param, server.url, server.credentials)


@pytest.fixture
def remote(peer):
    with peer.client() as client:
        yield client


class Recording(httpx.BaseTransport):
    """A real transport that remembers every request it sent."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()

    def paths(self, ending: str) -> list[str]:
        return [r.url.path for r in self.requests if r.url.path.endswith(ending)]


def chunks_of(data: bytes, size: int = 64 * 1024):
    for start in range(0, len(data), size):
        yield data[start:start + size]


def push(remote: RegistryClient, name: str, data: bytes) -> str:
    digest = digest_of(data)
    assert remote.push_blob(name, digest, len(data), chunks_of(data)) == digest
    return digest


def push_image(remote: RegistryClient, name: str, tag: str, seed: str = "x") -> tuple[str, bytes]:
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    layer = f"layer-{seed}".encode()
    push(remote, name, config)
    push(remote, name, layer)
    manifest = image_manifest(config, [layer])
    return remote.put_manifest(name, tag, manifest, OCI_MANIFEST), manifest


def read_blob(remote: RegistryClient, name: str, digest: str) -> tuple[bytes, int | None, int]:
    """(data, announced size, largest chunk)."""
    with remote.open_blob(name, digest) as blob:
        chunks = list(blob)
        return b"".join(chunks), blob.size, max((len(c) for c in chunks), default=0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- ping ---

def test_ping_with_the_right_credentials(remote):
    result = remote.ping()
    assert (result.ok, result.status) == (True, 200), result.message


@pytest.mark.parametrize("peer", WITH_AUTH, indirect=True)
def test_ping_with_a_wrong_password(peer):
    with RegistryClient(peer.url, peer.credentials[0], "not-the-password", outbound=LOOPBACK_ALLOWED) as client:
        result = client.ping()
    assert (result.ok, result.status) == (False, 401)
    assert "wrong username or password" in result.message


@pytest.mark.parametrize("peer", ["distribution_with_auth"], indirect=True)
def test_ping_without_credentials_where_they_are_required(peer):
    with RegistryClient(peer.url, outbound=LOOPBACK_ALLOWED) as client:
        result = client.ping()
    assert (result.ok, result.status, result.message) == (False, 401, "the registry requires credentials")


def test_ping_with_nothing_listening():
    port = free_port()
    with RegistryClient(f"http://127.0.0.1:{port}", outbound=LOOPBACK_ALLOWED) as client:
        result = client.ping()
    assert (result.ok, result.status) == (False, None)
    assert result.message == f"cannot connect to 127.0.0.1:{port}: connection refused"


def test_ping_of_a_server_that_never_answers():
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, says nothing
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with RegistryClient(url, timeout=0.3, outbound=LOOPBACK_ALLOWED) as client:
            result = client.ping()
    assert (result.ok, result.status) == (False, None)
    assert result.message.endswith("did not answer within 0.3 s")


def test_ping_of_a_registry_with_an_untrusted_certificate(tmp_path):
    with tls_registry(tmp_path) as url:
        with RegistryClient(url, outbound=LOOPBACK_ALLOWED) as client:
            refused = client.ping()
        with RegistryClient(url, insecure=True, outbound=LOOPBACK_ALLOWED) as client:
            accepted = client.ping()
    assert not refused.ok and refused.status is None
    assert "TLS" in refused.message and "certificate" in refused.message
    assert accepted.ok, accepted.message


# --- blobs ---

def test_blobs_go_up_streamed_and_come_back_identical(remote, peer):
    name = f"team/blobs-{peer.kind}"
    large = os.urandom(5 * MiB + 123)
    for data in (b"", b"small blob", large):
        digest = push(remote, name, data)
        assert remote.blob_exists(name, digest)
        body, size, largest_chunk = read_blob(remote, name, digest)
        assert (body, size) == (data, len(data))
        assert largest_chunk <= CHUNK_SIZE
    unknown = digest_of(b"never pushed")
    assert not remote.blob_exists(name, unknown)
    with pytest.raises(RegistryClientError) as raised:
        with remote.open_blob(name, unknown):
            pass
    assert (raised.value.status, raised.value.code, raised.value.retryable) == (404, "BLOB_UNKNOWN", False)


def test_pushing_fewer_bytes_than_announced_fails_before_the_registry_takes_them(distribution):
    with RegistryClient(distribution.url, outbound=LOOPBACK_ALLOWED) as client:
        with pytest.raises(RegistryClientError) as raised:
            client.push_blob("team/short", digest_of(b"abcdef"), 10, [b"abc", b"def"])
    assert not raised.value.retryable
    assert "6 bytes, not the announced 10" in raised.value.message


def test_mount_between_repositories(remote, peer):
    source, target = f"team/mount-source-{peer.kind}", f"team/mount-target-{peer.kind}"
    digest = push(remote, source, b"a layer to share")
    assert not remote.blob_exists(target, digest)
    assert remote.mount_blob(target, digest, source) is True
    assert remote.blob_exists(target, digest)
    assert read_blob(remote, target, digest)[0] == b"a layer to share"
    assert remote.mount_blob(target, digest_of(b"nowhere"), source) is False


# --- manifests and tags ---

def test_manifest_goes_up_and_comes_back_identical(remote, peer):
    name = f"team/manifests-{peer.kind}"
    digest, manifest = push_image(remote, name, "v1")
    assert digest == digest_of(manifest)
    for reference in ("v1", digest):
        assert remote.manifest(name, reference) == (manifest, OCI_MANIFEST, digest)
        assert remote.manifest_digest(name, reference) == digest
    assert remote.manifest_digest(name, "no-such-tag") is None


def test_delete_manifest(remote, peer):
    name = f"team/delete-{peer.kind}"
    digest, _ = push_image(remote, name, "doomed", seed="delete")
    remote.delete_manifest(name, digest)
    assert remote.manifest_digest(name, digest) is None
    assert remote.manifest_digest(name, "doomed") is None


def test_unknown_manifest_is_a_permanent_error(remote, peer):
    name = f"team/unknown-{peer.kind}"
    push_image(remote, name, "present", seed="unknown")
    with pytest.raises(RegistryClientError) as raised:
        remote.manifest(name, "absent")
    error = raised.value
    assert (error.status, error.code, error.retryable) == (404, "MANIFEST_UNKNOWN", False)
    assert "MANIFEST_UNKNOWN" in str(error)


def test_tags_follow_the_pages(peer):
    name = f"team/tags-{peer.kind}"
    recording = Recording()
    with peer.client(transport=recording) as client:
        digest, manifest = push_image(client, name, "t0", seed="tags")
        wanted = [f"t{i}" for i in range(5)]
        for tag in wanted[1:]:
            client.put_manifest(name, tag, manifest, OCI_MANIFEST)
        assert sorted(client.tags(name, page_size=2)) == wanted
        assert sorted(client.tags(name)) == wanted
    pages = len(recording.paths("/tags/list")) - 1  # the unpaginated call is one request
    # Distribution 2.8 ignores n= on tags/list (it pages only the catalog); Portlog pages both.
    assert pages == (1 if peer.kind.startswith("distribution") else 3)


def test_catalog_follows_the_pages(peer):
    recording = Recording()
    with peer.client(transport=recording) as client:
        for index in range(3):
            push(client, f"team/catalog-{peer.kind}-{index}", b"catalog")
        names = client.catalog(page_size=1)
    assert {f"team/catalog-{peer.kind}-{index}" for index in range(3)} <= set(names)
    assert len(names) == len(set(names))
    assert len(recording.paths("/_catalog")) >= len(names)


# --- referrers ---

def signature_of(remote: RegistryClient, name: str, subject: bytes, seed: str) -> bytes:
    """A signature artifact of `subject`, its blobs pushed; the manifest itself is not."""
    payload = f"signature {seed}".encode()
    push(remote, name, b"{}")
    push(remote, name, payload)
    return image_manifest(b"{}", [payload], subject=descriptor(OCI_MANIFEST, subject), artifactType=SIGNATURE,
                          annotations={"dev.cosign.seed": seed})


def test_no_referrers_is_an_empty_list(remote, peer):
    name = f"team/unsigned-{peer.kind}"
    digest, _ = push_image(remote, name, "v1", seed="unsigned")
    assert remote.referrers(name, digest) == []
    assert remote.referrers(name, digest_of(b"never pushed")) == []
    assert remote.referrers(f"team/no-such-repository-{peer.kind}", digest) == []


def test_referrers_pushed_through_the_client_are_listed(remote, peer):
    """Portlog indexes a subject itself (OCI-Subject); on Distribution the client keeps the
    referrers tag, as cosign and oras do, and lists the referrers from it."""
    name = f"team/signed-{peer.kind}"
    digest, manifest = push_image(remote, name, "v1", seed="signed")
    signatures = [signature_of(remote, name, manifest, seed) for seed in ("first", "second")]
    for signature in signatures:
        assert remote.put_manifest(name, digest_of(signature), signature, OCI_MANIFEST) == digest_of(signature)
    remote.put_manifest(name, digest_of(signatures[0]), signatures[0], OCI_MANIFEST)  # listed once only
    assert sorted(remote.referrers(name, digest)) == sorted(digest_of(s) for s in signatures)
    tags = remote.tags(name)
    if peer.kind == "portlog":
        assert tags == ["v1"]
        return
    assert sorted(tags) == sorted(["v1", referrers_tag(digest)])
    index = json.loads(remote.manifest(name, referrers_tag(digest)).data)
    assert index["mediaType"] == OCI_INDEX
    assert index["manifests"] == [descriptor(OCI_MANIFEST, signature, artifactType=SIGNATURE,
                                             annotations={"dev.cosign.seed": seed})
                                  for signature, seed in zip(signatures, ("first", "second"))]


def test_referrers_come_from_the_referrers_tag_another_client_wrote(distribution):
    name = "team/signed-by-oras"
    with RegistryClient(distribution.url, outbound=LOOPBACK_ALLOWED) as remote:
        digest, manifest = push_image(remote, name, "v1", seed="oras")
        signature = signature_of(remote, name, manifest, "oras")
        raw_put(distribution.url, name, digest_of(signature), signature, OCI_MANIFEST)  # no tag kept
        assert remote.referrers(name, digest) == []
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
                 "manifests": [descriptor(OCI_MANIFEST, signature, artifactType=SIGNATURE)]}
        raw_put(distribution.url, name, referrers_tag(digest), json.dumps(index).encode(), OCI_INDEX)
        assert remote.referrers(name, digest) == [digest_of(signature)]
        raw_put(distribution.url, name, referrers_tag(digest), manifest, OCI_MANIFEST)
        assert remote.referrers(name, digest) == []  # not an index: none, says the spec


def test_referrers_tag_schema():
    assert referrers_tag("sha256:" + "a" * 64) == "sha256-" + "a" * 64
    assert referrers_tag("sha512:" + "b" * 128) == "sha512-" + "b" * 64
    assert referrers_tag("test+algorithm+using+algorithm+separators:alsoSome=InTheEncodedSection") == (
        "test-algorithm-using-algorithm-s-alsoSome-InTheEncodedSection")


def test_referrers_follow_the_pages_and_fall_back_where_the_api_is_refused():
    """A stand-in: neither peer here pages its referrers or answers 405."""
    subject = "sha256:" + "1" * 64
    listed = ["sha256:" + str(n) * 64 for n in (2, 3, 4)]

    def page(*digests: str, **headers: str) -> httpx.Response:
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
                 "manifests": [{"mediaType": OCI_MANIFEST, "digest": d, "size": 1} for d in digests]}
        return httpx.Response(200, headers={"Content-Type": OCI_INDEX, **headers}, json=index)

    def paging(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("last") == "2":
            return page(listed[2])
        return page(*listed[:2], Link=f'</v2/team/app/referrers/{subject}?last=2>; rel="next"')

    def refusing(request: httpx.Request) -> httpx.Response:
        if "/referrers/" in request.url.path:
            return httpx.Response(405, json={"errors": [{"code": "UNSUPPORTED", "message": "no"}]})
        assert request.url.path == f"/v2/team/app/manifests/{referrers_tag(subject)}"
        return page(listed[0])

    for handler, expected in ((paging, listed), (refusing, listed[:1])):
        with RegistryClient("https://registry.example", transport=httpx.MockTransport(handler)) as client:
            assert client.referrers("team/app", subject) == expected


def raw_put(url: str, name: str, reference: str, data: bytes, media_type: str) -> None:
    """A PUT without this client's upkeep of referrers tags."""
    response = httpx.put(f"{url}/v2/{name}/manifests/{reference}", content=data, headers={"Content-Type": media_type})
    assert response.status_code == 201, response.text


# --- authentication ---

@pytest.mark.parametrize("peer", ["portlog"], indirect=True)
def test_bearer_tokens_are_fetched_once_per_scope(peer):
    recording = Recording()
    with peer.client(transport=recording) as client:
        name = "team/tokens"
        push_image(client, name, "v1", seed="tokens")
        for _ in range(3):
            client.manifest(name, "v1")
            client.tags(name)
    tokens = [r.url.params.get_list("scope") for r in recording.requests if r.url.path == "/service/token"]
    assert tokens == [[f"repository:{name}:pull,push"], [f"repository:{name}:pull"]]
    challenged = [r for r in recording.requests if r.url.path != "/service/token" and "authorization" not in r.headers]
    assert len(challenged) == 1  # only the very first request met a 401


@pytest.mark.parametrize("peer", ["distribution_with_auth"], indirect=True)
def test_basic_credentials_are_sent_once_the_registry_asked(peer):
    recording = Recording()
    with peer.client(transport=recording) as client:
        push_image(client, "team/basic", "v1", seed="basic")
    authorized = ["authorization" in r.headers for r in recording.requests]
    assert authorized == [False] + [True] * (len(authorized) - 1)  # only the first met a 401


def test_redirect_to_another_host_gets_no_authorization():
    seen: list[httpx.Request] = []

    def registry(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "storage.example":
            return httpx.Response(200, content=b"blob bytes")
        if "authorization" not in request.headers:
            return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer realm="https://auth.example/token",'
                                                                    'service="registry.example"'})
        if request.url.host == "auth.example":
            return httpx.Response(200, json={"access_token": "t0ken"})  # no `token` field
        return httpx.Response(307, headers={"Location": "https://storage.example/b?X-Amz-Signature=s"})

    with RegistryClient("https://registry.example", "user", "pass", transport=httpx.MockTransport(registry)) as client:
        with client.open_blob("team/app", "sha256:" + "0" * 64) as blob:
            assert b"".join(blob) == b"blob bytes"
    authorization = {(r.url.host, r.headers.get("authorization", "")[:6]) for r in seen}
    assert authorization == {("registry.example", ""), ("auth.example", "Basic "),
                             ("registry.example", "Bearer"), ("storage.example", "")}


# --- retryable failures ---

@pytest.mark.parametrize("status, headers, retry_after", [
    (429, {"Retry-After": "7"}, 7.0),
    (503, {}, None),
    (500, {"Retry-After": "Fri, 01 Jan 2100 00:00:00 GMT"}, "until 2100"),
])
def test_overload_and_server_errors_are_retryable(status, headers, retry_after):
    if retry_after == "until 2100":  # from now: computed when the test runs, not when it is collected
        retry_after = pytest.approx((datetime.datetime(2100, 1, 1, tzinfo=datetime.timezone.utc)
                                     - datetime.datetime.now(datetime.timezone.utc)).total_seconds(), abs=60)
    body = {"errors": [{"code": "TOOMANYREQUESTS" if status == 429 else "UNAVAILABLE", "message": "busy"}]}
    transport = httpx.MockTransport(lambda request: httpx.Response(status, headers=headers, json=body))
    with RegistryClient("https://registry.example", transport=transport) as client:
        with pytest.raises(RegistryClientError) as raised:
            client.tags("team/app")
    assert (raised.value.status, raised.value.retryable, raised.value.retry_after) == (status, True, retry_after)


@pytest.mark.parametrize("peer", ["portlog"], indirect=True)
def test_denied_is_an_authentication_error(peer):
    with RegistryClient(peer.url, outbound=LOOPBACK_ALLOWED) as anonymous:  # the test projects are private
        with pytest.raises(RegistryAuthenticationError) as raised:
            anonymous.put_manifest("team/denied", "v1", b"{}", OCI_MANIFEST)
    assert raised.value.status == 401 and not raised.value.retryable


def test_a_stopped_peer_is_retryable_and_comes_back_with_its_data(distribution):
    with RegistryClient(distribution.url, timeout=5, outbound=LOOPBACK_ALLOWED) as client:
        digest, manifest = push_image(client, "team/outage", "v1", seed="outage")
        distribution.kill()
        try:
            with pytest.raises(RegistryUnreachable) as raised:
                client.manifest("team/outage", "v1")
            assert raised.value.retryable and raised.value.status is None
            assert not client.ping().ok
        finally:
            distribution.start()
        assert client.manifest("team/outage", "v1").data == manifest


def test_a_peer_dying_during_an_upload_is_retryable(distribution):
    data = os.urandom(4 * MiB)

    def chunks_then_crash():
        yield data[:MiB]
        distribution.kill()
        yield from chunks_of(data[MiB:], MiB)

    with RegistryClient(distribution.url, timeout=5, outbound=LOOPBACK_ALLOWED) as client:
        try:
            with pytest.raises(RegistryUnreachable) as raised:
                client.push_blob("team/crash", digest_of(data), len(data), chunks_then_crash())
            assert raised.value.retryable
        finally:
            distribution.start()
        assert push(client, "team/crash", data) == digest_of(data)
        assert read_blob(client, "team/crash", digest_of(data))[0] == data


# --- a TLS stand-in ---

class _Registry(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args) -> None:
        pass


class tls_registry:
    """An HTTPS server answering /v2/ with a self-signed certificate."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __enter__(self) -> str:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*self_signed_certificate(self.directory))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc_info) -> None:
        self.server.shutdown()
        self.server.server_close()


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=1))
                   .not_valid_after(now + datetime.timedelta(hours=1))
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path
