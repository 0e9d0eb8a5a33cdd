from __future__ import annotations

import json

import pytest

from domain.errors import DigestInvalidError, ManifestInvalidError, ManifestTooLargeError
from domain.manifests import (
    DOCKER_MANIFEST,
    MAX_MANIFEST_BYTES,
    OCI_INDEX,
    OCI_MANIFEST,
    compute_digest,
    parse_manifest,
)

CONFIG = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + "1" * 64, "size": 10}
LAYER = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + "2" * 64, "size": 20}


def encode(doc: dict) -> bytes:
    return json.dumps(doc).encode()


def test_image_manifest_parsed_with_its_references():
    data = encode({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": CONFIG, "layers": [LAYER]})
    manifest = parse_manifest(data, OCI_MANIFEST)
    assert manifest.digest == compute_digest(data)
    assert manifest.size == len(data)
    assert [b.digest for b in manifest.required_blobs] == [CONFIG["digest"], LAYER["digest"]]
    assert manifest.artifact_type == CONFIG["mediaType"]


def test_missing_media_type_taken_from_content_type():
    data = encode({"schemaVersion": 2, "config": CONFIG, "layers": [LAYER]})
    assert parse_manifest(data, DOCKER_MANIFEST).media_type == DOCKER_MANIFEST
    assert parse_manifest(data, "application/octet-stream").media_type == OCI_MANIFEST


def test_index_without_media_type_is_recognised():
    child = {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "3" * 64, "size": 5}
    manifest = parse_manifest(encode({"schemaVersion": 2, "manifests": [child]}), None)
    assert manifest.media_type == OCI_INDEX
    assert manifest.manifests[0].digest == child["digest"]


def test_artifact_type_and_subject():
    subject = {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "4" * 64, "size": 7}
    data = encode({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/x.sbom",
                   "config": CONFIG, "layers": [LAYER], "subject": subject,
                   "annotations": {"org.example": "yes"}})
    manifest = parse_manifest(data, OCI_MANIFEST)
    assert manifest.artifact_type == "application/x.sbom"
    assert manifest.subject.digest == subject["digest"]
    assert manifest.annotations == {"org.example": "yes"}


def test_foreign_layers_are_not_required():
    foreign = dict(LAYER, urls=["https://example.invalid/layer"])
    data = encode({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": CONFIG, "layers": [foreign]})
    assert [b.digest for b in parse_manifest(data, None).required_blobs] == [CONFIG["digest"]]


@pytest.mark.parametrize("doc, fragment", [
    ({"schemaVersion": 1, "config": CONFIG, "layers": []}, "schemaVersion"),
    ({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}, "config"),
    ({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": dict(CONFIG, size=-1), "layers": []}, "size"),
    ({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": dict(CONFIG, digest="sha256:zz"),
      "layers": []}, "digest"),
    ({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": CONFIG, "layers": {}}, "layers"),
    ({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v1+json"}, "schema1"),
    ({"schemaVersion": 2, "mediaType": "text/plain", "config": CONFIG}, "unsupported"),
    ({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": CONFIG, "annotations": {"a": 1}}, "annotations"),
])
def test_invalid_manifests(doc, fragment):
    with pytest.raises(ManifestInvalidError) as error:
        parse_manifest(encode(doc), None)
    assert fragment in str(error.value) + str(error.value.detail)


def test_not_json_and_not_object():
    for data in (b"{bad", b"[1, 2]", b""):
        with pytest.raises(ManifestInvalidError):
            parse_manifest(data, OCI_MANIFEST)


def test_content_type_must_agree_with_declared_type():
    data = encode({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": CONFIG, "layers": []})
    with pytest.raises(ManifestInvalidError):
        parse_manifest(data, DOCKER_MANIFEST)


def test_digest_in_url_must_match_body():
    data = encode({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": CONFIG, "layers": []})
    assert parse_manifest(data, None, compute_digest(data)).digest == compute_digest(data)
    with pytest.raises(DigestInvalidError):
        parse_manifest(data, None, "sha256:" + "0" * 64)


def test_size_limit():
    with pytest.raises(ManifestTooLargeError):
        parse_manifest(b" " * (MAX_MANIFEST_BYTES + 1), OCI_MANIFEST)
