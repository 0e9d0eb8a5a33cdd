"""Labels through Harbor's API — global and project labels (the unmodified `harborapi` client over
ASGI, and plain HTTP for the error shapes), who may manage and use them, labels on artifacts and
in the artifact JSON, a deleted label gone from every artifact, and the read model rebuilt from
the log."""

from __future__ import annotations

import pytest
from harborapi.exceptions import BadRequest, Conflict, NotFound
from harborapi.models import Label
from sqlalchemy import select

from projections import labels as labels_model
from tests.support.auth import PASSWORD, create_user, grant
from tests.support.harbor import harbor_errors, id_of
from tests.support.oci import push_image

pytestmark = [pytest.mark.both_databases, pytest.mark.anyio,
              pytest.mark.filterwarnings("ignore::DeprecationWarning:harborapi")]

LABELS = "/api/v2.0/labels"
APP = "/api/v2.0/projects/team/repositories/app/artifacts"




def add_label(client, name: str, project: str | None = None, auth=None, **fields) -> int:
    body = {"name": name, "scope": "p" if project else "g", **fields}
    if project:
        body["project_id"] = client.get(f"/api/v2.0/projects/{project}").json()["project_id"]
    response = client.post(LABELS, json=body, **({"auth": auth} if auth else {}))
    assert response.status_code == 201, response.text
    return id_of(response.headers["Location"])


def label_artifact(client, reference: str, label_id: int, repository: str = "app", auth=None):
    return client.post(f"/api/v2.0/projects/team/repositories/{repository}/artifacts/{reference}/labels",
                       json={"id": label_id}, **({"auth": auth} if auth else {}))


def labels_on(client, reference: str, repository: str = "app") -> list[str]:
    artifact = client.get(f"/api/v2.0/projects/team/repositories/{repository}/artifacts/{reference}").json()
    return [label["name"] for label in artifact["labels"]]


async def test_global_labels_through_harborapi(harbor, client):
    location = await harbor.create_label(Label(name="release", scope="g", color="#00FF00",
                                               description="ready to ship"))
    label_id = id_of(location)
    found = await harbor.get_label(label_id)
    assert (found.name, found.scope, found.project_id, found.color, found.description) == (
        "release", "g", 0, "#00FF00", "ready to ship")
    assert found.creation_time is not None and found.update_time is not None
    assert [label.name for label in await harbor.get_labels(scope="g")] == ["release"]

    await harbor.update_label(label_id, Label(name="release", color="#FF0000"))
    changed = await harbor.get_label(label_id)
    assert (changed.color, changed.description) == ("#FF0000", "ready to ship")  # left out: kept
    with pytest.raises(BadRequest):  # a label's name is its identity
        await harbor.update_label(label_id, Label(name="shipped"))
    with pytest.raises(Conflict):
        await harbor.create_label(Label(name="release", scope="g"))

    await harbor.delete_label(label_id)
    with pytest.raises(NotFound):
        await harbor.get_label(label_id)
    again = id_of(await harbor.create_label(Label(name="release", scope="g")))
    assert again != label_id  # a new label: a new id


def test_project_labels_belong_to_their_project(client):
    team_id = client.get("/api/v2.0/projects/team").json()["project_id"]
    release = add_label(client, "release", "team", color="#0000FF")
    add_label(client, "release")  # a global label of the same name is another label
    add_label(client, "release", "race")
    for name in ("beta", "candidate", "rc-1"):
        add_label(client, name, "team")

    listed = client.get(LABELS, params={"scope": "p", "project_id": team_id, "page_size": 2})
    assert listed.headers["X-Total-Count"] == "4" and 'rel="next"' in listed.headers["Link"]
    assert [(label["id"], label["project_id"], label["scope"]) for label in listed.json()][0] == (release, team_id, "p")
    named = client.get(LABELS, params={"scope": "p", "project_id": team_id, "name": "c", "sort": "-name"})
    assert [label["name"] for label in named.json()] == ["rc-1", "candidate"]
    assert [label["name"] for label in client.get(LABELS, params={"scope": "g"}).json()] == ["release"]
    assert client.get(f"{LABELS}/{release}").json()["project_id"] == team_id

    for params in ({}, {"scope": "x"}, {"scope": "p"}, {"scope": "p", "project_id": "team"}):
        response = client.get(LABELS, params=params)
        assert response.status_code == 400 and harbor_errors(response)[0][0] == "BAD_REQUEST", params
    unknown = client.post(LABELS, json={"name": "x", "scope": "p", "project_id": 999999})
    assert unknown.status_code == 404
    for body in ({"name": "x"}, {"name": "", "scope": "g"}, {"name": "n" * 129, "scope": "g"},
                 {"name": "x", "scope": "g", "color": 7}, {"name": "x", "scope": "g", "color": "#" * 17}):
        assert client.post(LABELS, json=body).status_code == 400, body
    assert client.get(f"{LABELS}/999999").status_code == 404


def test_who_may_manage_see_and_use_labels(client):
    for user, role in (("maint", "maintainer"), ("dev", "developer"), ("guest", "guest")):
        create_user(client, user)
        grant(client, "team", user, role)
    create_user(client, "outsider")
    team_id = client.get("/api/v2.0/projects/team").json()["project_id"]
    digest, _ = push_image(client, "team/app", "v1", seed="permissions")
    as_ = {user: (user, PASSWORD) for user in ("maint", "dev", "guest", "outsider")}

    global_body = {"name": "global", "scope": "g"}
    assert client.post(LABELS, json=global_body, auth=as_["maint"]).status_code == 403
    shared = add_label(client, "shared")
    assert client.get(f"{LABELS}/{shared}", auth=as_["outsider"]).status_code == 200  # signed in: sees it
    assert client.get(LABELS, params={"scope": "g"}, auth=None).status_code == 401
    assert client.put(f"{LABELS}/{shared}", json={"color": "#000000"}, auth=as_["maint"]).status_code == 403
    assert client.delete(f"{LABELS}/{shared}", auth=as_["maint"]).status_code == 403

    own = add_label(client, "own", "team", auth=as_["maint"])
    for user in ("dev", "guest"):
        assert client.post(LABELS, json={"name": user, "scope": "p", "project_id": team_id},
                           auth=as_[user]).status_code == 403
        assert client.get(f"{LABELS}/{own}", auth=as_[user]).status_code == 200
        assert client.get(LABELS, params={"scope": "p", "project_id": team_id}, auth=as_[user]).status_code == 200
    assert client.get(f"{LABELS}/{own}", auth=as_["outsider"]).status_code == 403
    assert client.get(LABELS, params={"scope": "p", "project_id": team_id}, auth=as_["outsider"]).status_code == 403
    assert client.put(f"{LABELS}/{own}", json={"description": "ours"}, auth=as_["maint"]).status_code == 200
    assert client.delete(f"{LABELS}/{own}", auth=as_["dev"]).status_code == 403

    assert label_artifact(client, "v1", shared, auth=as_["guest"]).status_code == 403
    assert label_artifact(client, "v1", shared, auth=as_["dev"]).status_code == 200
    assert client.delete(f"{APP}/{digest}/labels/{shared}", auth=as_["guest"]).status_code == 403
    assert client.delete(f"{APP}/{digest}/labels/{shared}", auth=as_["dev"]).status_code == 200


def test_labels_on_artifacts_appear_in_the_artifact_json_and_go_with_the_label(client, services):
    team_id = client.get("/api/v2.0/projects/team").json()["project_id"]
    digest, _ = push_image(client, "team/app", "v1", seed="labelled")
    push_image(client, "team/app", "v2", seed="plain")
    release, beta = add_label(client, "release", color="#00FF00"), add_label(client, "beta", "team")
    elsewhere = add_label(client, "theirs", "race")

    assert label_artifact(client, "v1", release).status_code == 200
    assert label_artifact(client, digest, beta).status_code == 200
    conflict = label_artifact(client, "v1", release)
    assert conflict.status_code == 409 and harbor_errors(conflict)[0][0] == "CONFLICT"  # as Harbor
    assert label_artifact(client, "v1", elsewhere).status_code == 400  # another project's label
    assert label_artifact(client, "v1", 999999).status_code == 404
    assert label_artifact(client, "v404", release).status_code == 404

    artifact = client.get(f"{APP}/v1").json()
    [global_label, project_label] = artifact["labels"]
    assert global_label == {**client.get(f"{LABELS}/{release}").json()}
    assert (global_label["name"], global_label["scope"], global_label["project_id"], global_label["color"]) == (
        "release", "g", 0, "#00FF00")
    assert (project_label["name"], project_label["scope"], project_label["project_id"]) == ("beta", "p", team_id)
    listed = {a["digest"]: [label["name"] for label in a["labels"]] for a in client.get(APP).json()}
    assert listed[digest] == ["release", "beta"] and [] in listed.values()

    assert client.delete(f"{APP}/v1/labels/{beta}").status_code == 200
    assert client.delete(f"{APP}/v1/labels/{beta}").status_code == 404  # not on it any more
    assert labels_on(client, "v1") == ["release"]
    assert label_artifact(client, "v2", release).status_code == 200
    client.put(f"{LABELS}/{release}", json={"color": "#FF0000"}).raise_for_status()
    assert client.get(f"{APP}/v2").json()["labels"][0]["color"] == "#FF0000"

    assert client.delete(f"{LABELS}/{release}").status_code == 200
    assert labels_on(client, "v1") == [] and labels_on(client, "v2") == []
    again = add_label(client, "release")  # the name taken again: on no artifact
    assert labels_on(client, "v1") == [] and label_artifact(client, "v1", again).status_code == 200
    assert labels_on(client, "v1") == ["release"]

    # an artifact's labels go with it: pushed again, it is a new artifact without them
    assert client.delete(f"{APP}/{digest}").status_code == 200
    push_image(client, "team/app", "v1", seed="labelled")
    assert labels_on(client, "v1") == []
    events = client.get("/api/v1/events", params={"type": "label.*,artifact.label_*", "limit": 1000}).json()
    assert {event["type"].removeprefix("io.portlog.") for event in events} == {
        "label.created", "label.updated", "label.deleted", "label.recreated", "artifact.label_added",
        "artifact.label_removed"}


def dump(services) -> dict[str, list[tuple]]:
    with services.db.reader.connect() as conn:
        return {table.name: sorted(tuple(row) for row in conn.execute(select(table)))
                for table in labels_model.metadata.sorted_tables}


def test_a_rebuild_gives_the_same_labels(client, services):
    digest, _ = push_image(client, "team/app", "v1", seed="rebuilt")
    push_image(client, "team/other", "v1", seed="other")
    kept, gone = add_label(client, "kept"), add_label(client, "gone", "team", description="soon")
    label_artifact(client, "v1", kept).raise_for_status()
    label_artifact(client, "v1", gone).raise_for_status()
    label_artifact(client, "v1", kept, repository="other").raise_for_status()
    client.delete(f"{LABELS}/{gone}").raise_for_status()
    recreated = add_label(client, "gone", "team")
    label_artifact(client, digest, recreated).raise_for_status()
    before, artifact = dump(services), client.get(f"{APP}/v1").json()
    assert len(before["labels"]) == 2 and len(before["artifact_labels"]) == 3
    services.projections.rebuild()
    assert dump(services) == before and client.get(f"{APP}/v1").json() == artifact
