"""Tag immutability: rules through Harbor's API (driven by the unmodified `harborapi` client over
ASGI) and Portlog's own, and their enforcement on every path that moves or deletes a tag — /v2/
pushes and deletes, the Harbor tag and artifact deletes, the management API's tag restore and
undelete — or what an immutable tag's image needs: its blobs, the manifests its index lists, its
repository, retention and garbage collection."""

from __future__ import annotations

import json
import time

import pytest
from harborapi.client import model_to_dict
from harborapi.models import ImmutableRule, ImmutableSelector

from domain.context import RequestContext
from domain.immutability import ImmutableRule as DomainRule
from domain.immutability import Selector
from tests.support.auth import PASSWORD, create_user, grant
from tests.support.harbor import harbor_errors, id_of
from tests.support.oci import OCI_INDEX, OCI_MANIFEST, digest_of, image_manifest, push_blob

pytestmark = [pytest.mark.both_databases, pytest.mark.anyio,
              pytest.mark.filterwarnings("ignore::DeprecationWarning:harborapi")]

HARBOR = "/api/v2.0/projects/team/immutabletagrules"
RULES = "/api/v1/projects/team/immutable-tag-rules"




def harbor_rule(tags: str = "v*", repositories: str = "**", tag_decoration: str = "matches",
                repository_decoration: str = "repoMatches", **fields) -> ImmutableRule:
    return ImmutableRule(
        action="immutable", template="immutable_template",
        tag_selectors=[ImmutableSelector(kind="doublestar", decoration=tag_decoration, pattern=tags)],
        scope_selectors={"repository": [ImmutableSelector(kind="doublestar", decoration=repository_decoration,
                                                          pattern=repositories)]}, **fields)


def add_rule(client, project: str = "team", **body) -> int:
    response = client.post(f"/api/v1/projects/{project}/immutable-tag-rules", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def push_manifest(client, name: str, tag: str, seed: str):
    """Pushes the image `seed` names to `tag`; returns the manifest PUT's response."""
    config, layer = f'{{"seed": "{seed}"}}'.encode(), f"layer-{seed}".encode()
    for blob in (config, layer):
        push_blob(client, name, blob)
    return client.put(f"/v2/{name}/manifests/{tag}", content=image_manifest(config, [layer]),
                      headers={"Content-Type": OCI_MANIFEST})


def digest_of_tag(client, name: str, tag: str) -> str | None:
    response = client.head(f"/v2/{name}/manifests/{tag}")
    return response.headers["Docker-Content-Digest"] if response.status_code == 200 else None


def oci_error(response, status: int = 403) -> dict:
    assert response.status_code == status, response.text
    [error] = response.json()["errors"]
    return error


# Managing rules


async def test_harbor_rule_lifecycle(harbor, client):
    location = await harbor.create_project_immutable_tag_rule("team", harbor_rule("v*", "{web,api}/**"))
    rule_id = id_of(location)
    assert location == f"{HARBOR}/{rule_id}"
    [rule] = await harbor.get_project_immutable_tag_rules("team")
    assert (rule.id, rule.disabled, rule.action, rule.template) == (rule_id, False, "immutable", "immutable_template")
    assert rule.tag_selectors == [ImmutableSelector(kind="doublestar", decoration="matches", pattern="v*")]
    assert rule.scope_selectors == {"repository": [ImmutableSelector(kind="doublestar", decoration="repoMatches",
                                                                     pattern="{web,api}/**")]}
    project_id = (await harbor.get_project("team")).project_id
    assert client.get(HARBOR).json()[0]["project_id"] == project_id

    await harbor.update_project_immutable_tag_rule("team", rule_id, harbor_rule("release-*", id=rule_id))
    await harbor.enable_project_immutable_tagrule("team", rule_id, enabled=False)
    [rule] = await harbor.get_project_immutable_tag_rules(project_id)
    assert rule.disabled and rule.tag_selectors[0].pattern == "release-*"
    assert rule.scope_selectors["repository"][0].pattern == "**"

    await harbor.delete_project_immutable_tag_rule("team", rule_id)
    assert await harbor.get_project_immutable_tag_rules("team") == []


def test_harbor_refuses_rules_it_would_not_understand(client):
    def refusal(body: dict, method: str = "POST", path: str = HARBOR) -> str:
        response = client.request(method, path, json=body)
        [(code, message)] = harbor_errors(response)
        assert (response.status_code, code) == (400, "BAD_REQUEST"), response.text
        return message

    good = model_to_dict(harbor_rule())
    assert "decoration 'repoMatches'" in refusal(model_to_dict(harbor_rule(tag_decoration="repoMatches")))
    assert "kind 'label'" in refusal({**good, "tag_selectors": [{**good["tag_selectors"][0], "kind": "label"}]})
    assert "invalid tag pattern" in refusal(model_to_dict(harbor_rule("v{1")))
    assert "exactly one selector" in refusal({**good, "tag_selectors": good["tag_selectors"] * 2})
    assert "tag_selectors is required" in refusal({k: v for k, v in good.items() if k != "tag_selectors"})
    assert "only a repository selector" in refusal(
        {**good, "scope_selectors": {"namespace": good["scope_selectors"]["repository"]}})
    assert "action" in refusal({**good, "action": "retain"})

    created = client.post(HARBOR, json=good)
    assert created.status_code == 201
    rule_id = id_of(created.headers["Location"])
    assert "doesn't match" in refusal({**good, "id": rule_id + 1}, "PUT", f"{HARBOR}/{rule_id}")
    duplicate = client.post(HARBOR, json=good)
    assert (duplicate.status_code, harbor_errors(duplicate)[0][0]) == (409, "CONFLICT")
    assert client.put(f"{HARBOR}/999999", json=good).status_code == 404
    assert client.delete(f"/api/v2.0/projects/race/immutabletagrules/{rule_id}").status_code == 404


def test_portlog_rule_lifecycle_and_problems(client):
    response = client.post(RULES, json={"tags": "v*"})
    assert response.status_code == 201, response.text
    rule = response.json()
    assert response.headers["Location"] == f"{RULES}/{rule['id']}"
    assert {k: rule[k] for k in ("project", "repositories", "tags", "exclude_repositories", "exclude_tags",
                                 "disabled", "priority", "created_by")} == {
        "project": "team", "repositories": "**", "tags": "v*", "exclude_repositories": False,
        "exclude_tags": False, "disabled": False, "priority": 0, "created_by": "admin"}
    assert client.get(f"{RULES}/{rule['id']}").json() == rule

    changed = client.put(f"{RULES}/{rule['id']}", json={"disabled": True, "repositories": "app"})
    assert changed.status_code == 200 and (changed.json()["disabled"], changed.json()["tags"]) == (True, "v*")
    assert [r["repositories"] for r in client.get(RULES).json()] == ["app"]

    for body, kind in (({}, "invalid-input"), ({"tags": "[v"}, "invalid-input"), ({"tags": 1}, "invalid-input"),
                       ({"tags": "v*", "repositories": "app"}, "conflict")):
        problem = client.post(RULES, json=body)
        assert problem.headers["Content-Type"] == "application/problem+json"
        assert problem.json()["type"].endswith(kind), (body, problem.text)
    assert client.get(f"{RULES}/999999").status_code == 404

    assert client.delete(f"{RULES}/{rule['id']}").status_code == 204
    assert client.get(RULES).json() == []
    assert client.get(f"{RULES}/{rule['id']}").status_code == 404


def test_maintainers_manage_rules_developers_cannot_see_them(client):
    for user, role in (("maint", "maintainer"), ("dev", "developer")):
        create_user(client, user)
        grant(client, "team", user, role)
    assert client.post(RULES, json={"tags": "v*"}, auth=("maint", PASSWORD)).status_code == 201
    assert client.get(RULES, auth=("dev", PASSWORD)).status_code == 403
    assert client.post(HARBOR, json=model_to_dict(harbor_rule("x*")), auth=("dev", PASSWORD)).status_code == 403


# Enforcement


def test_an_immutable_tag_cannot_be_overwritten(client):
    first = push_manifest(client, "team/app", "v1", "one").headers["Docker-Content-Digest"]
    rule_id = add_rule(client, tags="v*")

    again = push_manifest(client, "team/app", "v1", "one")
    assert again.status_code == 201 and again.headers["Docker-Content-Digest"] == first
    error = oci_error(push_manifest(client, "team/app", "v1", "two"))
    assert error["code"] == "DENIED"
    assert error["message"] == f"tag v1 of team/app is immutable (immutability rule {rule_id})"
    assert error["detail"] == {"repository": "team/app", "tag": "v1", "rule": rule_id}
    assert digest_of_tag(client, "team/app", "v1") == first

    assert push_manifest(client, "team/app", "v2", "two").status_code == 201  # a new tag is no overwrite
    push_manifest(client, "team/app", "latest", "one")
    moved = push_manifest(client, "team/app", "latest", "two")
    assert moved.status_code == 201 and digest_of_tag(client, "team/app", "latest") == moved.headers[
        "Docker-Content-Digest"]


def test_an_immutable_tag_and_its_manifest_cannot_be_deleted(client):
    digest = push_manifest(client, "team/app", "v1", "one").headers["Docker-Content-Digest"]
    for tag in ("latest", "old"):
        push_manifest(client, "team/app", tag, "one")
    rule_id = add_rule(client, tags="v*")

    assert client.delete("/v2/team/app/manifests/old").status_code == 202  # not immutable
    assert "immutable" in oci_error(client.delete("/v2/team/app/manifests/v1"))["message"]
    assert oci_error(client.delete(f"/v2/team/app/manifests/{digest}"))["detail"]["tag"] == "v1"

    artifact = "/api/v2.0/projects/team/repositories/app/artifacts"
    for response in (client.delete(f"{artifact}/{digest}/tags/v1"), client.delete(f"{artifact}/v1")):
        [(code, message)] = harbor_errors(response)
        assert (response.status_code, code) == (409, "CONFLICT")
        assert message == f"tag v1 of team/app is immutable (immutability rule {rule_id})"
    assert digest_of_tag(client, "team/app", "v1") == digest
    for tags in (client.get(f"{artifact}/v1/tags").json(), client.get(artifact).json()[0]["tags"]):
        assert {t["name"]: t["immutable"] for t in tags} == {"v1": True, "latest": False}


def test_a_restore_cannot_move_an_immutable_tag(client):
    first = push_manifest(client, "team/app", "v1", "one").headers["Docker-Content-Digest"]
    before = client.app.state.services.projections.catch_up()
    second = push_manifest(client, "team/app", "v1", "two").headers["Docker-Content-Digest"]
    rule_id = add_rule(client, tags="v1")

    refused = client.post("/api/v1/repositories/team/app/tags/v1/restore", json={"as_of": before})
    assert refused.status_code == 409 and refused.headers["Content-Type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/tag-immutable") and refused.json()["rule"] == rule_id
    assert digest_of_tag(client, "team/app", "v1") == second

    assert client.put(f"{RULES}/{rule_id}", json={"disabled": True}).status_code == 200
    assert client.post("/api/v1/repositories/team/app/tags/v1/restore", json={"as_of": before}).status_code == 200
    assert digest_of_tag(client, "team/app", "v1") == first


def test_disabling_or_deleting_the_rule_lets_the_overwrite_through(client):
    push_manifest(client, "team/app", "v1", "one")
    rule_id = add_rule(client, tags="v*")
    assert push_manifest(client, "team/app", "v1", "two").status_code == 403
    assert client.put(f"{HARBOR}/{rule_id}", json={"disabled": True}).status_code == 200
    assert push_manifest(client, "team/app", "v1", "two").status_code == 201
    assert client.put(f"{HARBOR}/{rule_id}", json={"disabled": False}).status_code == 200
    assert push_manifest(client, "team/app", "v1", "three").status_code == 403
    assert client.delete(f"{HARBOR}/{rule_id}").status_code == 200
    assert client.delete("/v2/team/app/manifests/v1").status_code == 202


def test_excluding_selectors(client):
    for tag in ("v1", "latest"):
        push_manifest(client, "team/app", tag, "one")
    push_manifest(client, "team/scratch/app", "v1", "one")
    add_rule(client, tags="latest", exclude_tags=True, repositories="scratch/**", exclude_repositories=True)

    assert push_manifest(client, "team/app", "latest", "two").status_code == 201
    assert push_manifest(client, "team/app", "v1", "two").status_code == 403
    assert push_manifest(client, "team/scratch/app", "v1", "two").status_code == 201


def test_repository_patterns_see_the_name_without_the_project(client):
    names = ("team/web", "team/api/v2", "team/db", "team/team/web")
    for name in names:
        push_manifest(client, name, "v1", "one")
    client.post(HARBOR, json=model_to_dict(harbor_rule("v*", "{web,api/**}"))).raise_for_status()
    refused = {name for name in names if push_manifest(client, name, "v1", "two").status_code == 403}
    assert refused == {"team/web", "team/api/v2"}


def test_a_rule_of_another_project_has_no_effect(client):
    push_manifest(client, "team/app", "v1", "one")
    push_manifest(client, "race/app", "v1", "one")
    add_rule(client, project="race", tags="**")
    assert push_manifest(client, "team/app", "v1", "two").status_code == 201
    assert client.delete("/v2/team/app/manifests/v1").status_code == 202
    assert push_manifest(client, "race/app", "v1", "two").status_code == 403


def test_a_refusal_names_a_rule_the_read_models_have_not_applied_yet(client, services):
    push_manifest(client, "team/app", "v1", "one")
    rule = DomainRule(Selector("**"), Selector("v1"))
    number, _ = services.project_rules.add_immutable_rule("team", rule, RequestContext("admin", "test"))  # no wait
    error = oci_error(push_manifest(client, "team/app", "v1", "two"))
    rule_id = services.immutability.rule_id("team", number)  # the refusal caught the read models up
    assert rule_id is not None and error["detail"]["rule"] == rule_id


def test_rule_ids_survive_a_rebuild(client, services):
    kept = add_rule(client, tags="v*")
    client.put(f"{RULES}/{kept}", json={"disabled": True}).raise_for_status()
    client.delete(f"{RULES}/{add_rule(client, tags='release-*')}").raise_for_status()
    add_rule(client, project="race", tags="**")
    before = client.get(RULES).json()
    services.projections.rebuild()
    assert client.get(RULES).json() == before and [r["id"] for r in before] == [kept]


# Every other path that could delete what an immutable tag holds


def push_index(client, name: str, tag: str, children: list[str]) -> str:
    """An index of the manifests `children` (digests of `push_manifest` images) under `tag`."""
    manifests = [{"mediaType": OCI_MANIFEST, "digest": child,
                  "size": int(client.head(f"/v2/{name}/manifests/{child}").headers["Content-Length"])}
                 for child in children]
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).encode()
    response = client.put(f"/v2/{name}/manifests/{tag}", content=index, headers={"Content-Type": OCI_INDEX})
    assert response.status_code == 201, response.text
    return response.headers["Docker-Content-Digest"]


def test_nothing_an_immutable_image_needs_can_be_deleted(client):
    """Its layers and config (blob DELETE), the manifests its index lists (DELETE by digest,
    Harbor's artifact delete), its repository (both APIs): an immutable tag keeps pulling."""
    child = push_manifest(client, "team/app", "v1-amd64", "one").headers["Docker-Content-Digest"]
    index = push_index(client, "team/app", "v1", [child])
    rule_id = add_rule(client, tags="v1")
    assert client.delete("/v2/team/app/manifests/v1-amd64").status_code == 202  # a mutable tag

    blobs = [digest_of(b'{"seed": "one"}'), digest_of(b"layer-one")]
    for blob in blobs:
        error = oci_error(client.delete(f"/v2/team/app/blobs/{blob}"), 405)
        assert error["code"] == "UNSUPPORTED" and error["detail"]["manifests"] == [child]
    error = oci_error(client.delete(f"/v2/team/app/manifests/{child}"), 405)
    assert error["message"] == (f"manifest {child} is referenced by manifest {index} (tagged v1) of team/app: "
                                "delete that manifest first")
    harbor = client.delete(f"/api/v2.0/projects/team/repositories/app/artifacts/{child}")
    assert (harbor.status_code, harbor_errors(harbor)[0][0]) == (409, "CONFLICT")
    for delete in ("/api/v1/repositories/team/app", "/api/v2.0/projects/team/repositories/app"):
        refused = client.delete(delete)
        assert refused.status_code == 409 and f"immutability rule {rule_id}" in refused.text, delete

    assert client.get("/v2/team/app/manifests/v1").status_code == 200
    for reference in (f"manifests/{child}", *(f"blobs/{blob}" for blob in blobs)):
        assert client.get(f"/v2/team/app/{reference}").status_code == 200, reference


def test_retention_keeps_the_children_of_an_immutable_index(client):
    child = push_manifest(client, "team/app", "child", "one").headers["Docker-Content-Digest"]
    index = push_index(client, "team/app", "v0", [child])
    push_manifest(client, "team/app", "v1", "two")
    add_rule(client, tags="v0")
    client.put("/api/v1/projects/team/retention", json={"rules": [{"template": "latestPushedK", "param": 1}]})
    result = client.post("/api/v1/projects/team/retention/runs", json={})
    assert result.status_code == 201, result.text
    assert {(s["digest"], "immutable" in s["reason"]) for s in result.json()["skipped"]} == {
        (index, True), (child, False)}
    assert client.get("/v2/team/app/tags/list").json()["tags"] == ["child", "v0", "v1"]
    assert client.get(f"/v2/team/app/manifests/{child}").status_code == 200


def test_garbage_collection_keeps_an_immutably_tagged_referrer_and_its_subject(client, services):
    subject = push_manifest(client, "team/app", "tmp", "one")
    subject_digest = subject.headers["Docker-Content-Digest"]
    client.delete("/v2/team/app/manifests/tmp").raise_for_status()  # the subject is untagged
    push_blob(client, "team/app", b"{}")
    push_blob(client, "team/app", b"signature")
    referrer = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/x.signature",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest_of(b"{}"), "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": digest_of(b"signature"), "size": 9}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject_digest,
                    "size": int(subject.request.headers["Content-Length"])},
    }).encode()
    assert client.put("/v2/team/app/manifests/v1-sig", content=referrer,
                      headers={"Content-Type": OCI_MANIFEST}).status_code == 201
    add_rule(client, tags="v1-*")
    time.sleep(1.1)
    run, _ = services.gc_jobs.start(0, False, "cli", RequestContext("admin", "t"), background=False,
                                    delete_untagged=True)
    services.projections.catch_up()
    assert services.gc.run_by_uuid(str(run.id)).status == "succeeded"
    assert digest_of_tag(client, "team/app", "v1-sig") == digest_of(referrer)
    assert client.head(f"/v2/team/app/manifests/{subject_digest}").status_code == 200


def test_an_undelete_cannot_move_an_immutable_tag(client):
    first = push_manifest(client, "team/app", "v1", "one").headers["Docker-Content-Digest"]
    push_manifest(client, "team/app", "old", "two")
    client.delete("/v2/team/app/manifests/old").raise_for_status()
    rule_id = add_rule(client, tags="v1")
    refused = client.post("/api/v1/repositories/team/app/tags/v1/undelete",
                          json={"digest": _digest_of_seed("two")})
    assert refused.status_code == 409 and refused.json()["rule"] == rule_id
    assert digest_of_tag(client, "team/app", "v1") == first


def _digest_of_seed(seed: str) -> str:
    return digest_of(image_manifest(f'{{"seed": "{seed}"}}'.encode(), [f"layer-{seed}".encode()]))
