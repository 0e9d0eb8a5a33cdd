from __future__ import annotations

import pytest

from tests.support import oci
from tests.support.oci import OCI_INDEX, digest_of, push_image

pytestmark = pytest.mark.both_databases

NAME = "team/app"


def push_referrer(client, subject: bytes, artifact_type: str, payload: bytes) -> str:
    return oci.push_referrer(client, NAME, subject, artifact_type, payload)


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


def test_harbor_artifacts_carry_their_referrers_as_accessories(client):
    subject_digest, subject = push_image(client, NAME, "base")
    signature = push_referrer(client, subject, "application/vnd.dev.cosign.artifact.sig.v1+json", b"sig")
    sbom = push_referrer(client, subject, "application/spdx+json", b"sbom")
    url = f"/api/v2.0/projects/team/repositories/app/artifacts/{subject_digest}"
    assert "accessories" not in client.get(url).json()
    accessories = client.get(url, params={"with_accessory": "true"}).json()["accessories"]
    by_digest = {item["digest"]: item for item in accessories}
    assert by_digest[signature]["type"] == "signature.cosign"
    assert by_digest[sbom]["type"] == "sbom.spdx"
    assert by_digest[sbom]["subject_artifact_digest"] == subject_digest


def test_with_accessories_the_artifact_list_nests_referrers_under_their_subject(client):
    subject_digest, subject = push_image(client, NAME, "base")
    signature = push_referrer(client, subject, "application/vnd.dev.cosign.artifact.sig.v1+json", b"sig")
    url = "/api/v2.0/projects/team/repositories/app/artifacts"
    assert {a["digest"] for a in client.get(url).json()} == {subject_digest, signature}
    nested = client.get(url, params={"with_accessory": "true"})
    assert [a["digest"] for a in nested.json()] == [subject_digest]
    assert nested.headers["X-Total-Count"] == "1"
    assert [a["digest"] for a in nested.json()[0]["accessories"]] == [signature]
