from __future__ import annotations

import json

import pytest

from tests.support.oci import OCI_INDEX, OCI_MANIFEST, descriptor, digest_of, push_blob, push_image

pytestmark = pytest.mark.both_databases

NAME = "team/app"


def push_referrer(client, subject: bytes, artifact_type: str, payload: bytes) -> str:
    push_blob(client, NAME, b"{}")
    push_blob(client, NAME, payload)
    artifact = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
        "config": descriptor("application/vnd.oci.empty.v1+json", b"{}"),
        "layers": [descriptor("application/octet-stream", payload)],
        "subject": descriptor(OCI_MANIFEST, subject),
        "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
    }).encode()
    response = client.put(f"/v2/{NAME}/manifests/{digest_of(artifact)}", content=artifact,
                          headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201
    return digest_of(artifact)


def test_no_referrers_is_an_empty_index(client):
    response = client.get(f"/v2/{NAME}/referrers/{digest_of(b'nothing')}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == OCI_INDEX
    assert response.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


def test_referrers_listed_and_filtered(client):
    subject_digest, subject = push_image(client, NAME, "base")
    signature = push_referrer(client, subject, "application/vnd.example.sig", b"sig")
    sbom = push_referrer(client, subject, "application/spdx+json", b"sbom")
    listed = client.get(f"/v2/{NAME}/referrers/{subject_digest}").json()["manifests"]
    assert {m["digest"] for m in listed} == {signature, sbom}
    assert all(m["annotations"]["org.opencontainers.image.created"] for m in listed)
    filtered = client.get(f"/v2/{NAME}/referrers/{subject_digest}?artifactType=application/spdx%2Bjson")
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in filtered.json()["manifests"]] == [sbom]
    assert filtered.json()["manifests"][0]["artifactType"] == "application/spdx+json"


def test_deleted_referrer_disappears(client):
    subject_digest, subject = push_image(client, NAME, "base")
    signature = push_referrer(client, subject, "application/vnd.example.sig", b"sig")
    client.delete(f"/v2/{NAME}/manifests/{signature}")
    assert client.get(f"/v2/{NAME}/referrers/{subject_digest}").json()["manifests"] == []


def test_invalid_subject_digest(client):
    response = client.get(f"/v2/{NAME}/referrers/sha256:nope")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "DIGEST_INVALID"
