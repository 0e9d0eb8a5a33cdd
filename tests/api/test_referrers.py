from __future__ import annotations

import pytest

from tests.support import oci
from tests.support.oci import OCI_INDEX, digest_of, push_image

pytestmark = pytest.mark.both_databases

NAME = "team/app"


def push_referrer(client, subject: bytes, artifact_type: str, payload: bytes, tag: str | None = None) -> str:
    return oci.push_referrer(client, NAME, subject, artifact_type, payload, tag)


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


def test_the_artifact_list_nests_untagged_referrers_under_their_subject(client):
    subject_digest, subject = push_image(client, NAME, "base")
    signature = push_referrer(client, subject, "application/vnd.dev.cosign.artifact.sig.v1+json", b"sig")
    url = "/api/v2.0/projects/team/repositories/app/artifacts"
    assert [a["digest"] for a in client.get(url).json()] == [subject_digest]  # as Harbor: accessories are no rows
    nested = client.get(url, params={"with_accessory": "true"})
    assert [a["digest"] for a in nested.json()] == [subject_digest]
    assert nested.headers["X-Total-Count"] == "1"
    assert [a["digest"] for a in nested.json()[0]["accessories"]] == [signature]


def test_a_tagged_referrer_is_listed_found_by_its_tag_and_counted_alike_everywhere(client):
    """One definition (projections/catalog.py, LISTED_ARTIFACT): a referrer with a tag is an
    artifact of its own; an untagged one nests under its subject."""
    subject_digest, subject = push_image(client, NAME, "v1")
    signature = push_referrer(client, subject, "application/vnd.dev.cosign.artifact.sig.v1+json", b"sig")
    sbom = push_referrer(client, subject, "application/spdx+json", b"sbom", tag="sbom")
    url = "/api/v2.0/projects/team/repositories/app/artifacts"
    for params in ({}, {"with_accessory": "true"}):
        listed = client.get(url, params=params)
        assert {a["digest"] for a in listed.json()} == {subject_digest, sbom}
        assert listed.headers["X-Total-Count"] == "2"
    found = client.get(url, params={"with_accessory": "true", "q": "tags=~sbo"})
    assert [a["digest"] for a in found.json()] == [sbom] and found.headers["X-Total-Count"] == "1"
    nested = {a["digest"]: {x["digest"] for x in a["accessories"]}
              for a in client.get(url, params={"with_accessory": "true"}).json()}
    assert nested[subject_digest] == {signature, sbom}  # still the subject's SBOM too
    assert artifact_counts(client) == (2, 2, 2)

    assert client.delete(f"{url}/sbom/tags/sbom").status_code == 200
    assert [a["digest"] for a in client.get(url, params={"with_accessory": "true"}).json()] == [subject_digest]
    assert client.get(url, params={"q": "tags=~sbo"}).json() == []
    assert artifact_counts(client) == (1, 1, 1)


def artifact_counts(client) -> tuple[int, int, int]:
    """A repository's artifact count: its own, in its project's list (the project page), in the list of all."""
    own = client.get("/api/v2.0/projects/team/repositories/app").json()["artifact_count"]
    in_project = {r["name"]: r["artifact_count"] for r in client.get("/api/v2.0/projects/team/repositories").json()}
    in_all = {r["name"]: r["artifact_count"] for r in client.get("/api/v2.0/repositories").json()}
    return own, in_project[NAME], in_all[NAME]
