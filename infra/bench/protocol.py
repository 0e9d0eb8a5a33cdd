"""Registry operations over one connection, as a client such as skopeo performs them.

Every operation checks the status it expects and raises `ProtocolError` otherwise, so a
benchmark can never count a failed request as work done.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from infra.bench.client import Connection, Response

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MANIFEST_ACCEPT = ", ".join([
    OCI_MANIFEST,
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])
OCTETS = {"Content-Type": "application/octet-stream"}


class ProtocolError(Exception):
    pass


def digest_of(*parts: bytes) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part)
    return f"sha256:{hasher.hexdigest()}"


@dataclass(frozen=True)
class Image:
    """A config, its layers and the manifest that names them, all in memory."""
    config: bytes
    layers: tuple[bytes, ...]
    manifest: bytes

    @classmethod
    def build(cls, config: bytes, layers: list[bytes]) -> Image:
        def descriptor(media_type: str, data: bytes) -> dict:
            return {"mediaType": media_type, "digest": digest_of(data), "size": len(data)}

        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(OCI_LAYER, layer) for layer in layers],
        }).encode()
        return cls(config, tuple(layers), manifest)

    @property
    def blobs(self) -> list[bytes]:
        return [self.config, *self.layers]


def expect(response: Response, status: int, what: str) -> Response:
    if response.status != status:
        detail = response.body[:300].decode("utf-8", "replace")
        raise ProtocolError(f"{what}: HTTP {response.status}, expected {status}: {detail}")
    return response


def _target(location: str) -> str:
    """The path and query of a Location header (Distribution sends an absolute URL)."""
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _with_digest(location: str, digest: str) -> str:
    return f"{location}{'&' if '?' in location else '?'}digest={digest}"


def start_upload(conn: Connection, repo: str) -> str:
    response = expect(conn.request("POST", f"/v2/{repo}/blobs/uploads/", body=b""), 202, "start upload")
    return _target(response.header("location"))


def push_blob(conn: Connection, repo: str, data: bytes, digest: str) -> None:
    """Monolithic upload: POST, then PUT ?digest= with the whole body."""
    location = start_upload(conn, repo)
    expect(conn.request("PUT", _with_digest(location, digest), OCTETS, data), 201, "put blob")


def push_blob_chunked(conn: Connection, repo: str, chunks: list[bytes], digest: str) -> None:
    """Chunked upload: POST, one PATCH with Content-Range per chunk, then an empty PUT ?digest=."""
    location, offset = start_upload(conn, repo), 0
    for chunk in chunks:
        headers = {**OCTETS, "Content-Range": f"{offset}-{offset + len(chunk) - 1}"}
        response = expect(conn.request("PATCH", location, headers, chunk), 202, "patch chunk")
        location, offset = _target(response.header("location")), offset + len(chunk)
    expect(conn.request("PUT", _with_digest(location, digest), OCTETS, b""), 201, "close upload")


def blob_exists(conn: Connection, repo: str, digest: str) -> bool:
    return conn.request("HEAD", f"/v2/{repo}/blobs/{digest}").status == 200


def mount_blob(conn: Connection, repo: str, digest: str, source: str) -> None:
    target = f"/v2/{repo}/blobs/uploads/?mount={digest}&from={source}"
    expect(conn.request("POST", target, body=b""), 201, "mount blob")


def put_manifest(conn: Connection, repo: str, reference: str, manifest: bytes) -> None:
    headers = {"Content-Type": OCI_MANIFEST}
    expect(conn.request("PUT", f"/v2/{repo}/manifests/{reference}", headers, manifest), 201, "put manifest")


def get_manifest(conn: Connection, repo: str, reference: str, method: str = "GET") -> Response:
    response = conn.request(method, f"/v2/{repo}/manifests/{reference}", {"Accept": MANIFEST_ACCEPT})
    return expect(response, 200, f"{method} manifest")


def get_blob(conn: Connection, repo: str, digest: str, size: int, keep: bool = False) -> Response:
    response = expect(conn.request("GET", f"/v2/{repo}/blobs/{digest}", keep_body=keep), 200, "get blob")
    if response.length != size:
        raise ProtocolError(f"get blob: {response.length} bytes, expected {size}")
    return response


def push_image(conn: Connection, repo: str, tag: str, image: Image) -> None:
    """As a client pushes: for each blob a HEAD, and an upload when missing; then the manifest."""
    for blob in image.blobs:
        digest = digest_of(blob)
        if not blob_exists(conn, repo, digest):
            push_blob(conn, repo, blob, digest)
    put_manifest(conn, repo, tag, image.manifest)


def pull_image(conn: Connection, repo: str, tag: str) -> int:
    """As a client pulls: the manifest by tag, then every blob, each checked against its digest."""
    manifest = json.loads(get_manifest(conn, repo, tag).body)
    total = 0
    for descriptor in [manifest["config"], *manifest["layers"]]:
        body = get_blob(conn, repo, descriptor["digest"], descriptor["size"], keep=True).body
        if digest_of(body) != descriptor["digest"]:
            raise ProtocolError(f"pulled blob does not match {descriptor['digest']}")
        total += len(body)
    return total


def list_all(conn: Connection, target: str) -> tuple[int, int]:
    """GETs a paginated list and follows its Link headers; (pages, entries)."""
    pages = entries = 0
    while target:
        response = expect(conn.request("GET", target), 200, f"list {target}")
        document = json.loads(response.body)
        entries += len(document.get("tags") or document.get("repositories") or [])
        pages += 1
        link = response.header("link")
        target = _target(link[link.index("<") + 1:link.index(">")]) if link else ""
    return pages, entries
