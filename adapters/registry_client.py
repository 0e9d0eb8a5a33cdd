"""A client of a remote registry over the OCI Distribution API, for replication and proxy-cache
projects: manifests, tags, the catalog, blobs streamed in and out (never a whole blob in
memory), cross-repository mounts, referrers, and `ping()` for a "test connection" button.

Referrers follow distribution-spec 1.1: listed by the referrers API, or — where the registry has
none — from the index under the subject's referrers tag (`sha256-<hex>`); a manifest with a
`subject` pushed to a registry that does not answer `OCI-Subject` is added to that index, the
upkeep the spec leaves to clients.

Authentication works the way docker and containerd do it: a request goes out with what the
client already knows; a `401` names the scheme in `WWW-Authenticate`. `Basic` is then sent on
every request. `Bearer realm=...,service=...,scope=...` means a token from the realm (asked with
Basic credentials when there are some, anonymously otherwise), cached per set of scopes and
fetched before the request from then on, so that a streamed upload never meets a challenge.
Authorization goes only to the registry's own origin (and to the token realm): a redirect to
another host, such as a presigned S3 URL, gets none.

Failures raise RegistryClientError (or a subclass) with the HTTP status, the OCI error `code`
of the body, and `retryable` (network errors, timeouts, 5xx, 408, 429) with `retry_after`.

    with RegistryClient("https://harbor.example.com", "robot$sync", secret) as remote:
        with source.open_blob("team/app", digest) as blob:
            remote.push_blob("library/app", digest, blob.size, blob)
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import http
import json
import re
import ssl
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import chain
from typing import Iterable, Iterator, NamedTuple

import httpx

from adapters.outbound import OutboundGuard, OutboundRefused

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
# Every manifest and index type: a registry that is not told a type is accepted may refuse to
# serve it (Distribution answers MANIFEST_UNKNOWN for an OCI manifest without the Accept).
MANIFEST_MEDIA_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST,
                        DOCKER_SCHEMA1_SIGNED, DOCKER_SCHEMA1)

DEFAULT_TIMEOUT = 30.0
CHUNK_SIZE = 1024 * 1024
MAX_REDIRECTS = 5
MAX_PAGES = 10_000
DEFAULT_TOKEN_SECONDS = 60  # what the token specification assumes when `expires_in` is absent
TOKEN_MARGIN_SECONDS = 10  # a token this close to expiry is renewed before use
RETRYABLE_STATUSES = frozenset({408, 429})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}
CATALOG_SCOPE = "registry:catalog:*"
# What a registry without the referrers API answers there (the spec's signal is the 404).
REFERRERS_UNSUPPORTED_STATUSES = frozenset({404, 405})
USER_AGENT = "portlog-registry-client/1"

_CHALLENGE_PARAM = re.compile(r'([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')
_ERROR_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,39}")  # MANIFEST_UNKNOWN, DENIED, …
_ERRNO_PREFIX = re.compile(r"^\[Errno -?\d+\]\s*")
_NOT_IN_A_TAG = re.compile(r"[^A-Za-z0-9_.-]")


# --- results and errors ---

@dataclass(frozen=True)
class PingResult:
    """What a "test connection" shows: whether the registry answers and accepts the credentials."""

    ok: bool
    status: int | None  # the HTTP status of /v2/; None when no answer came
    message: str


class Manifest(NamedTuple):
    data: bytes
    media_type: str
    digest: str


class RegistryClientError(Exception):
    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 retryable: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code  # the OCI error code of the answer, such as MANIFEST_UNKNOWN
        self.retryable = retryable
        self.retry_after = retry_after  # seconds, from Retry-After


class RegistryUnreachable(RegistryClientError):
    """No answer: connection refused or cut, timeout, name resolution, TLS."""


class RegistryAuthenticationError(RegistryClientError):
    """Credentials refused (401), by the registry or by its token service, or access denied (403)."""


# --- the client ---

class RegistryClient:
    def __init__(self, url: str, username: str | None = None, password: str | None = None, *,
                 insecure: bool = False, timeout: float = DEFAULT_TIMEOUT,
                 outbound: OutboundGuard | None = None, transport: httpx.BaseTransport | None = None) -> None:
        """`url` is the registry's base (https://harbor.example.com); `insecure` skips TLS
        certificate verification; every connection (redirects and token realms too) goes through
        `outbound` (the built-in refusals when None); `transport` replaces it in tests."""
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._base = httpx.URL(self.url + "/")
        self._basic = _basic_authorization(username, password) if username is not None else None
        self._scheme: str | None = None  # "basic" or "bearer", once a challenge said so
        self._realm: str | None = None
        self._service: str | None = None
        self._tokens: dict[frozenset[str], _Token] = {}
        transport = transport or (outbound or OutboundGuard()).httpx_transport(verify=not insecure)
        self._http = httpx.Client(timeout=timeout, transport=transport,
                                  follow_redirects=False, headers={"User-Agent": USER_AGENT})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- the registry ---

    def ping(self) -> PingResult:
        """GET /v2/ with the credentials; never raises for a network or authentication failure."""
        try:
            response = self._request("GET", "/v2/", ())
        except RegistryClientError as error:
            return PingResult(False, error.status, error.message)
        if response.status_code == 200:
            return PingResult(True, 200, "the registry answers and accepts the credentials"
                              if self._basic else "the registry answers")
        if response.status_code == 401:
            return PingResult(False, 401, "wrong username or password" if self._basic
                              else "the registry requires credentials")
        return PingResult(False, response.status_code, _failure_message(response, "GET /v2/"))

    def catalog(self, page_size: int | None = None) -> list[str]:
        """Every repository name, following the `Link` pages (`n=page_size` each)."""
        return self._paginated("/v2/_catalog", "repositories", (CATALOG_SCOPE,), page_size)

    def tags(self, name: str, page_size: int | None = None) -> list[str]:
        return self._paginated(f"/v2/{name}/tags/list", "tags", _pull(name), page_size)

    # --- manifests ---

    def manifest(self, name: str, reference: str,
                 accept: Iterable[str] = MANIFEST_MEDIA_TYPES) -> Manifest:
        """(data, media_type, digest) of a manifest by tag or digest."""
        response = self._request("GET", f"/v2/{name}/manifests/{reference}", _pull(name),
                                 headers={"Accept": ", ".join(accept)})
        _expect(response, {200}, f"GET manifest {name}:{reference}")
        data = response.content
        digest = _content_digest(response, data)
        if reference.startswith("sha256:") and digest != reference:
            raise RegistryClientError(f"manifest {name}@{reference} came back with digest {digest}",
                                      code="DIGEST_INVALID")
        return Manifest(data, _manifest_media_type(response, data), digest)

    def manifest_digest(self, name: str, reference: str) -> str | None:
        """The digest a tag (or digest) points to, by HEAD; None when there is no such manifest."""
        response = self._request("HEAD", f"/v2/{name}/manifests/{reference}", _pull(name),
                                 headers={"Accept": ", ".join(MANIFEST_MEDIA_TYPES)})
        if response.status_code == 404:
            return None
        _expect(response, {200}, f"HEAD manifest {name}:{reference}")
        return response.headers.get("docker-content-digest") or self.manifest(name, reference).digest

    def put_manifest(self, name: str, reference: str, data: bytes, media_type: str) -> str:
        """Stores a manifest under a tag or its digest; returns its digest. One with a `subject`
        that the registry did not index (no `OCI-Subject` in its answer) is also added to the
        subject's referrers tag, as the spec asks of clients."""
        response = self._request("PUT", f"/v2/{name}/manifests/{reference}", _push(name),
                                 headers={"Content-Type": media_type}, content=data)
        _expect(response, {200, 201}, f"PUT manifest {name}:{reference}")
        digest = response.headers.get("docker-content-digest") or _sha256(data)
        subject = _subject_of(data)
        if subject and "oci-subject" not in response.headers:
            self._add_to_referrers_tag(name, subject, _referrer_descriptor(data, media_type, digest))
        return digest

    def delete_manifest(self, name: str, digest: str) -> None:
        response = self._request("DELETE", f"/v2/{name}/manifests/{digest}", _delete(name))
        _expect(response, {200, 202, 204}, f"DELETE manifest {name}@{digest}")

    # --- referrers ---

    def referrers(self, name: str, digest: str) -> list[str]:
        """Digests of the manifests whose subject is `digest`, from the referrers API, or from
        the referrers tag where the registry has no such API; [] when there are none."""
        listed = self._referrers_from_api(name, digest)
        if listed is None:
            listed = self._referrers_from_tag(name, digest)
        return list(dict.fromkeys(listed))  # a tag kept by clients may list one twice

    def _referrers_from_api(self, name: str, digest: str) -> list[str] | None:
        """None when the registry does not serve the referrers API."""
        path = f"/v2/{name}/referrers/{digest}"
        pages = self._pages(path, _pull(name), headers={"Accept": OCI_INDEX})
        first = next(pages)
        if not _serves_referrers(first):
            return None
        listed: list[str] = []
        for response in chain([first], pages):
            _expect(response, {200}, f"GET {path}")
            index = _oci_index(response.content)
            if index is None:
                raise RegistryClientError(f"GET {path}: a page that is not an OCI image index")
            listed.extend(_listed_digests(index))
        return listed

    def _referrers_from_tag(self, name: str, digest: str) -> list[str]:
        found = self._referrers_tag_manifest(name, digest)
        index = _oci_index(found.data) if found else None
        return _listed_digests(index) if index is not None else []  # not an index: none, says the spec

    def _add_to_referrers_tag(self, name: str, subject: str, descriptor: dict) -> None:
        """Appends the referrer to the index under its subject's referrers tag, created when
        absent. Concurrent writers can lose an entry: the spec leaves the race to clients, and
        the registries this is for do not honour conditional PUTs."""
        found = self._referrers_tag_manifest(name, subject)
        index = _oci_index(found.data) if found else _empty_index()
        if index is None:
            raise RegistryClientError(f"{name}:{referrers_tag(subject)} is not an OCI image index: "
                                      f"{descriptor['digest']} could not be listed as a referrer of {subject}")
        if descriptor["digest"] in _listed_digests(index):
            return
        index["manifests"].append(descriptor)
        self.put_manifest(name, referrers_tag(subject), _compact_json(index), OCI_INDEX)

    def _referrers_tag_manifest(self, name: str, subject: str) -> Manifest | None:
        try:
            return self.manifest(name, referrers_tag(subject), accept=(OCI_INDEX,))
        except RegistryClientError as error:
            if error.status == 404:
                return None
            raise

    # --- blobs ---

    def blob_exists(self, name: str, digest: str) -> bool:
        response = self._request("HEAD", f"/v2/{name}/blobs/{digest}", _pull(name))
        if response.status_code == 404:
            return False
        _expect(response, {200}, f"HEAD blob {name}@{digest}")
        return True

    @contextmanager
    def open_blob(self, name: str, digest: str) -> Iterator[BlobStream]:
        """The blob's body as a stream of chunks, following redirects (to presigned URLs, say)."""
        response = self._get_following_redirects(f"/v2/{name}/blobs/{digest}", _pull(name))
        try:
            _expect(response, {200}, f"GET blob {name}@{digest}")
            yield BlobStream(response)
        finally:
            response.close()

    def push_blob(self, name: str, digest: str, size: int, chunks: Iterable[bytes]) -> str:
        """Uploads a blob of `size` bytes in one streamed PUT, whether or not the registry has
        it already (blob_exists first to skip); returns its digest."""
        location = self._start_upload(name)
        target = location.copy_merge_params({"digest": digest})
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        try:
            response = self._request("PUT", target, _push(name), headers=headers,
                                     content=_exactly(size, chunks, digest), replayable=False)
            _expect(response, {201}, f"PUT blob {name}@{digest}")
        except RegistryUnreachable:
            raise  # nobody to tell: the registry forgets the upload in time
        except Exception:
            self._cancel_upload(location, name)
            raise
        return response.headers.get("docker-content-digest") or digest

    def mount_blob(self, name: str, digest: str, from_name: str) -> bool:
        """Links a blob of `from_name` into `name` without copying; False when the registry
        cannot (it then opened an upload, which is cancelled)."""
        response = self._request("POST", f"/v2/{name}/blobs/uploads/", _push(name) + _pull(from_name),
                                 params={"mount": digest, "from": from_name})
        _expect(response, {201, 202}, f"mount {digest} from {from_name} into {name}")
        if response.status_code == 201:
            return True
        if "location" in response.headers:
            self._cancel_upload(response.url.join(response.headers["location"]), name)
        return False

    # --- uploads ---

    def _start_upload(self, name: str) -> httpx.URL:
        response = self._request("POST", f"/v2/{name}/blobs/uploads/", _push(name))
        _expect(response, {202}, f"start an upload to {name}")
        if "location" not in response.headers:
            raise RegistryClientError(f"the registry started an upload to {name} without a Location")
        return response.url.join(response.headers["location"])  # absolute or relative

    def _cancel_upload(self, location: httpx.URL, name: str) -> None:
        """Best effort: a registry forgets abandoned uploads anyway after a while."""
        try:
            self._request("DELETE", location, _push(name)).close()
        except RegistryClientError:
            pass

    # --- pagination and redirects ---

    def _paginated(self, path: str, field: str, scopes: tuple[str, ...], page_size: int | None) -> list[str]:
        params = {"n": str(page_size)} if page_size else None
        items: list[str] = []
        for response in self._pages(path, scopes, params=params):
            _expect(response, {200}, f"GET {path}")
            items.extend(response.json().get(field) or [])  # Distribution sends "tags": null
        return items

    def _pages(self, path: str, scopes: tuple[str, ...], *, params: dict[str, str] | None = None,
               headers: dict[str, str] | None = None) -> Iterator[httpx.Response]:
        """Each page's answer, unchecked (the caller judges it before asking for the next), then
        the pages its `Link: <…>; rel="next"` names."""
        url: str | httpx.URL | None = path
        for _ in range(MAX_PAGES):
            response = self._request("GET", url, scopes, params=params, headers=headers)
            yield response
            url, params = _next_page(response), None  # the next link carries n and last
            if url is None:
                return
        raise RegistryClientError(f"GET {path}: more than {MAX_PAGES} pages")

    def _get_following_redirects(self, path: str, scopes: tuple[str, ...]) -> httpx.Response:
        response = self._request("GET", path, scopes, stream=True)
        for _ in range(MAX_REDIRECTS):
            if response.status_code not in REDIRECT_STATUSES or "location" not in response.headers:
                return response
            response.close()
            # _request sends no Authorization to another origin.
            response = self._request("GET", response.url.join(response.headers["location"]), scopes, stream=True)
        response.close()
        raise RegistryClientError(f"GET {path}: more than {MAX_REDIRECTS} redirects")

    # --- requests and authentication ---

    def _request(self, method: str, url: str | httpx.URL, scopes: tuple[str, ...], *,
                 headers: dict[str, str] | None = None, params: dict[str, str] | None = None,
                 content: bytes | Iterable[bytes] | None = None, stream: bool = False,
                 replayable: bool = True) -> httpx.Response:
        """Sends with the authorization known so far; after a 401 whose challenge the client can
        answer, once more. A streamed body (`replayable=False`) cannot be sent twice."""
        target = self._base.join(url)
        for attempt in (1, 2):
            authorization = self._authorization(target, scopes)
            request = self._http.build_request(method, target, params=params, content=content,
                                               headers={**(headers or {}), **authorization})
            response = self._send(request, stream)
            if response.status_code != 401 or attempt == 2 or not self._same_origin(target):
                return response
            try:
                retry = self._answer_challenge(response, scopes, authorization.get("Authorization", ""))
            except BaseException:
                response.close()
                raise
            if not retry:
                return response
            response.close()
            if not replayable:
                raise RegistryAuthenticationError(
                    f"{method} {target.path}: the credentials expired while the body was being sent",
                    status=401, retryable=True)
        raise AssertionError("unreachable")

    def _send(self, request: httpx.Request, stream: bool) -> httpx.Response:
        try:
            return self._http.send(request, stream=stream)
        except httpx.TransportError as error:
            raise _unreachable(error, request.url, self.timeout) from error
        except OutboundRefused as error:
            raise RegistryClientError(str(error)) from None

    def _authorization(self, url: httpx.URL, scopes: tuple[str, ...]) -> dict[str, str]:
        if not self._same_origin(url):
            return {}
        if self._scheme == "basic" and self._basic:
            return {"Authorization": self._basic}
        if self._scheme == "bearer":
            return {"Authorization": f"Bearer {self._token(scopes)}"}
        return {}

    def _answer_challenge(self, response: httpx.Response, scopes: tuple[str, ...], sent: str) -> bool:
        """Learns what the 401 asks for; True when a second attempt may pass."""
        challenge = _challenge(response)
        if challenge is None:
            return False
        scheme, params = challenge
        if scheme == "basic":
            if self._basic is None or sent.startswith("Basic "):
                return False
            self._scheme = "basic"
            return True
        if not params.get("realm"):
            return False
        self._scheme, self._service = "bearer", params.get("service")
        self._realm = str(self._base.join(params["realm"]))
        self._tokens.pop(frozenset(scopes), None)
        self._fetch_token(scopes, tuple(params.get("scope", "").split()))
        return True

    def _token(self, scopes: tuple[str, ...]) -> str:
        token = self._tokens.get(frozenset(scopes))
        if token is None or token.expires_at - TOKEN_MARGIN_SECONDS < time.monotonic():
            token = self._fetch_token(scopes)
        return token.value

    def _fetch_token(self, scopes: tuple[str, ...], challenged: tuple[str, ...] = ()) -> _Token:
        """Asks the realm for a token holding `scopes` and those the challenge named."""
        query = [("scope", scope) for scope in sorted(set(scopes) | set(challenged))]
        if self._service:
            query.insert(0, ("service", self._service))
        headers = {"Authorization": self._basic} if self._basic else {}
        response = self._send(self._http.build_request("GET", self._realm, params=query, headers=headers),
                              stream=False)
        if response.status_code in (401, 403):
            raise RegistryAuthenticationError(
                f"wrong username or password (the token service at {self._realm} answered "
                f"{response.status_code})", status=response.status_code, code=_oci_error_code(response))
        _expect(response, {200}, f"token from {self._realm}")
        token = _token_from(response)
        self._tokens[frozenset(scopes)] = token
        return token

    def _same_origin(self, url: httpx.URL) -> bool:
        return _origin(url) == _origin(self._base)


class BlobStream:
    """An open blob: `size` (None when the registry does not say), and iteration over its
    chunks. Network failures while reading raise RegistryUnreachable."""

    def __init__(self, response: httpx.Response, chunk_size: int = CHUNK_SIZE) -> None:
        self._response = response
        self._chunk_size = chunk_size
        length = response.headers.get("content-length")
        self.size = int(length) if length and length.isdigit() else None

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._response.iter_bytes(self._chunk_size)
        except httpx.TransportError as error:
            raise _unreachable(error, self._response.url, None) from error


class _Token(NamedTuple):
    value: str
    expires_at: float  # time.monotonic()


# --- helpers ---

def _pull(name: str) -> tuple[str, ...]:
    return (f"repository:{name}:pull",)


def _push(name: str) -> tuple[str, ...]:
    return (f"repository:{name}:pull,push",)


def _delete(name: str) -> tuple[str, ...]:
    return (f"repository:{name}:delete",)


def _basic_authorization(username: str, password: str | None) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password or ''}".encode()).decode()


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or DEFAULT_PORTS.get(url.scheme)


def _challenge(response: httpx.Response) -> tuple[str, dict[str, str]] | None:
    """The scheme ("basic" or "bearer") and parameters of the 401's challenge; Bearer first."""
    found: dict[str, dict[str, str]] = {}
    for value in response.headers.get_list("www-authenticate"):
        scheme, _, rest = value.strip().partition(" ")
        params = {key.lower(): quoted or bare for key, quoted, bare in _CHALLENGE_PARAM.findall(rest)}
        found.setdefault(scheme.lower(), params)
    for scheme in ("bearer", "basic"):
        if scheme in found:
            return scheme, found[scheme]
    return None


def _token_from(response: httpx.Response) -> _Token:
    try:
        document = response.json()
        value = document.get("token") or document["access_token"]
    except (ValueError, KeyError, AttributeError):
        raise RegistryClientError(f"the token service at {response.url} answered without a token") from None
    lifetime = document.get("expires_in")
    seconds = lifetime if isinstance(lifetime, (int, float)) and lifetime > 0 else DEFAULT_TOKEN_SECONDS
    return _Token(value, time.monotonic() + seconds)


def _next_page(response: httpx.Response) -> httpx.URL | None:
    link = response.links.get("next", {}).get("url")
    return response.url.join(link) if link else None


def referrers_tag(digest: str) -> str:
    """The referrers tag schema: the algorithm (32 characters at most), '-', the encoded part
    (64 at most), anything a tag cannot hold replaced with '-'."""
    algorithm, _, encoded = digest.partition(":")
    return _NOT_IN_A_TAG.sub("-", f"{algorithm[:32]}-{encoded[:64]}")


def _serves_referrers(response: httpx.Response) -> bool:
    """False for what a registry without the referrers API answers there: 404 (a registry with
    it never does), 405, UNSUPPORTED, or a 200 that is not an OCI image index."""
    if response.status_code == 200:
        return _oci_index(response.content) is not None
    return response.status_code not in REFERRERS_UNSUPPORTED_STATUSES and _oci_error_code(response) != "UNSUPPORTED"


def _oci_index(data: bytes) -> dict | None:
    try:
        document = json.loads(data)
    except ValueError:
        return None
    if (not isinstance(document, dict) or not isinstance(document.get("manifests"), list)
            or document.get("mediaType", OCI_INDEX) != OCI_INDEX):
        return None
    return document


def _empty_index() -> dict:
    return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


def _listed_digests(index: dict) -> list[str]:
    return [entry["digest"] for entry in index["manifests"]
            if isinstance(entry, dict) and isinstance(entry.get("digest"), str)]


def _subject_of(data: bytes) -> str | None:
    try:
        subject = json.loads(data).get("subject")
    except (ValueError, AttributeError):
        return None
    return subject.get("digest") if isinstance(subject, dict) else None


def _referrer_descriptor(data: bytes, media_type: str, digest: str) -> dict:
    """The entry of a referrers list: `artifactType`, or the config's media type for an image
    manifest without one, and the manifest's annotations."""
    document = json.loads(data)
    descriptor: dict = {"mediaType": media_type, "digest": digest, "size": len(data)}
    artifact_type = document.get("artifactType") or (document.get("config") or {}).get("mediaType")
    if artifact_type:
        descriptor["artifactType"] = artifact_type
    if document.get("annotations"):
        descriptor["annotations"] = document["annotations"]
    return descriptor


def _compact_json(document: dict) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _exactly(size: int, chunks: Iterable[bytes], digest: str) -> Iterator[bytes]:
    """The chunks, checked against the announced size before a byte too many goes out."""
    sent = 0
    for chunk in chunks:
        sent += len(chunk)
        if sent > size:
            raise RegistryClientError(f"blob {digest}: the chunks hold more than the announced {size} bytes")
        if chunk:
            yield bytes(chunk)
    if sent != size:
        raise RegistryClientError(f"blob {digest}: the chunks hold {sent} bytes, not the announced {size}")


def _sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _content_digest(response: httpx.Response, data: bytes) -> str:
    """The sha256 of the bytes received, unless the registry names another algorithm."""
    header = response.headers.get("docker-content-digest", "")
    if header and not header.startswith("sha256:"):
        return header
    return _sha256(data)


def _manifest_media_type(response: httpx.Response, data: bytes) -> str:
    content_type = response.headers.get("content-type", "").split(";")[0].strip()
    if content_type and content_type not in ("application/json", "application/octet-stream"):
        return content_type
    try:
        return json.loads(data).get("mediaType") or content_type
    except (ValueError, AttributeError):
        return content_type


def _expect(response: httpx.Response, statuses: set[int], action: str) -> None:
    if response.status_code not in statuses:
        raise _status_error(response, action)


def _status_error(response: httpx.Response, action: str) -> RegistryClientError:
    status = response.status_code
    code = _oci_error_code(response)
    kind = RegistryAuthenticationError if status in (401, 403) else RegistryClientError
    return kind(_failure_message(response, action), status=status, code=code,
                retryable=status >= 500 or status in RETRYABLE_STATUSES,
                retry_after=_retry_after(response.headers.get("retry-after")))


def _failure_message(response: httpx.Response, action: str) -> str:
    """The status and the OCI error code, or the status's standard phrase: never the peer's own
    words, which could carry whatever a service that is no registry answers."""
    code = _oci_error_code(response)
    return f"{action}: {response.status_code} {code or _phrase(response.status_code)}".rstrip()


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _oci_error_code(response: httpx.Response) -> str | None:
    """The code of the body's first {"errors": [{"code", …}]}, if it has one that looks like one."""
    if response.request.method == "HEAD":
        return None
    try:
        response.read()
        code = response.json()["errors"][0]["code"]
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, httpx.HTTPError, httpx.StreamError):
        return None
    return code if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else None


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait, from `Retry-After: 120` or `Retry-After: <HTTP date>`."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max((when - datetime.now(timezone.utc)).total_seconds(), 0.0)


def _unreachable(error: httpx.TransportError, url: httpx.URL, timeout: float | None) -> RegistryUnreachable:
    """A network failure in words a person can act on; TLS failures are not worth a retry."""
    where = url.netloc.decode()
    tls = _tls_cause(error)
    if tls is not None:
        reason = getattr(tls, "verify_message", None) or getattr(tls, "reason", None) or str(tls)
        return RegistryUnreachable(f"TLS with {where} failed: {reason} (is the registry's certificate "
                                   f"trusted? `insecure` skips the verification)")
    if isinstance(error, httpx.TimeoutException):
        within = f" within {timeout:g} s" if timeout else " in time"
        return RegistryUnreachable(f"{where} did not answer{within}", retryable=True)
    if isinstance(error, httpx.ConnectError):
        return RegistryUnreachable(f"cannot connect to {where}: {_reason(error)}", retryable=True)
    if isinstance(error, httpx.ProtocolError):  # its text may quote what a service that is no registry sent
        return RegistryUnreachable(f"{where} gave no valid HTTP answer", retryable=True)
    return RegistryUnreachable(f"the connection to {where} failed: {_reason(error)}", retryable=True)


def _tls_cause(error: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _reason(error: Exception) -> str:
    text = _ERRNO_PREFIX.sub("", str(error)).strip()
    return text[:1].lower() + text[1:] if text else type(error).__name__
