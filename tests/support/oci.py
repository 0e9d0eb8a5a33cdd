"""Small helpers to speak the registry protocol from tests."""

from __future__ import annotations

import hashlib
import json

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def push_blob(client, name: str, data: bytes) -> str:
    digest = digest_of(data)
    response = client.post(f"/v2/{name}/blobs/uploads/?digest={digest}", content=data)
    assert response.status_code == 201, response.text
    return digest


def descriptor(media_type: str, data: bytes, **extra) -> dict:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


def image_manifest(config: bytes, layers: list[bytes], media_type: str = OCI_MANIFEST,
                   **extra) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [descriptor(OCI_LAYER, layer) for layer in layers],
        **extra,
    }
    return json.dumps(doc).encode()


def push_image(client, name: str, tag: str, seed: str = "x", **extra) -> tuple[str, bytes]:
    """Pushes a config and one layer, then the manifest by tag; returns (digest, manifest)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    layer = f"layer-{seed}".encode()
    push_blob(client, name, config)
    push_blob(client, name, layer)
    manifest = image_manifest(config, [layer], **extra)
    response = client.put(f"/v2/{name}/manifests/{tag}", content=manifest,
                          headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text
    return response.headers["Docker-Content-Digest"], manifest


def push_referrer(client, name: str, subject: bytes, artifact_type: str, payload: bytes,
                  tag: str | None = None) -> str:
    """Pushes an OCI artifact whose subject is the manifest `subject` (by `tag` if given);
    returns its digest."""
    push_blob(client, name, b"{}")
    push_blob(client, name, payload)
    artifact = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
        "config": descriptor("application/vnd.oci.empty.v1+json", b"{}"),
        "layers": [descriptor("application/octet-stream", payload)],
        "subject": descriptor(OCI_MANIFEST, subject),
        "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
    }).encode()
    response = client.put(f"/v2/{name}/manifests/{tag or digest_of(artifact)}", content=artifact,
                          headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text
    return digest_of(artifact)
