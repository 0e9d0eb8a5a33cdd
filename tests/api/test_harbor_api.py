"""The Harbor API v2.0 surface, driven by the unmodified `harborapi` client (and plain httpx for
paging headers, q= filters and error shapes) against a live `portlog serve`."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from harborapi.exceptions import BadRequest, Conflict, Forbidden, NotFound
from harborapi.models import (
    Access,
    ProjectMember,
    ProjectMetadata,
    ProjectReq,
    Robot,
    RobotCreate,
    RobotPermission,
    Tag,
    UserCreationReq,
    UserEntity,
)

from tests.support.auth import token_access
from tests.support.harbor import docker_token, harbor_client, harbor_errors, id_of
from tests.support.oci import OCI_MANIFEST, push_image

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::DeprecationWarning:harborapi")]



@pytest.fixture
async def harbor(live_server):
    client = harbor_client(live_server)
    yield client
    await client.client.aclose()


@pytest.fixture
def http(live_server):
    with live_server.client() as client:
        yield client


async def new_user(harbor, username: str, password: str = "Harbor-Pass-1") -> int:
    location = await harbor.create_user(UserCreationReq(
        username=username, email=f"{username}@example.com", realname=username.title(), password=password))
    return id_of(location)


# Projects


async def test_project_lifecycle(harbor):
    location = await harbor.create_project(ProjectReq(project_name="hp-life", metadata=ProjectMetadata(public="true")))
    assert location == "/api/v2.0/projects/hp-life"
    project = await harbor.get_project("hp-life")
    assert project.name == "hp-life" and project.metadata.public == "true"
    assert project.current_user_role_id == 1 and project.repo_count == 0
    assert (await harbor.get_project(project.project_id)).name == "hp-life"
    assert await harbor.project_exists("hp-life") and not await harbor.project_exists("hp-never")

    await harbor.update_project("hp-life", ProjectReq(metadata=ProjectMetadata(public="false")))
    assert (await harbor.get_project(project.project_id)).metadata.public == "false"

    await harbor.delete_project("hp-life")
    assert not await harbor.project_exists("hp-life")
    with pytest.raises(NotFound):
        await harbor.get_project("hp-life")


async def test_get_projects_follows_pages_and_filters(harbor):
    for n in (1, 2, 3):
        await harbor.create_project(ProjectReq(project_name=f"hpage-{n}", metadata=ProjectMetadata(public="false")))
    found = await harbor.get_projects(query="name=~hpage-", page_size=2)
    assert sorted(p.name for p in found) == ["hpage-1", "hpage-2", "hpage-3"]
    assert [p.name for p in await harbor.get_projects(query="name=hpage-2")] == ["hpage-2"]
    assert [p.name for p in await harbor.get_projects(name="hpage", page_size=1, limit=2)] == ["hpage-1", "hpage-2"]
    public = await harbor.get_projects(public=True, page_size=100)
    assert "library" in {p.name for p in public} and not {p.name for p in public} & {"hpage-1", "team"}


async def test_anonymous_sees_public_projects_only(live_server):
    response = httpx.get(f"{live_server.url}/api/v2.0/projects?page_size=100")
    assert response.status_code == 200
    assert {p["name"] for p in response.json()} >= {"library"}
    assert all(p["metadata"]["public"] == "true" for p in response.json())


# Users


async def test_user_lifecycle(harbor, live_server):
    user_id = await new_user(harbor, "hu-alice")
    alice = await harbor.get_user(user_id)
    assert (alice.username, alice.email, alice.sysadmin_flag) == ("hu-alice", "hu-alice@example.com", False)
    assert "hu-alice" in {u.username for u in await harbor.get_users(query="username=~hu-")}
    assert (await harbor.get_user_by_username("hu-alice")).user_id == user_id

    await harbor.set_user_admin(user_id, True)
    assert (await harbor.get_user(user_id)).sysadmin_flag is True
    await harbor.set_user_password(user_id, new_password="Harbor-Pass-2")
    as_alice = harbor_client(live_server, "hu-alice", "Harbor-Pass-2")
    current = await as_alice.get_current_user()
    assert (current.username, current.user_id, current.sysadmin_flag) == ("hu-alice", user_id, True)
    await as_alice.client.aclose()

    await harbor.delete_user(user_id)
    with pytest.raises(NotFound):
        await harbor.get_user(user_id)


async def test_own_password_change_needs_the_old_password(harbor, live_server):
    user_id = await new_user(harbor, "hu-bob")
    as_bob = harbor_client(live_server, "hu-bob", "Harbor-Pass-1")
    with pytest.raises(BadRequest):
        await as_bob.set_user_password(user_id, new_password="Harbor-Pass-3", old_password="wrong")
    await as_bob.set_user_password(user_id, new_password="Harbor-Pass-3", old_password="Harbor-Pass-1")
    await as_bob.client.aclose()
    as_bob = harbor_client(live_server, "hu-bob", "Harbor-Pass-3")
    assert (await as_bob.get_current_user()).username == "hu-bob"
    await as_bob.client.aclose()


async def test_weak_password_is_refused(harbor):
    with pytest.raises(BadRequest) as refused:
        await new_user(harbor, "hu-weak", password="short")
    assert "password" in refused.value.errors[0].message


# Members


async def test_project_members(harbor, live_server):
    await new_user(harbor, "hm-dev")
    location = await harbor.add_project_member_user("team", "hm-dev", role_id=2)
    member_id = id_of(location)
    member = next(m for m in await harbor.get_project_members("team") if m.entity_name == "hm-dev")
    assert (member.role_id, member.role_name, member.id, member.entity_type) == (2, "developer", member_id, "u")
    assert member.project_id == (await harbor.get_project("team")).project_id
    with pytest.raises(Conflict):
        await harbor.add_project_member("team", ProjectMember(role_id=3, member_user=UserEntity(username="hm-dev")))

    token = docker_token(live_server, ("hm-dev", "Harbor-Pass-1"), "repository:team/app:pull,push,delete")
    assert token_access(token.json()["token"])[0]["actions"] == ["pull", "push"]

    await harbor.update_project_member_role("team", member_id, 4)
    assert (await harbor.get_project_member("team", member_id)).role_name == "maintainer"
    await harbor.remove_project_member("team", member_id)
    assert "hm-dev" not in {m.entity_name for m in await harbor.get_project_members("team")}


# Robots


async def test_project_robot_and_its_docker_token(harbor, live_server):
    project_id = (await harbor.get_project("race")).project_id
    created = await harbor.create_robot(RobotCreate(
        name="hci", level="project", duration=30, description="ci", permissions=[RobotPermission(
            kind="project", namespace="race",
            access=[Access(resource="repository", action="pull"), Access(resource="repository", action="push")])]))
    assert created.name == "robot$race+hci" and created.secret
    assert abs(created.expires_at - (time.time() + 30 * 86400)) < 120

    response = docker_token(live_server, (created.name, created.secret), "repository:race/app:pull,push")
    assert response.status_code == 200
    assert token_access(response.json()["token"]) == [
        {"type": "repository", "name": "race/app", "actions": ["pull", "push"]}]

    listed = await harbor.get_robots(query=f"Level=project,ProjectID={project_id}")
    robot = next(r for r in listed if r.id == created.id)
    assert (robot.level, robot.duration, robot.description) == ("project", 30, "ci")
    assert robot.permissions[0].namespace == "race"
    assert {(a.resource, a.action) for a in robot.permissions[0].access} == {
        ("repository", "pull"), ("repository", "push")}
    assert (await harbor.get_robot(created.id)).name == "robot$race+hci"

    await harbor.delete_robot(created.id)
    assert docker_token(live_server, (created.name, created.secret), "repository:race/app:pull").status_code == 401
    with pytest.raises(NotFound):
        await harbor.get_robot(created.id)


async def test_system_robot_and_refused_permissions(harbor):
    created = await harbor.create_robot(RobotCreate(name="hsys", level="system", duration=-1, permissions=[
        RobotPermission(kind="project", namespace="*", access=[Access(resource="repository", action="pull")])]))
    assert created.name == "robot$hsys" and created.expires_at == -1
    robot = next(r for r in await harbor.get_robots(query="name=robot$hsys"))
    assert (robot.level, robot.duration, robot.permissions[0].namespace) == ("system", -1, "*")

    with pytest.raises(BadRequest) as refused:
        await harbor.create_robot(RobotCreate(name="hscan", level="project", duration=-1, permissions=[
            RobotPermission(kind="project", namespace="race",
                            access=[Access(resource="helm-chart", action="create")])]))
    assert "helm-chart:create is not a Portlog permission" in refused.value.errors[0].message
    await harbor.delete_robot(created.id)


async def test_robot_secret_refresh_and_disable(harbor, live_server):
    created = await harbor.create_robot(RobotCreate(name="hrefresh", level="project", duration=-1, permissions=[
        RobotPermission(kind="project", namespace="race", access=[Access(resource="repository", action="pull")])]))

    def token_status(secret: str) -> int:
        return docker_token(live_server, (created.name, secret), "repository:race/app:pull").status_code

    refreshed = await harbor.refresh_robot_secret(created.id, "")
    assert refreshed.secret != created.secret
    assert (token_status(created.secret), token_status(refreshed.secret)) == (401, 200)
    robot = await harbor.get_robot(created.id)
    await harbor.update_robot(created.id, Robot(name=robot.name, level="project", disable=True,
                                                duration=-1, permissions=robot.permissions))
    assert (await harbor.get_robot(created.id)).disable is True and token_status(refreshed.secret) == 401
    with pytest.raises(BadRequest):
        await harbor.refresh_robot_secret(created.id, "Chosen-Secret-1")


async def test_project_admin_manages_robots_of_their_project_only(harbor, live_server):
    await new_user(harbor, "hr-owner")
    await harbor.add_project_member_user("race", "hr-owner", role_id=1)
    as_owner = harbor_client(live_server, "hr-owner", "Harbor-Pass-1")
    project_id = (await as_owner.get_project("race")).project_id
    created = await as_owner.create_robot(RobotCreate(name="howned", level="project", duration=7, permissions=[
        RobotPermission(kind="project", namespace="race", access=[Access(resource="repository", action="pull")])]))
    listed = await as_owner.get_robots(query=f"Level=project,ProjectID={project_id}")
    assert created.name in {r.name for r in listed}
    with pytest.raises(Forbidden):
        await as_owner.get_robots()
    with pytest.raises(Forbidden):
        await as_owner.create_robot(RobotCreate(name="hsneak", level="system", duration=-1, permissions=[
            RobotPermission(kind="project", namespace="*", access=[Access(resource="repository", action="pull")])]))
    await as_owner.client.aclose()


# Repositories, artifacts, tags


async def test_repositories_artifacts_and_tags(harbor, http):
    digest, _ = push_image(http, "mirror/web/app", "1.0", seed="h1")
    repository = next(r for r in await harbor.get_repositories("mirror") if r.name == "mirror/web/app")
    assert repository.artifact_count == 1 and repository.project_id == (await harbor.get_project("mirror")).project_id
    assert (await harbor.get_repository("mirror", "web/app")).id == repository.id

    [artifact] = await harbor.get_artifacts("mirror", "web/app")
    assert (artifact.digest, artifact.type, artifact.manifest_media_type) == (digest, "IMAGE", OCI_MANIFEST)
    assert [t.name for t in artifact.tags] == ["1.0"] and artifact.repository_id == repository.id
    assert (await harbor.get_artifact("mirror", "web/app", "1.0")).id == artifact.id

    await harbor.create_artifact_tag("mirror", "web/app", digest, Tag(name="stable"))
    assert sorted(t.name for t in await harbor.get_artifact_tags("mirror", "web/app", digest)) == ["1.0", "stable"]
    assert http.head("/v2/mirror/web/app/manifests/stable").headers["Docker-Content-Digest"] == digest
    with pytest.raises(Conflict):
        await harbor.create_artifact_tag("mirror", "web/app", digest, Tag(name="stable"))
    await harbor.delete_artifact_tag("mirror", "web/app", digest, "1.0")
    assert [t.name for t in await harbor.get_artifact_tags("mirror", "web/app", "stable")] == ["stable"]

    second, _ = push_image(http, "mirror/web/app", "2.0", seed="h2")
    assert [a.digest for a in await harbor.get_artifacts("mirror", "web/app", query="tags=~2")] == [second]
    assert len(await harbor.get_artifacts("mirror", "web/app", query="tags=*")) == 2
    await harbor.delete_artifact("mirror", "web/app", "2.0")
    assert [a.digest for a in await harbor.get_artifacts("mirror", "web/app")] == [digest]
    assert http.get(f"/v2/mirror/web/app/manifests/{second}").status_code == 404
    with pytest.raises(NotFound):
        await harbor.get_artifact("mirror", "web/app", "2.0")


# Audit logs


async def test_audit_logs(harbor, http):
    digest, _ = push_image(http, "trunc/audited", "v1", seed="audit")
    logs = await harbor.get_audit_logs(query="resource=~trunc/audited", page_size=100)
    kinds = {(log.operation, log.resource_type, log.resource) for log in logs}
    assert ("create", "artifact", f"trunc/audited@{digest}") in kinds
    assert ("create", "tag", "trunc/audited:v1") in kinds
    assert all(log.username == "admin" and log.op_time for log in logs)
    assert [log.id for log in logs] == sorted((log.id for log in logs), reverse=True)
    hour = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None) + timedelta(hours=1)
    window = f"op_time=[{hour - timedelta(hours=2)}~{hour}]"
    assert len(await harbor.get_audit_logs(query=f"resource=~trunc/audited,{window}", page_size=100)) == len(logs)
    assert await harbor.get_audit_logs(query=f"resource=~trunc/audited,op_time=[~{hour - timedelta(hours=2)}]") == []
    tags_only = await harbor.get_audit_logs(query="resource=~trunc/audited,resource_type=tag")
    assert [log.resource for log in tags_only] == ["trunc/audited:v1"]
    project_logs = await harbor.get_project_logs("trunc", query="operation=create", page_size=100)
    assert f"trunc/audited@{digest}" in {log.resource for log in project_logs}


# Plain HTTP: paging headers, q= filters, error shapes


def test_paging_headers(http):
    first = http.get("/api/v2.0/projects", params={"page": 1, "page_size": 2})
    total = int(first.headers["X-Total-Count"])
    assert len(first.json()) == 2 and total >= 8
    assert first.headers["Link"] == '</api/v2.0/projects?page=2&page_size=2>; rel="next"'
    second = http.get("/api/v2.0/projects", params={"page": 2, "page_size": 2})
    assert 'rel="prev"' in second.headers["Link"] and "page=1" in second.headers["Link"]
    assert {p["name"] for p in first.json()}.isdisjoint(p["name"] for p in second.json())
    filtered = http.get("/api/v2.0/projects", params={"q": "name=~a", "page_size": 1})
    assert "q=name%3D~a" in filtered.headers["Link"]


def test_q_filters(http):
    for name in ("hq-one", "hq-two", "hq-three"):
        assert http.post("/api/v2.0/users", json={"username": name, "password": "Harbor-Pass-1"}).status_code == 201

    def names(q: str) -> list[str]:
        response = http.get("/api/v2.0/users", params={"q": q, "page_size": 100, "sort": "username"})
        assert response.status_code == 200, response.text
        return [u["username"] for u in response.json()]

    assert names("username=~hq-t") == ["hq-three", "hq-two"]
    assert names("username=hq-one") == ["hq-one"]
    assert names("username={hq-one hq-two}") == ["hq-one", "hq-two"]
    ids = [u["user_id"] for u in http.get("/api/v2.0/users", params={"q": "username=~hq-"}).json()]
    assert names(f"user_id=[{min(ids)}~{max(ids)}],username=~hq-") == ["hq-one", "hq-three", "hq-two"]
    assert names("username='hq-two'") == ["hq-two"]


def test_error_shapes(http, live_server):
    missing = http.get("/api/v2.0/projects/no-such-project")
    assert missing.status_code == 404 and harbor_errors(missing)[0][0] == "NOT_FOUND"
    duplicate = http.post("/api/v2.0/projects", json={"project_name": "team"})
    assert duplicate.status_code == 409 and harbor_errors(duplicate)[0][0] == "CONFLICT"
    anonymous = httpx.get(f"{live_server.url}/api/v2.0/users")
    assert anonymous.status_code == 401 and harbor_errors(anonymous)[0][0] == "UNAUTHORIZED"
    bad_q = http.get("/api/v2.0/users", params={"q": "shoe_size=42"})
    assert bad_q.status_code == 400 and harbor_errors(bad_q)[0][0] == "BAD_REQUEST"
    bad_name = http.post("/api/v2.0/projects", json={"project_name": "Not Valid"})
    assert bad_name.status_code == 400 and harbor_errors(bad_name)[0][0] == "BAD_REQUEST"
    push_image(http, "z/keep", "1", seed="z")
    not_empty = http.delete("/api/v2.0/projects/z")
    assert not_empty.status_code == 412 and harbor_errors(not_empty)[0][0] == "PRECONDITION"
    assert http.post("/api/v2.0/users", json={"username": "he-plain", "password": "Harbor-Pass-1"}).status_code == 201
    forbidden = http.get("/api/v2.0/users", auth=("he-plain", "Harbor-Pass-1"))
    assert forbidden.status_code == 403 and harbor_errors(forbidden)[0][0] == "FORBIDDEN"
    unsupported = http.get("/api/v2.0/systeminfo/getcert")
    assert unsupported.status_code == 404 and "not part of" in harbor_errors(unsupported)[0][1]
    unknown_artifact = http.get("/api/v2.0/projects/z/repositories/keep/artifacts/sha256:" + "0" * 64)
    assert unknown_artifact.status_code == 404 and harbor_errors(unknown_artifact)[0][0] == "NOT_FOUND"


def test_terraform_style_requests(http):
    """Bodies as the Terraform provider sends them; ids taken from Location; exact statuses."""
    body = {"project_name": "htf", "storage_limit": -1, "cve_allowlist": {},
            "metadata": {"public": "false", "auto_scan": "true", "severity": "low", "prevent_vul": "false",
                         "enable_content_trust": "false", "reuse_sys_cve_allowlist": "true"}}
    created = http.post("/api/v2.0/projects", json=body)
    assert created.status_code == 201
    project_path = created.headers["Location"]
    project_id = id_of(project_path)
    assert http.get(project_path).json()["project_id"] == project_id
    assert http.put(project_path, json={**body, "metadata": {**body["metadata"], "public": "true"}}).status_code == 200
    assert http.get(project_path).json()["metadata"]["public"] == "true"

    assert http.post("/api/v2.0/users", json={"username": "htf-user", "email": "t@example.com",
                                              "realname": "T", "password": "Harbor-Pass-1"}).status_code == 201
    member = http.post(f"/api/v2.0/projects/{project_id}/members", json={
        "role_id": 3, "member_group": {}, "member_user": {"username": "htf-user"}})
    assert member.status_code == 201
    assert member.headers["Location"].startswith(f"/api/v2.0/projects/{project_id}/members/")
    assert http.get(member.headers["Location"]).json()["role_name"] == "guest"
    assert http.put(member.headers["Location"], json={"role_id": 5, "member_group": {}}).status_code == 200
    assert http.get(member.headers["Location"]).json()["role_id"] == 5
    assert http.delete(member.headers["Location"]).status_code == 200
    assert http.get(member.headers["Location"]).status_code == 404

    assert http.delete(project_path).status_code == 200
    assert http.get(project_path).status_code == 404
    assert http.get("/api/v2.0/configurations").json()["robot_name_prefix"]["value"] == "robot$"
    assert http.get("/api/v2.0/ping").text == "Pong"


# System: health, systeminfo, volumes, statistics


async def test_system_endpoints(harbor, http, live_server):
    health = await harbor.health_check()
    assert health.status == "healthy"
    assert {c.name: c.status for c in health.components} == {
        "core": "healthy", "database": "healthy", "scanner": "healthy", "storage": "healthy"}

    info = await harbor.get_system_info()
    assert (info.auth_mode, info.self_registration, info.read_only) == ("db_auth", False, False)
    assert info.harbor_version and info.registry_storage_provider_name == "filesystem"
    assert info.external_url == live_server.url and info.registry_url == live_server.url.split("://")[1]

    storage = (await harbor.get_system_volume_info()).storage
    assert len(storage) == 1 and storage[0].total > storage[0].free > 0

    push_image(http, "team/hs-stats", "v1", seed="stats")
    stats = await harbor.get_statistics()
    assert stats.total_project_count == stats.public_project_count + stats.private_project_count >= 1
    assert stats.total_repo_count == stats.public_repo_count + stats.private_repo_count >= 1
    assert stats.total_storage_consumption > 0

    anonymous = httpx.get(f"{live_server.url}/api/v2.0/systeminfo").json()
    assert "harbor_version" not in anonymous and anonymous["auth_mode"] == "db_auth"
    assert httpx.get(f"{live_server.url}/readyz").status_code == 200
