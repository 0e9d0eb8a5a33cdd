"""`as_of` on the Harbor listings (repositories, artifacts, an artifact, its tags and labels)
and on the quotas: the state at a log position or a time, beside the state now."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from tests.support.harbor import id_of
from tests.support.oci import push_image, push_referrer

pytestmark = pytest.mark.both_databases

PROJECT = "/api/v2.0/projects/team"
APP = f"{PROJECT}/repositories/app"


def position(client) -> int:
    return client.app.state.services.projections.catch_up()


def get(client, path: str, **params):
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def history(client):
    """At `p1` (and the time `t1`): team/app with stable → v1 (labelled `release`, signed) and
    old, and team/gone. Then stable moved to v2, old and team/gone deleted, the label deleted."""
    p0 = position(client)
    v1, v1_bytes = push_image(client, "team/app", "stable", seed="v1")
    old, _ = push_image(client, "team/app", "old", seed="old")
    signature = push_referrer(client, "team/app", v1_bytes, "application/vnd.example.sig", b"sig")
    push_image(client, "team/gone", "1", seed="gone")
    label = client.post("/api/v2.0/labels", json={"name": "release", "scope": "g"})
    label_id = id_of(label.headers["Location"])
    assert client.post(f"{APP}/artifacts/stable/labels", json={"id": label_id}).status_code == 200
    p1 = position(client)
    time.sleep(0.02)
    t1 = datetime.now(timezone.utc).isoformat()
    time.sleep(0.02)
    v2, _ = push_image(client, "team/app", "stable", seed="v2")
    assert client.delete(f"{APP}/artifacts/old").status_code == 200
    assert client.delete(f"{PROJECT}/repositories/gone").status_code == 200
    assert client.delete(f"/api/v2.0/labels/{label_id}").status_code == 200
    return dict(p0=p0, p1=p1, t1=t1, v1=v1, v2=v2, old=old, signature=signature)


def test_artifacts_as_they_were(client, history):
    for at in (history["p1"], history["t1"], f"p{history['p1']}"):
        listed = get(client, f"{APP}/artifacts", as_of=at, with_accessory="true")
        assert {a["digest"] for a in listed} == {history["v1"], history["old"]}
        v1 = next(a for a in listed if a["digest"] == history["v1"])
        assert [t["name"] for t in v1["tags"]] == ["stable"]
        assert [(label["name"], label["deleted"]) for label in v1["labels"]] == [("release", True)]
        assert [a["digest"] for a in v1["accessories"]] == [history["signature"]]
        assert v1["size"] > 0 and v1["id"] is not None
    now = get(client, f"{APP}/artifacts")
    assert {a["digest"] for a in now} == {history["v1"], history["v2"]}
    assert next(a for a in now if a["digest"] == history["v1"])["tags"] == []

    old = get(client, f"{APP}/artifacts", as_of=history["p1"], q="tags=old")
    assert [a["digest"] for a in old] == [history["old"]] and old[0]["id"] is None  # deleted since: no id
    assert [a["digest"] for a in get(client, f"{APP}/artifacts", as_of=history["p0"] + 1)] == []


def test_an_artifact_and_its_tags_as_they_were(client, history):
    artifact = get(client, f"{APP}/artifacts/stable", as_of=history["p1"])
    assert artifact["digest"] == history["v1"]
    assert get(client, f"{APP}/artifacts/stable")["digest"] == history["v2"]
    assert get(client, f"{APP}/artifacts/old", as_of=history["p1"])["digest"] == history["old"]
    assert client.get(f"{APP}/artifacts/old").status_code == 404
    tags = get(client, f"{APP}/artifacts/{history['v1']}/tags", as_of=history["p1"])
    assert [t["name"] for t in tags] == ["stable"]
    assert get(client, f"{APP}/artifacts/{history['v1']}/tags") == []
    missing = client.get(f"{APP}/artifacts/{history['v2']}", params={"as_of": history["p1"]})
    assert missing.status_code == 404


def test_repositories_as_they_were(client, history):
    then = get(client, f"{PROJECT}/repositories", as_of=history["p1"])
    assert {(r["name"], r["artifact_count"]) for r in then} == {("team/app", 2), ("team/gone", 1)}
    assert [r["name"] for r in get(client, f"{PROJECT}/repositories")] == ["team/app"]
    assert [r["name"] for r in get(client, "/api/v2.0/repositories", as_of=history["p1"], q="name=~gone")] \
        == ["team/gone"]
    assert get(client, f"{PROJECT}/repositories/gone", as_of=history["p1"])["artifact_count"] == 1
    assert client.get(f"{PROJECT}/repositories/gone").status_code == 404
    assert client.get(f"{PROJECT}/repositories/gone/artifacts", params={"as_of": history["p0"]}).status_code == 404


def test_quotas_as_they_were(client, history):
    client.put("/api/v1/projects/team/quota", json={"storage_bytes": 10_000_000})
    then = get(client, "/api/v1/projects/team/quota", as_of=history["p1"])
    now = get(client, "/api/v1/projects/team/quota")
    assert then["usage"]["artifacts"] == 4 and now["usage"]["artifacts"] == 3  # v1, v2, the signature
    assert get(client, "/api/v1/projects/team/quota", as_of=position(client)) == now  # the read model agrees
    assert then["usage"]["storage_bytes"] > now["usage"]["storage_bytes"] > 0
    assert then["limits"]["storage_bytes"] is None and now["limits"]["storage_bytes"] == 10_000_000
    assert get(client, "/api/v1/projects/team/quota", as_of=history["p0"])["usage"] == {
        "storage_bytes": 0, "artifacts": 0}

    project_id = get(client, PROJECT)["project_id"]
    harbor = get(client, f"/api/v2.0/quotas/{project_id}", as_of=history["p1"])
    assert harbor["used"] == {"storage": then["usage"]["storage_bytes"], "count": 4}
    listed = get(client, "/api/v2.0/quotas", reference_id=str(project_id), as_of=history["p1"])
    assert listed[0]["used"]["count"] == 4


@pytest.mark.parametrize("as_of", ["yesterday", "2026-13-01T00:00:00Z", "p-1", "-5"])
def test_a_malformed_as_of_is_a_bad_request(client, history, as_of):
    for path in (f"{APP}/artifacts", f"{APP}/artifacts/stable", f"{PROJECT}/repositories", "/api/v2.0/quotas"):
        response = client.get(path, params={"as_of": as_of})
        assert response.status_code == 400, (path, response.text)
    assert client.get("/api/v1/projects/team/quota", params={"as_of": "yesterday"}).status_code == 422
