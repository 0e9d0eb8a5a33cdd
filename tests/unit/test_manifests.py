from __future__ import annotations

import json

import pytest

from domain.errors import DigestInvalidError, ManifestInvalidError, ManifestTooLargeError
from domain.manifests import (
    DOCKER_MANIFEST,
    FOREIGN_LAYER_TYPES,
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


@pytest.mark.parametrize("media_type", FOREIGN_LAYER_TYPES)
def test_foreign_layers_are_not_required(media_type):
    foreign = dict(LAYER, mediaType=media_type, urls=["https://example.invalid/layer"])
    data = encode({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": CONFIG, "layers": [foreign]})
    assert [b.digest for b in parse_manifest(data, None).required_blobs] == [CONFIG["digest"]]


def test_a_foreign_layer_type_without_urls_is_required():
    foreign = dict(LAYER, mediaType=FOREIGN_LAYER_TYPES[0])
    data = encode({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": CONFIG, "layers": [foreign]})
    assert [b.digest for b in parse_manifest(data, None).required_blobs] == [CONFIG["digest"], LAYER["digest"]]


@pytest.mark.parametrize("where, doc", [
    ("layers[0]", {"layers": [dict(LAYER, mediaType="x", urls=["http://169.254.169.254/x"])]}),
    ("layers[0]", {"layers": [dict(LAYER, urls=["https://example.invalid/layer"])]}),
    ("config", {"config": dict(CONFIG, urls=["https://example.invalid/config"]), "layers": []}),
    ("subject", {"layers": [], "subject": dict(CONFIG, mediaType=OCI_MANIFEST, urls=["https://e.invalid/"])}),
])
def test_urls_are_refused_outside_foreign_layers(where, doc):
    data = encode({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": CONFIG, **doc})
    with pytest.raises(ManifestInvalidError) as error:
        parse_manifest(data, None)
    assert error.value.message == f"{where}.urls is allowed only on foreign (non-distributable) layers"


@pytest.mark.parametrize("urls", [["file:///etc/passwd"], ["gopher://h/x"], ["https://"], "https://e.invalid/x",
                                  [1], ["https://e.invalid/x#frag"], ["http://[::1/x"]])
def test_foreign_layer_urls_must_be_http(urls):
    foreign = dict(LAYER, mediaType=FOREIGN_LAYER_TYPES[1], urls=urls)
    data = encode({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": CONFIG, "layers": [foreign]})
    with pytest.raises(ManifestInvalidError, match="urls must be a list of http"):
        parse_manifest(data, None)


def test_an_index_child_with_urls_is_refused():
    child = {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "3" * 64, "size": 5, "urls": ["https://e.invalid/"]}
    with pytest.raises(ManifestInvalidError, match=r"manifests\[0\]\.urls"):
        parse_manifest(encode({"schemaVersion": 2, "manifests": [child]}), None)


@pytest.mark.parametrize("version", ["2.0", "true", '"2"', "2e0", "null"])
def test_schema_version_must_be_the_integer_2(version):
    data = b'{"schemaVersion": %s, "mediaType": "%s", "config": %s, "layers": []}' % (
        version.encode(), OCI_MANIFEST.encode(), json.dumps(CONFIG).encode())
    with pytest.raises(ManifestInvalidError, match="schemaVersion must be 2"):
        parse_manifest(data, None)


@pytest.mark.parametrize("duplicated", [
    '{"schemaVersion": 2, "schemaVersion": 2, "config": %(config)s, "layers": []}',
    '{"schemaVersion": 2, "config": %(config)s, "layers": [%(layer)s], "layers": []}',
    '{"schemaVersion": 2, "config": %(config)s, "layers": [], "annotations": {"a": "1", "a": "2"}}',
    '{"schemaVersion": 2, "config": %(dup_digest)s, "layers": []}',
])
def test_duplicate_keys_are_refused_at_any_depth(duplicated):
    dup_digest = json.dumps(CONFIG)[:-1] + ', "digest": "sha256:' + "9" * 64 + '"}'
    data = (duplicated % {"config": json.dumps(CONFIG), "layer": json.dumps(LAYER), "dup_digest": dup_digest}).encode()
    with pytest.raises(ManifestInvalidError, match="duplicate keys"):
        parse_manifest(data, OCI_MANIFEST)


def test_sizes_beyond_64_bits_are_refused():
    data = encode({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": dict(CONFIG, size=2**63), "layers": []})
    with pytest.raises(ManifestInvalidError, match="size"):
        parse_manifest(data, None)


def test_a_4_mib_manifest_of_distinct_keys_passes_the_duplicate_key_check():
    """The duplicate-key check walks every object of the largest manifest taken (its cost, about
    40 ms of 240 ms here, is a benchmark's business, not a timed test's)."""
    layers = [dict(LAYER, digest=f"sha256:{i:064x}", annotations={"n": str(i)}) for i in range(22_000)]
    data = encode({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": CONFIG, "layers": layers})
    assert MAX_MANIFEST_BYTES * 0.9 < len(data) <= MAX_MANIFEST_BYTES
    assert len(parse_manifest(data, None).layers) == 22_000


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
