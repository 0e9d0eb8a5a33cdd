"""The restore plan (domain/restore.py): the state at a moment against the state now, as changes,
without I/O — the aggregates are built in memory."""

from __future__ import annotations

from copy import deepcopy

import pytest

from domain.context import RequestContext
from domain.errors import NotFoundError
from domain.immutability import ImmutableRule, Selector
from domain.manifests import OCI_MANIFEST, Descriptor, ParsedManifest
from domain.permissions import Role
from domain.project import Project
from domain.quotas import QuotaLimits
from domain.repository import Repository
from domain.restore import Plan, ProjectMoment, plan_project, plan_repository
from domain.robot import Robot

CTX = RequestContext("alice", "req")


def image(seed: str) -> ParsedManifest:
    config = Descriptor("application/vnd.oci.image.config.v1+json", "sha256:" + seed * 64, 10)
    layer = Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", "sha256:" + chr(ord(seed) + 1) * 64, 20)
    return ParsedManifest(digest="sha256:" + seed.upper() * 64, media_type=OCI_MANIFEST, size=300,
                          config=config, layers=(layer,))


def push(repo: Repository, manifest: ParsedManifest, tag: str | None) -> None:
    repo.link_blob(manifest.config.digest, manifest.config.size, CTX)
    for layer in manifest.layers:
        repo.link_blob(layer.digest, layer.size, CTX)
    repo.push_manifest(manifest, tag, CTX)


ONE, TWO, THREE = image("1"), image("3"), image("5")
unprotected = lambda repository, tag: None  # noqa: E731


def public(plan: Plan) -> list[tuple]:
    return [(c["kind"], c.get("tag") or c.get("digest")) for c in plan.public()["changes"]]


def test_a_moved_tag_goes_back_a_new_tag_goes_and_a_deleted_tag_comes_back():
    repo = Repository.create("team/app", CTX)
    push(repo, ONE, "stable")
    push(repo, TWO, "old")
    then = deepcopy(repo)
    push(repo, THREE, "stable")
    repo.point_tag("new", THREE.digest, CTX)
    repo.delete_tag("old", CTX)

    plan = plan_repository("team/app", then, repo, unprotected)

    assert public(plan) == [("tag-removed", "new"), ("tag-restored", "old"), ("tag-moved", "stable")]
    assert plan.public()["changes"][2]["previous_digest"] == THREE.digest
    assert plan.tags == {"team/app": {"stable": ONE.digest, "new": None, "old": TWO.digest}}
    assert plan.needed_digests() == []  # every manifest is still there: no bytes to bring back


def test_a_deleted_manifest_comes_back_with_the_blobs_it_references():
    repo = Repository.create("team/app", CTX)
    push(repo, ONE, "v1")
    then = deepcopy(repo)
    repo.delete_manifest(ONE.digest, CTX)
    repo.unlink_blob(ONE.layers[0].digest, CTX)

    plan = plan_repository("team/app", then, repo, unprotected)

    assert public(plan) == [("manifest-restored", ONE.digest), ("tag-restored", "v1")]
    assert plan.manifests == {"team/app": {ONE.digest: OCI_MANIFEST}}
    assert plan.blobs == {"team/app": {ONE.layers[0].digest: 20}}  # the config is still linked
    assert plan.needed_digests() == sorted([ONE.digest, ONE.layers[0].digest])


def test_a_deleted_repository_is_brought_back_whole():
    repo = Repository.create("team/app", CTX)
    push(repo, ONE, "v1")
    then = deepcopy(repo)
    repo.delete(CTX)

    plan = plan_repository("team/app", then, repo, unprotected)

    assert public(plan) == [("repository-restored", None), ("manifest-restored", ONE.digest), ("tag-restored", "v1")]
    assert set(plan.blobs["team/app"]) == {ONE.config.digest, ONE.layers[0].digest}


def test_a_repository_that_did_not_exist_then_loses_its_tags_and_keeps_its_manifests():
    repo = Repository.create("team/app", CTX)
    push(repo, ONE, "v1")
    for then in (None, _deleted_copy(repo)):
        plan = plan_repository("team/app", then, repo, unprotected)
        assert public(plan) == [("tag-removed", "v1")]
        assert plan.manifests == {}


def _deleted_copy(repo: Repository) -> Repository:
    copy = deepcopy(repo)
    copy.delete(CTX)
    return copy


def test_protected_tags_are_blocked_and_named():
    repo = Repository.create("team/app", CTX)
    push(repo, ONE, "v1")
    then = deepcopy(repo)
    push(repo, TWO, "v1")
    push(repo, THREE, "v2")
    protecting = lambda repository, tag: f"rule 7 protects {repository}:{tag}"  # noqa: E731

    plan = plan_repository("team/app", then, repo, protecting)

    assert plan.changes == [] and plan.tags == {}
    assert [(b["kind"], b["tag"], b["reason"]) for b in plan.public()["blocked"]] == [
        ("tag-moved", "v1", "rule 7 protects team/app:v1"), ("tag-removed", "v2", "rule 7 protects team/app:v2")]


def test_the_same_state_plans_nothing():
    repo = Repository.create("team/app", CTX)
    push(repo, ONE, "v1")
    assert plan_repository("team/app", deepcopy(repo), repo, unprotected).public() == {"changes": [], "blocked": []}


def project_with(members: dict[str, Role]) -> Project:
    project = Project.create("team", False, CTX)
    for username, role in members.items():
        project.set_member("user", username, role, None, CTX)
    return project


def test_members_come_back_with_their_roles_and_members_added_since_go():
    project = project_with({"alice": Role.DEVELOPER, "carol": Role.GUEST})
    then = deepcopy(project)
    project.set_member("user", "alice", Role.MAINTAINER, None, CTX)
    project.remove_member("user", "carol", None, CTX)
    project.set_member("user", "bob", Role.GUEST, "team/app", CTX)

    plan = plan_project(ProjectMoment(then), ProjectMoment(project), user_gone=lambda name: name == "carol")

    assert plan.public()["changes"] == [
        {"kind": "member-role-changed", "member": "alice", "member_kind": "user", "role": "developer",
         "previous_role": "maintainer"},
        {"kind": "member-removed", "member": "bob", "member_kind": "user", "repository": "team/app", "role": "guest"}]
    assert plan.public()["blocked"] == [{"kind": "member-added", "member": "carol", "member_kind": "user",
                                         "role": "guest", "reason": "the user carol was deleted since"}]


def test_policies_come_back_and_quota_needs_a_system_administrator():
    project = project_with({})
    project.add_immutable_rule(ImmutableRule(Selector("**", False), Selector("v*", False)), CTX)
    then = deepcopy(project)
    project.set_public(True, CTX)
    project.set_quota(QuotaLimits(storage_bytes=100), CTX)
    project.remove_immutable_rule(int(next(iter(project.immutable_rules))), CTX)

    plan = plan_project(ProjectMoment(then), ProjectMoment(project), may_set_quota=False)

    changes = plan.public()["changes"]
    assert [(c["policy"], c["value"]) for c in changes] == [
        ("visibility", "private"), ("immutability_rules", list(then.immutable_rules.values()))]
    assert [(b["policy"], b["reason"]) for b in plan.public()["blocked"]] == [
        ("quota", "only system administrators set quotas")]


def test_robots_permissions_come_back_and_deleted_robots_stay_deleted():
    pull = [{"project": "team", "resource": "repository", "action": "pull"}]
    push_ = [{"project": "team", "resource": "repository", "action": "push"}]
    ci = Robot.create("robot$team+ci", "team", pull, None, "hash", "", CTX)
    gone = Robot.create("robot$team+gone", "team", pull, None, "hash", "", CTX)
    then = ProjectMoment(project_with({}), {"robot$team+ci": deepcopy(ci), "robot$team+gone": deepcopy(gone)})
    ci.change_permissions(push_, CTX)
    gone.delete(CTX)
    now = ProjectMoment(then.project, {"robot$team+ci": ci, "robot$team+gone": gone})

    plan = plan_project(then, now)

    assert plan.public()["changes"] == [{"kind": "robot-permissions-changed", "robot": "robot$team+ci",
                                         "permissions": pull, "previous_permissions": push_}]
    assert [(b["kind"], b["robot"]) for b in plan.public()["blocked"]] == [("robot-restored", "robot$team+gone")]


def test_a_deleted_project_comes_back_then_its_members():
    project = project_with({"alice": Role.DEVELOPER})
    then = deepcopy(project)
    project.delete(CTX)
    plan = plan_project(ProjectMoment(then), ProjectMoment(project))
    assert [c["kind"] for c in plan.public()["changes"]] == ["project-restored", "member-added"]


def test_a_project_that_did_not_exist_then_cannot_be_restored():
    with pytest.raises(NotFoundError):
        plan_project(ProjectMoment(None), ProjectMoment(project_with({})))
