"""Point-in-time restore through the management API, on SQLite and PostgreSQL: a repository or a
project brought back to a moment by new events (tags moved back, tags created since removed,
deleted manifests and repositories brought back, members, robots' permissions and policies),
the dry run equal to the real run, immutable tags and collected bytes respected."""

from __future__ import annotations

import json
import time

import pytest

from domain.context import RequestContext
from tests.support.auth import PASSWORD, create_user, grant
from tests.support.oci import OCI_INDEX, OCI_MANIFEST, descriptor, digest_of, push_image

pytestmark = pytest.mark.both_databases


def position(client) -> int:
    return client.app.state.services.projections.catch_up()


def restore(client, path: str, as_of, dry_run: bool = False, status: int = 200, **kwargs) -> dict:
    response = client.post(f"/api/v1/{path}/restore", json={"as_of": as_of, "dry_run": dry_run}, **kwargs)
    assert response.status_code == status, response.text
    return response.json()


def tags(client, repository: str) -> dict[str, str]:
    response = client.get(f"/api/v1/repositories/{repository}/tags")
    assert response.status_code == 200, response.text
    return {t["tag"]: t["digest"] for t in response.json()}


def served_digest(client, repository: str, tag: str) -> str | None:
    response = client.get(f"/v2/{repository}/manifests/{tag}")
    return response.headers["Docker-Content-Digest"] if response.status_code == 200 else None


def kinds(answer: dict) -> list[tuple]:
    return sorted((c["kind"], c.get("tag") or c.get("digest") or c.get("member") or c.get("policy") or "")
                  for c in answer["changes"])


def test_tags_moved_back_tags_created_since_removed_and_the_dry_run_equals_the_real_run(client, services):
    first, _ = push_image(client, "team/api", "stable", seed="a1")
    kept, _ = push_image(client, "team/api", "old", seed="a0")
    moment = position(client)
    second, _ = push_image(client, "team/api", "stable", seed="a2")
    push_image(client, "team/api", "new", seed="a3")
    assert client.delete("/v2/team/api/manifests/old").status_code == 202

    dry = restore(client, "repositories/team/api", moment, dry_run=True)
    assert tags(client, "team/api")["stable"] == second  # nothing recorded
    real = restore(client, "repositories/team/api", moment)

    assert dry["changes"] == real["changes"] and dry["blocked"] == real["blocked"] == []
    assert (dry["dry_run"], real["dry_run"], real["as_of_position"]) == (True, False, moment)
    assert {c["kind"]: c for c in real["changes"] if c["kind"] == "tag-moved"}["tag-moved"] == {
        "kind": "tag-moved", "repository": "team/api", "tag": "stable", "digest": first, "previous_digest": second}
    assert kinds(real) == [("tag-moved", "stable"), ("tag-removed", "new"), ("tag-restored", "old")]
    assert tags(client, "team/api") == {"stable": first, "old": kept}
    assert served_digest(client, "team/api", "stable") == first
    assert served_digest(client, "team/api", "old") == kept
    assert client.get(f"/v2/team/api/manifests/{second}").status_code == 200  # pushed after: left in place
    assert restore(client, "repositories/team/api", moment)["changes"] == []  # nothing left to do


def test_restore_is_attributed_and_audited(client, services):
    create_user(client, "ops")
    grant(client, "team", "ops", "maintainer")
    push_image(client, "team/api", "v1", seed="b1")
    moment = position(client)
    push_image(client, "team/api", "v1", seed="b2")
    restore(client, "repositories/team/api", moment, auth=("ops", PASSWORD))
    entries = client.get("/api/v1/audit-logs", params={"repository": "team/api", "order": "desc",
                                                       "limit": 5}).json()
    by_operation = {e["operation"]: e for e in reversed(entries)}  # the newest of each
    assert by_operation["repository.restored"]["actor"] == "ops"
    assert by_operation["repository.restored"]["details"]["as_of_position"] == moment
    assert by_operation["repository.tag_pointed"]["actor"] == "ops"


def test_a_deleted_repository_comes_back_as_it_was(client, services):
    first, _ = push_image(client, "team/gone", "v1", seed="c1")
    moment = position(client)
    push_image(client, "team/gone", "v2", seed="c2")
    assert client.delete("/api/v1/repositories/team/gone").status_code == 204

    answer = restore(client, "repositories/team/gone", moment)

    assert kinds(answer) == [("manifest-restored", first), ("repository-restored", ""), ("tag-restored", "v1")]
    assert tags(client, "team/gone") == {"v1": first}
    assert served_digest(client, "team/gone", "v1") == first
    assert "team/gone" in client.get("/v2/_catalog").json()["repositories"]


def test_a_deleted_manifest_comes_back_with_its_tag(client, services):
    first, _ = push_image(client, "team/api", "v1", seed="d1")
    moment = position(client)
    assert client.delete(f"/v2/team/api/manifests/{first}").status_code == 202
    assert served_digest(client, "team/api", "v1") is None

    answer = restore(client, "repositories/team/api", moment)

    assert kinds(answer) == [("manifest-restored", first), ("tag-restored", "v1")]
    assert served_digest(client, "team/api", "v1") == first


def test_a_deleted_index_comes_back_after_its_children(client, services):
    children = {arch: push_image(client, "team/multi", arch, seed=f"m-{arch}") for arch in ("amd64", "arm64")}
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        descriptor(OCI_MANIFEST, manifest) for _, manifest in children.values()]}).encode()
    assert client.put("/v2/team/multi/manifests/multi", content=index,
                      headers={"Content-Type": OCI_INDEX}).status_code == 201
    for arch in children:  # untagged children: only the index names them
        assert client.delete(f"/v2/team/multi/manifests/{arch}").status_code == 202
    moment = position(client)
    assert client.delete("/api/v1/repositories/team/multi").status_code == 204

    answer = restore(client, "repositories/team/multi", moment)

    restored = {c["digest"] for c in answer["changes"] if c["kind"] == "manifest-restored"}
    assert restored == {digest_of(index), *(digest for digest, _ in children.values())}
    assert served_digest(client, "team/multi", "multi") == digest_of(index)
    for digest, _ in children.values():
        assert client.get(f"/v2/team/multi/manifests/{digest}").status_code == 200


def test_a_rule_added_since_protects_its_tags_while_the_project_restore_removes_it(client, services):
    first, _ = push_image(client, "team/api", "v1", seed="r1")
    moment = position(client)
    second, _ = push_image(client, "team/api", "v1", seed="r2")
    assert client.post("/api/v1/projects/team/immutable-tag-rules", json={"tags": "v*"}).status_code == 201

    answer = restore(client, "projects/team", moment)

    assert [(c["kind"], c.get("policy")) for c in answer["changes"]] == [("policy-restored", "immutability_rules")]
    assert [(b["kind"], b["tag"]) for b in answer["blocked"]] == [("tag-moved", "v1")]
    assert client.get("/api/v1/projects/team/immutable-tag-rules").json() == []
    assert served_digest(client, "team/api", "v1") == second
    assert restore(client, "repositories/team/api", moment)["changes"][0]["digest"] == first  # now it may move


def test_an_immutable_tag_is_neither_moved_nor_removed(client, services):
    first, _ = push_image(client, "team/api", "v1", seed="e1")
    moment = position(client)
    push_image(client, "team/api", "v1", seed="e2")
    pinned, _ = push_image(client, "team/api", "v9", seed="e9")
    rule = client.post("/api/v1/projects/team/immutable-tag-rules", json={"tags": "v*"})
    assert rule.status_code == 201, rule.text
    rule_id = rule.json()["id"]

    answer = restore(client, "repositories/team/api", moment)

    assert answer["changes"] == []
    assert sorted((b["kind"], b["tag"]) for b in answer["blocked"]) == [("tag-moved", "v1"), ("tag-removed", "v9")]
    assert all(f"immutable tag rule {rule_id}" in b["reason"] for b in answer["blocked"])
    assert served_digest(client, "team/api", "v9") == pinned


def test_a_moment_whose_bytes_were_collected_is_refused_naming_them(client, services):
    first, _ = push_image(client, "team/gone", "v1", seed="f1")
    moment = position(client)
    assert client.delete("/api/v1/repositories/team/gone").status_code == 204
    time.sleep(1.1)  # nothing touched within the last second is collected
    services.gc_jobs.start(0, False, "cli", RequestContext("admin", "test-gc"), background=False)
    services.projections.catch_up()
    assert services.blobs.stat(first) is None

    for dry_run in (True, False):
        problem = restore(client, "repositories/team/gone", moment, dry_run=dry_run, status=409)
        assert first in problem["missing_digests"] and len(problem["missing_digests"]) == 3
    assert client.get("/v2/team/gone/tags/list").status_code == 404  # nothing recorded


def test_the_quota_refuses_the_dry_run_as_the_real_run_which_alone_records_it(client, services):
    first, _ = push_image(client, "team/api", "v1", seed="q1")
    moment = position(client)
    assert client.delete(f"/v2/team/api/manifests/{first}").status_code == 202
    assert client.put("/api/v1/projects/team/quota", json={"artifacts": 0}).status_code == 200

    def refusals() -> int:
        entries = client.get("/api/v1/audit-logs", params={"project": "team", "operation": "project.quota_exceeded"})
        return len(entries.json())

    restore(client, "repositories/team/api", moment, dry_run=True, status=403)
    assert refusals() == 0
    restore(client, "repositories/team/api", moment, status=403)
    assert refusals() == 1
    assert served_digest(client, "team/api", "v1") is None


def test_bad_input_and_unknown_names(client):
    push_image(client, "team/api", "v1", seed="g1")
    for as_of in ("yesterday", "", True, -3, 2**70, 1.5, {}, [], "2026-13-45T99:00:00Z"):
        restore(client, "repositories/team/api", as_of, status=422)
    for body in ({}, [], "1", {"as_of": 1, "dry_run": "yes"}):
        assert client.post("/api/v1/repositories/team/api/restore", json=body).status_code == 422
    assert client.post("/api/v1/repositories/team/API/restore", json={"as_of": 1}).status_code == 422
    assert client.post("/api/v1/repositories/team/api/restore", content=b"{").status_code == 400
    restore(client, "repositories/team/nothing", 1, status=404)
    restore(client, "projects/nothing", 1, status=404)


def test_permissions_are_checked_before_the_body(client):
    create_user(client, "dev")
    grant(client, "team", "dev", "developer")  # pushes, but deletes nothing
    push_image(client, "team/api", "v1", seed="h1")
    for path in ("repositories/team/api", "projects/team"):
        response = client.post(f"/api/v1/{path}/restore", content=b"not json", auth=("dev", PASSWORD))
        assert response.status_code == 403, response.text
        assert client.post(f"/api/v1/{path}/restore", content=b"not json", auth=None).status_code == 401
    grant(client, "team", "dev", "maintainer")
    assert client.post("/api/v1/repositories/team/api/restore", json={"as_of": 1, "dry_run": True},
                       auth=("dev", PASSWORD)).status_code == 200
    assert client.post("/api/v1/projects/team/restore", json={"as_of": 1, "dry_run": True},
                       auth=("dev", PASSWORD)).status_code == 403  # project administrators only
    robot = client.post("/api/v1/robots", json={"name": "half", "project": "team", "permissions": [
        {"project": "team", "resource": "project", "action": "update"}]}).json()
    assert client.post("/api/v1/projects/team/restore", json={"as_of": 1, "dry_run": True},
                       auth=(robot["name"], robot["secret"])).status_code == 403
    grant(client, "team", "dev", "project_admin")
    assert client.post("/api/v1/projects/team/restore", json={"as_of": position(client), "dry_run": True},
                       auth=("dev", PASSWORD)).status_code == 200


def test_a_project_comes_back_with_members_robots_policies_and_repositories(client, services):
    create_user(client, "alice")
    create_user(client, "bob")
    grant(client, "team", "alice", "developer")
    robot = client.post("/api/v1/robots", json={"name": "ci", "project": "team", "permissions": [
        {"project": "team", "resource": "repository", "action": "pull"}]})
    assert robot.status_code == 201, robot.text
    robot_name = robot.json()["name"]
    doomed = client.post("/api/v1/robots", json={"name": "doomed", "project": "team", "permissions": [
        {"project": "team", "resource": "repository", "action": "pull"}]}).json()["name"]
    first, _ = push_image(client, "team/api", "v1", seed="i1")
    moment = position(client)

    grant(client, "team", "alice", "maintainer")
    grant(client, "team", "bob", "guest")
    assert client.patch(f"/api/v1/robots/{robot_name}", json={"permissions": [
        {"project": "team", "resource": "repository", "action": "push"}]}).status_code == 200
    assert client.delete(f"/api/v1/robots/{doomed}").status_code == 204
    assert client.patch("/api/v1/projects/team", json={"public": True}).status_code == 200
    assert client.put("/api/v1/projects/team/quota", json={"storage_bytes": 10**9}).status_code == 200
    push_image(client, "team/web", "v1", seed="i2")
    push_image(client, "team/api", "v1", seed="i3")

    dry = restore(client, "projects/team", moment, dry_run=True)
    real = restore(client, "projects/team", moment)

    assert dry["changes"] == real["changes"] and dry["blocked"] == real["blocked"]
    assert kinds(real) == [("member-removed", "bob"), ("member-role-changed", "alice"),
                           ("policy-restored", "quota"), ("policy-restored", "visibility"),
                           ("robot-permissions-changed", ""), ("tag-moved", "v1"), ("tag-removed", "v1")]
    assert [(b["kind"], b["robot"]) for b in real["blocked"]] == [("robot-restored", doomed)]
    members = {m["principal"]: m["role"] for m in client.get("/api/v1/projects/team/members").json()}
    assert members.get("alice") == "developer" and "bob" not in members
    assert client.get(f"/api/v1/robots/{robot_name}").json()["permissions"] == [
        {"project": "team", "resource": "repository", "action": "pull"}]
    assert client.get("/api/v1/projects/team").json()["public"] is False
    assert client.get("/api/v1/projects/team/quota").json()["limits"]["storage_bytes"] is None
    assert served_digest(client, "team/api", "v1") == first
    assert tags(client, "team/web") == {}
    assert client.get(f"/api/v1/robots/{doomed}").status_code == 404  # stays deleted


def test_a_deleted_project_comes_back_with_its_members_and_rules(client, services):
    create_user(client, "alice")
    assert client.post("/api/v1/projects", json={"name": "gone"}).status_code == 201
    grant(client, "gone", "alice", "developer")
    rule = client.post("/api/v1/projects/gone/immutable-tag-rules", json={"tags": "release-*"})
    assert rule.status_code == 201, rule.text
    first, _ = push_image(client, "gone/app", "v1", seed="j1")
    moment = position(client)
    assert client.delete("/api/v1/repositories/gone/app").status_code == 204
    assert client.delete("/api/v1/projects/gone").status_code in (200, 204)

    answer = restore(client, "projects/gone", moment)

    assert ("project-restored", "") in kinds(answer) and ("repository-restored", "") in kinds(answer)
    members = {m["principal"]: m["role"] for m in client.get("/api/v1/projects/gone/members").json()}
    assert members.get("alice") == "developer"
    rules = client.get("/api/v1/projects/gone/immutable-tag-rules").json()
    assert [r["tags"] for r in rules] == ["release-*"]
    assert served_digest(client, "gone/app", "v1") == first


def test_a_restore_survives_a_rebuild_of_the_read_models(client, services):
    first, _ = push_image(client, "team/api", "v1", seed="k1")
    moment = position(client)
    push_image(client, "team/api", "v1", seed="k2")
    restore(client, "repositories/team/api", moment)
    services.projections.rebuild()
    assert tags(client, "team/api") == {"v1": first}
