"""Pulls as of a moment: the read-only view `/v2/as-of/<moment>/<repository>/…` answers as the
repository was then (tags, manifests, blobs, referrers), needs pull on the real repository,
refuses writes, and says why bytes collected since are missing."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from domain.context import RequestContext
from tests.support.auth import PASSWORD, create_user, grant, token, token_access
from tests.support.oci import OCI_MANIFEST, digest_of, push_image, push_referrer

pytestmark = pytest.mark.both_databases


def position(client) -> int:
    return client.app.state.services.projections.catch_up()


def moment_of(at: datetime) -> str:
    return at.strftime("%Y%m%dt%H%M%S.%f")[:-3] + "z"


@pytest.fixture
def history(client):
    """team/app:stable was v1 at `p1` (and at the time `t1`), then moved to v2; `old` was
    deleted; `sig` refers to v1."""
    v1, v1_bytes = push_image(client, "team/app", "stable", seed="v1")
    push_image(client, "team/app", "old", seed="old")
    signature = push_referrer(client, "team/app", v1_bytes, "application/vnd.example.sig", b"sig-v1")
    p1 = position(client)
    time.sleep(0.02)
    t1 = datetime.now(timezone.utc)
    time.sleep(0.02)
    v2, _ = push_image(client, "team/app", "stable", seed="v2")
    assert client.delete("/v2/team/app/manifests/old").status_code == 202
    assert client.delete(f"/v2/team/app/manifests/{signature}").status_code == 202
    return {"v1": v1, "v1_bytes": v1_bytes, "v2": v2, "p1": p1, "t1": t1, "signature": signature}


def test_tags_and_manifests_as_they_were(client, history):
    at = f"/v2/as-of/p{history['p1']}/team/app"
    tags = client.get(f"{at}/tags/list")
    assert tags.status_code == 200, tags.text
    assert tags.json() == {"name": f"as-of/p{history['p1']}/team/app", "tags": ["old", "stable"]}
    assert client.get("/v2/team/app/tags/list").json()["tags"] == ["stable"]

    for moment in (f"p{history['p1']}", moment_of(history["t1"])):
        manifest = client.get(f"/v2/as-of/{moment}/team/app/manifests/stable", headers={"Accept": OCI_MANIFEST})
        assert manifest.status_code == 200, manifest.text
        assert manifest.headers["Docker-Content-Digest"] == history["v1"]
        assert manifest.content == history["v1_bytes"]
        assert manifest.headers["Content-Type"] == OCI_MANIFEST
    head = client.head(f"{at}/manifests/{history['v1']}")
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(history["v1_bytes"]))
    assert client.get(f"{at}/manifests/old").status_code == 200
    assert client.get("/v2/team/app/manifests/old").status_code == 404
    later = client.get(f"{at}/manifests/{history['v2']}")
    assert later.status_code == 404 and later.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"


def test_blobs_linked_then(client, history):
    at = f"/v2/as-of/p{history['p1']}/team/app"
    document = client.get(f"{at}/manifests/stable").json()
    for descriptor in (document["config"], *document["layers"]):
        blob = client.get(f"{at}/blobs/{descriptor['digest']}")
        assert blob.status_code == 200 and digest_of(blob.content) == descriptor["digest"]
        head = client.head(f"{at}/blobs/{descriptor['digest']}")
        assert head.status_code == 200 and head.headers["Content-Length"] == str(descriptor["size"])
    ranged = client.get(f"{at}/blobs/{document['layers'][0]['digest']}", headers={"Range": "bytes=0-3"})
    assert ranged.status_code == 206 and ranged.content == b"laye"
    v2_config = client.get(f"/v2/team/app/manifests/{history['v2']}").json()["config"]["digest"]
    unknown = client.get(f"{at}/blobs/{v2_config}")
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["code"] == "BLOB_UNKNOWN"


def test_referrers_as_they_were(client, history):
    at = f"/v2/as-of/p{history['p1']}/team/app"
    index = client.get(f"{at}/referrers/{history['v1']}").json()
    assert [m["digest"] for m in index["manifests"]] == [history["signature"]]
    assert index["manifests"][0]["artifactType"] == "application/vnd.example.sig"
    filtered = client.get(f"{at}/referrers/{history['v1']}", params={"artifactType": "other/type"})
    assert filtered.json()["manifests"] == [] and filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert client.get(f"/v2/team/app/referrers/{history['v1']}").json()["manifests"] == []


@pytest.mark.parametrize("method, path", [
    ("PUT", "manifests/stable"), ("DELETE", "manifests/stable"), ("POST", "blobs/uploads/"),
    ("PATCH", "blobs/uploads/abc"), ("PUT", "blobs/uploads/abc"), ("DELETE", f"blobs/sha256:{'a' * 64}"),
])
def test_writes_are_refused(client, history, method, path):
    response = client.request(method, f"/v2/as-of/p{history['p1']}/team/app/{path}", content=b"{}")
    assert response.status_code == 405, response.text
    error = response.json()["errors"][0]
    assert error["code"] == "UNSUPPORTED" and "read-only" in error["message"]


@pytest.mark.parametrize("moment", ["20261307t201500z", "yesterday", "20261207t2015z", "p", "p-1", "P12",
                                    "20261207T201500Z", "20261207t201500.1234567z"])
def test_a_malformed_moment_is_an_invalid_name(client, history, moment):
    response = client.get(f"/v2/as-of/{moment}/team/app/manifests/stable")
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["code"] == "NAME_INVALID"


def test_a_moment_in_the_future_is_an_invalid_name(client, history):
    future = moment_of(datetime.now(timezone.utc) + timedelta(hours=1))
    for moment in (future, f"p{position(client) + 1000}"):
        response = client.get(f"/v2/as-of/{moment}/team/app/tags/list")
        assert response.status_code == 400, response.text
        error = response.json()["errors"][0]
        assert error["code"] == "NAME_INVALID" and "future" in error["message"]


def test_a_repository_that_did_not_exist_then_is_unknown(client, history):
    response = client.get("/v2/as-of/p1/team/app/tags/list")
    assert response.status_code == 404 and response.json()["errors"][0]["code"] == "NAME_UNKNOWN"
    assert client.get(f"/v2/as-of/p{history['p1']}/team/nothing/tags/list").status_code == 404


def test_a_private_repository_needs_pull_on_the_real_repository(client, history):
    at = f"/v2/as-of/p{history['p1']}/team/app/manifests/stable"
    anonymous = client.get(at, auth=None)
    assert anonymous.status_code == 401
    assert f'scope="repository:as-of/p{history["p1"]}/team/app:pull"' in anonymous.headers["WWW-Authenticate"]
    create_user(client, "outsider")
    assert client.get(at, auth=("outsider", PASSWORD)).status_code == 403
    create_user(client, "reader")
    grant(client, "team", "reader", "guest")
    assert client.get(at, auth=("reader", PASSWORD)).status_code == 200


def test_the_token_service_grants_pull_of_the_view_and_nothing_else(client, history):
    create_user(client, "dev")
    grant(client, "team", "dev", "developer")
    scope = f"repository:as-of/p{history['p1']}/team/app:pull,push,delete"
    jwt = token(client, [scope], ("dev", PASSWORD))
    assert token_access(jwt) == [{"type": "repository", "name": f"as-of/p{history['p1']}/team/app",
                                  "actions": ["pull"]}]
    pulled = client.get(f"/v2/as-of/p{history['p1']}/team/app/manifests/stable",
                        headers={"Authorization": f"Bearer {jwt}"}, auth=None)
    assert pulled.status_code == 200
    assert token_access(token(client, [scope], ("admin", "Portlog-Test-1")))[0]["actions"] == ["pull"]
    assert token_access(token(client, ["repository:as-of/tomorrow/team/app:pull"], ("dev", PASSWORD))) == []
    create_user(client, "outsider")
    assert token_access(token(client, [scope], ("outsider", PASSWORD))) == []


def test_bytes_collected_since_are_a_404_with_the_reason(client, services, history):
    document = client.get(f"/v2/as-of/p{history['p1']}/team/app/manifests/stable").json()
    assert client.delete(f"/v2/team/app/manifests/{history['v1']}").status_code == 202
    time.sleep(1.1)  # nothing younger than a second is collected
    run, _ = services.gc_jobs.start(0, False, "cli", RequestContext("admin", "test-gc"), background=False)
    services.projections.catch_up()
    assert services.blobs.stat(history["v1"]) is None

    at = f"/v2/as-of/p{history['p1']}/team/app"
    manifest = client.get(f"{at}/manifests/stable")
    assert manifest.status_code == 404
    error = manifest.json()["errors"][0]
    assert error["code"] == "MANIFEST_UNKNOWN" and error["detail"]["reason"] == "garbage-collected since"
    layer = client.get(f"{at}/blobs/{document['layers'][0]['digest']}")
    assert layer.status_code == 404
    error = layer.json()["errors"][0]
    assert error["code"] == "BLOB_UNKNOWN" and "garbage-collected since" in error["message"]


def test_the_project_as_of_is_reserved(client):
    response = client.post("/api/v2.0/projects", json={"project_name": "as-of", "metadata": {"public": "false"}})
    assert response.status_code == 400, response.text
    assert "reserved" in response.text
    assert client.post("/api/v1/projects", json={"name": "as-of"}).status_code in (400, 422)


def test_the_projects_pull_policies_apply_as_they_are_now(client, history):
    at = f"/v2/as-of/p{history['p1']}/team/app/manifests/stable"
    assert client.get(at).status_code == 200
    response = client.put("/api/v2.0/projects/team", json={"metadata": {"enable_content_trust_cosign": "true"}})
    assert response.status_code == 200, response.text
    refused = client.get(at)
    assert refused.status_code == 412, refused.text  # unsigned, as any pull of it now
    assert refused.json()["errors"][0]["code"] == "DENIED"
