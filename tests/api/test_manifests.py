from __future__ import annotations

import json

import pytest

from adapters.storage.paths import blob_path
from tests.support.oci import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    descriptor,
    digest_of,
    image_manifest,
    push_blob,
    push_image,
)

pytestmark = pytest.mark.both_databases

NAME = "team/app"


def errors(response) -> list[str]:
    return [e["code"] for e in response.json()["errors"]]


def test_get_and_head_by_tag_and_digest(client):
    digest, manifest = push_image(client, NAME, "1.0")
    for reference in ("1.0", digest):
        response = client.get(f"/v2/{NAME}/manifests/{reference}",
                              headers={"Accept": OCI_MANIFEST})
        assert response.status_code == 200 and response.content == manifest
        assert response.headers["Content-Type"] == OCI_MANIFEST
        assert response.headers["Docker-Content-Digest"] == digest
        head = client.head(f"/v2/{NAME}/manifests/{reference}")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["Content-Length"] == str(len(manifest))


def test_put_answers_with_location_and_digest(client):
    config, layer = b'{"c":1}', b"layer"
    push_blob(client, NAME, config)
    push_blob(client, NAME, layer)
    manifest = image_manifest(config, [layer])
    response = client.put(f"/v2/{NAME}/manifests/v1", content=manifest,
                          headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201
    assert response.headers["Location"] == f"/v2/{NAME}/manifests/{digest_of(manifest)}"
    assert response.headers["Docker-Content-Digest"] == digest_of(manifest)


def test_put_by_digest_needs_matching_body(client):
    digest, manifest = push_image(client, NAME, "x")
    assert client.put(f"/v2/{NAME}/manifests/{digest}", content=manifest,
                      headers={"Content-Type": OCI_MANIFEST}).status_code == 201
    wrong = client.put(f"/v2/{NAME}/manifests/{digest_of(b'other')}", content=manifest,
                       headers={"Content-Type": OCI_MANIFEST})
    assert wrong.status_code == 400 and errors(wrong) == ["DIGEST_INVALID"]


def test_docker_schema2_and_content_negotiation(client):
    config, layer = b'{"docker":1}', b"docker layer"
    push_blob(client, NAME, config)
    push_blob(client, NAME, layer)
    manifest = image_manifest(config, [layer], media_type=DOCKER_MANIFEST)
    assert client.put(f"/v2/{NAME}/manifests/d", content=manifest,
                      headers={"Content-Type": DOCKER_MANIFEST}).status_code == 201
    accepted = client.get(f"/v2/{NAME}/manifests/d",
                          headers={"Accept": f"{OCI_MANIFEST}, {DOCKER_MANIFEST}"})
    assert accepted.status_code == 200 and accepted.headers["Content-Type"] == DOCKER_MANIFEST
    refused = client.get(f"/v2/{NAME}/manifests/d", headers={"Accept": OCI_MANIFEST})
    assert refused.status_code == 404 and errors(refused) == ["MANIFEST_UNKNOWN"]
    assert client.get(f"/v2/{NAME}/manifests/d", headers={"Accept": "*/*"}).status_code == 200


def test_manifest_without_media_type_takes_content_type(client):
    config, layer = b'{"umoci":1}', b"umoci layer"
    push_blob(client, NAME, config)
    push_blob(client, NAME, layer)
    doc = json.loads(image_manifest(config, [layer]))
    del doc["mediaType"]
    manifest = json.dumps(doc).encode()
    client.put(f"/v2/{NAME}/manifests/u", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert client.get(f"/v2/{NAME}/manifests/u").headers["Content-Type"] == OCI_MANIFEST


def test_index_requires_children_in_repository(client):
    child_digest, child = push_image(client, NAME, "amd64")
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        descriptor(OCI_MANIFEST, child, platform={"architecture": "amd64", "os": "linux"})]}).encode()
    elsewhere = client.put("/v2/team/other/manifests/multi", content=index,
                           headers={"Content-Type": OCI_INDEX})
    assert elsewhere.status_code == 400 and errors(elsewhere) == ["MANIFEST_BLOB_UNKNOWN"]
    assert client.put(f"/v2/{NAME}/manifests/multi", content=index,
                      headers={"Content-Type": OCI_INDEX}).status_code == 201
    assert client.get(f"/v2/{NAME}/manifests/multi").json()["manifests"][0]["digest"] == child_digest


def test_artifact_with_subject_answers_oci_subject(client):
    subject_digest, subject = push_image(client, NAME, "base")
    empty = b"{}"
    push_blob(client, NAME, empty)
    push_blob(client, NAME, b"signature")
    artifact = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sig",
        "config": descriptor("application/vnd.oci.empty.v1+json", empty),
        "layers": [descriptor("application/octet-stream", b"signature")],
        "subject": descriptor(OCI_MANIFEST, subject),
    }).encode()
    response = client.put(f"/v2/{NAME}/manifests/{digest_of(artifact)}", content=artifact,
                          headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201
    assert response.headers["OCI-Subject"] == subject_digest


def test_missing_blobs_are_refused_and_nothing_is_visible(client):
    config, layer = b'{"c":2}', b"never uploaded"
    push_blob(client, NAME, config)
    manifest = image_manifest(config, [layer])
    response = client.put(f"/v2/{NAME}/manifests/broken", content=manifest,
                          headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 400 and errors(response) == ["MANIFEST_BLOB_UNKNOWN"]
    assert response.json()["errors"][0]["detail"]["digest"] == digest_of(layer)
    assert client.get(f"/v2/{NAME}/manifests/broken").status_code == 404
    assert client.get(f"/v2/{NAME}/manifests/{digest_of(manifest)}").status_code == 404
    assert "broken" not in client.get(f"/v2/{NAME}/tags/list").json()["tags"]


def test_a_refused_manifest_leaves_no_bytes_in_the_store(client, services):
    """Validated first (parsed, sized, its references checked), stored after: nothing invalid is
    ever at a content address."""
    config, layer = b'{"c":3}', b"never uploaded either"
    push_blob(client, NAME, config)
    missing_layer = image_manifest(config, [layer])
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": [descriptor(OCI_MANIFEST, missing_layer)]}).encode()
    wrong_size = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": dict(
        descriptor("application/vnd.oci.image.config.v1+json", config), size=99), "layers": []}).encode()
    for manifest, content_type, code in ((missing_layer, OCI_MANIFEST, "MANIFEST_BLOB_UNKNOWN"),
                                         (index, OCI_INDEX, "MANIFEST_BLOB_UNKNOWN"),
                                         (wrong_size, OCI_MANIFEST, "MANIFEST_INVALID")):
        for name in (NAME, "team/new"):  # a repository that exists, and one that holds nothing
            response = client.put(f"/v2/{name}/manifests/v1", content=manifest, headers={"Content-Type": content_type})
            assert response.status_code == 400
            assert errors(response) == [code if name == NAME else "MANIFEST_BLOB_UNKNOWN"]
            assert not blob_path(services.blobs.root, digest_of(manifest)).exists()
            assert services.blobs.stat(digest_of(manifest)) is None


def test_an_immutable_tag_refusal_leaves_no_bytes_in_the_store(client, services):
    push_image(client, NAME, "v1", seed="first")
    client.post("/api/v1/projects/team/immutable-tag-rules", json={"tags": "v1"}).raise_for_status()
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": "first"}).encode()
    push_blob(client, NAME, config)
    moved = image_manifest(config, [b"layer-first"], annotations={"moved": "yes"})
    response = client.put(f"/v2/{NAME}/manifests/v1", content=moved, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 403 and errors(response) == ["DENIED"]
    assert services.blobs.stat(digest_of(moved)) is None


def test_urls_are_taken_only_on_foreign_layers(client):
    """A layer that is not foreign must be in the repository, `urls` or not (issue 16, item 11)."""
    config = push_blob(client, NAME, b'{"c":4}')
    missing = {"digest": digest_of(b"not here"), "size": 8, "urls": ["http://169.254.169.254/x"]}
    base = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config, "size": 7}}
    for media_type in ("x", "application/vnd.docker.image.rootfs.diff.tar.gzip"):
        refused = client.put(f"/v2/{NAME}/manifests/ssrf", headers={"Content-Type": DOCKER_MANIFEST},
                             content=json.dumps({**base, "layers": [{**missing, "mediaType": media_type}]}))
        assert refused.status_code == 400 and errors(refused) == ["MANIFEST_INVALID"], media_type
        assert "urls is allowed only on foreign" in refused.json()["errors"][0]["message"]
    foreign = {**missing, "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
               "urls": ["https://mcr.microsoft.com/v2/windows/blobs/x"]}
    accepted = client.put(f"/v2/{NAME}/manifests/windows", headers={"Content-Type": DOCKER_MANIFEST},
                          content=json.dumps({**base, "layers": [foreign]}))
    assert accepted.status_code == 201, accepted.text
    not_http = client.put(f"/v2/{NAME}/manifests/ftp", headers={"Content-Type": DOCKER_MANIFEST},
                          content=json.dumps({**base, "layers": [{**foreign, "urls": ["ftp://h/x"]}]}))
    assert not_http.status_code == 400 and errors(not_http) == ["MANIFEST_INVALID"]


def test_a_float_schema_version_and_duplicate_keys_are_refused(client):
    config = push_blob(client, NAME, b'{"c":5}')
    descriptor_json = '{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "%s", "size": 7}' % config
    for body in ('{"schemaVersion": 2.0, "config": %s, "layers": []}' % descriptor_json,
                 '{"schemaVersion": 2, "config": %s, "layers": [], "layers": []}' % descriptor_json,
                 '{"schemaVersion": 2, "config": %s, "annotations": {"a": "1", "a": "2"}}' % descriptor_json):
        response = client.put(f"/v2/{NAME}/manifests/odd", content=body, headers={"Content-Type": OCI_MANIFEST})
        assert response.status_code == 400 and errors(response) == ["MANIFEST_INVALID"], body
    assert client.get(f"/v2/{NAME}/manifests/odd").status_code == 404


def test_malformed_and_oversized_manifests(client):
    bad = client.put(f"/v2/{NAME}/manifests/bad", content=b"{not json",
                     headers={"Content-Type": OCI_MANIFEST})
    assert bad.status_code == 400 and errors(bad) == ["MANIFEST_INVALID"]
    huge = client.put(f"/v2/{NAME}/manifests/huge", content=b" " * (4 * 1024 * 1024 + 1),
                      headers={"Content-Type": OCI_MANIFEST})
    assert huge.status_code == 413 and errors(huge) == ["MANIFEST_INVALID"]
    tag = client.put(f"/v2/{NAME}/manifests/-bad-tag", content=b"{}")
    assert tag.status_code == 400 and errors(tag) == ["TAG_INVALID"]
    assert client.get(f"/v2/{NAME}/manifests/bad").status_code == 404


def test_a_reference_that_cannot_exist_is_unknown_on_reads_and_deletes(client):
    """The OCI conformance suite reads `.INVALID_MANIFEST_NAME` and expects 404 MANIFEST_UNKNOWN;
    only a PUT by such a tag is a client error (TAG_INVALID)."""
    push_image(client, NAME, "1.0")
    for method in ("GET", "HEAD", "DELETE"):
        response = client.request(method, f"/v2/{NAME}/manifests/.INVALID_MANIFEST_NAME")
        assert response.status_code == 404, (method, response.text)
        if method != "HEAD":
            assert errors(response) == ["MANIFEST_UNKNOWN"]
    unknown_repository = client.get("/v2/team/nothing-here/manifests/.INVALID_MANIFEST_NAME")
    assert unknown_repository.status_code == 404 and errors(unknown_repository) == ["NAME_UNKNOWN"]
    put = client.put(f"/v2/{NAME}/manifests/.INVALID_MANIFEST_NAME", content=b"{}",
                     headers={"Content-Type": OCI_MANIFEST})
    assert put.status_code == 400 and errors(put) == ["TAG_INVALID"]


def test_delete_by_tag_removes_only_the_tag(client):
    digest, _ = push_image(client, NAME, "a")
    push_image(client, NAME, "b")  # same content: same digest
    assert client.delete(f"/v2/{NAME}/manifests/a").status_code == 202
    assert client.get(f"/v2/{NAME}/manifests/a").status_code == 404
    assert client.get(f"/v2/{NAME}/manifests/b").status_code == 200
    assert client.get(f"/v2/{NAME}/manifests/{digest}").status_code == 200


def test_delete_by_digest_removes_manifest_and_its_tags(client):
    digest, _ = push_image(client, NAME, "a")
    push_image(client, NAME, "b")
    assert client.delete(f"/v2/{NAME}/manifests/{digest}").status_code == 202
    for reference in ("a", "b", digest):
        response = client.get(f"/v2/{NAME}/manifests/{reference}")
        assert response.status_code == 404 and errors(response) == ["MANIFEST_UNKNOWN"]
    assert client.get(f"/v2/{NAME}/tags/list").json()["tags"] == []


def test_delete_unknown_manifest(client):
    push_image(client, NAME, "a")
    response = client.delete(f"/v2/{NAME}/manifests/{digest_of(b'nothing')}")
    assert response.status_code == 404 and errors(response) == ["MANIFEST_UNKNOWN"]
    unknown_repo = client.delete(f"/v2/team/none/manifests/{digest_of(b'nothing')}")
    assert unknown_repo.status_code == 404 and errors(unknown_repo) == ["NAME_UNKNOWN"]


def test_re_push_after_delete(client):
    digest, manifest = push_image(client, NAME, "again")
    client.delete(f"/v2/{NAME}/manifests/{digest}")
    again, _ = push_image(client, NAME, "again")
    assert again == digest
    assert client.get(f"/v2/{NAME}/manifests/again").content == manifest


def test_moving_a_tag(client):
    first, _ = push_image(client, NAME, "latest", seed="one")
    second, _ = push_image(client, NAME, "latest", seed="two")
    assert first != second
    assert client.get(f"/v2/{NAME}/manifests/latest").headers["Docker-Content-Digest"] == second
    assert client.get(f"/v2/{NAME}/manifests/{first}").status_code == 200


def test_config_blob_is_pullable(client):
    push_image(client, NAME, "c", seed="cfg")
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": "cfg"}).encode()
    response = client.get(f"/v2/{NAME}/blobs/{digest_of(config)}")
    assert response.status_code == 200 and response.content == config
