"""User groups (/api/v2.0/usergroups) and groups as project members, Harbor's shapes, driven with
plain requests and with the unmodified `harborapi` client; a group's grant reaches an OIDC
account that logs in with its CLI secret, and goes when the group does."""

from __future__ import annotations

import pytest
from harborapi.exceptions import Conflict
from harborapi.models import ProjectMember, UserGroup

from domain.context import RequestContext
from domain.identity import LDAP, LDAP_GROUP, OIDC, ExternalIdentity
from tests.support.auth import PASSWORD, create_user, grant, token_access
from tests.support.harbor import harbor_errors, id_of
from tests.support.oci import push_image
from tests.support.server import ADMIN_PASSWORD

GROUPS = "/api/v2.0/usergroups"
TEAM_MEMBERS = "/api/v2.0/projects/team/members"
SETUP = RequestContext("admin", "test-setup")
CLI_SECRET = "Olivia-Cli-Secret-1"


def create_group(client, body: dict) -> int:
    response = client.post(GROUPS, json=body)
    assert response.status_code == 201, response.text
    assert response.headers["Location"].startswith(f"{GROUPS}/")
    return id_of(response.headers["Location"])


def oidc_account(services, username: str, groups: list[str]) -> None:
    """An account an OpenID Connect provider brought, as at its login, with a CLI secret."""
    services.admin.onboard_user(ExternalIdentity(username, OIDC, f"https://idp.example|{username}"), SETUP)
    services.admin.observe_groups(username, groups, SETUP)
    services.admin.set_cli_secret(username, CLI_SECRET, SETUP)
    services.projections.catch_up()


def actions(client, auth, scope: str = "repository:team/app:pull,push") -> list[str]:
    response = client.get("/service/token", params={"service": "portlog", "scope": scope}, auth=auth)
    assert response.status_code == 200, response.text
    access = token_access(response.json()["token"])
    return access[0]["actions"] if access else []


def test_create_get_list_rename_and_delete(client):
    ldap_id = create_group(client, {"group_name": "Developers", "group_type": 1,
                                    "ldap_group_dn": "CN=Devs, OU=Groups,DC=example,DC=org"})
    oidc_id = create_group(client, {"group_name": "ops", "group_type": 3})
    assert client.get(f"{GROUPS}/{ldap_id}").json() == {
        "id": ldap_id, "group_name": "Developers", "group_type": 1,
        "ldap_group_dn": "CN=Devs, OU=Groups,DC=example,DC=org"}
    assert client.get(f"{GROUPS}/{oidc_id}").json() == {
        "id": oidc_id, "group_name": "ops", "group_type": 3, "ldap_group_dn": ""}

    listed = client.get(GROUPS)
    assert [g["group_name"] for g in listed.json()] == ["Developers", "ops"]
    assert listed.headers["X-Total-Count"] == "2"
    assert [g["id"] for g in client.get(GROUPS, params={"group_name": "ops"}).json()] == [oidc_id]
    by_dn = client.get(GROUPS, params={"ldap_group_dn": "cn=devs,ou=groups,dc=example,dc=org"}).json()
    assert [g["id"] for g in by_dn] == [ldap_id]  # a DN matches whatever its case and spacing

    assert client.put(f"{GROUPS}/{ldap_id}", json={"group_name": "Developers (LDAP)"}).status_code == 200
    assert client.get(f"{GROUPS}/{ldap_id}").json()["group_name"] == "Developers (LDAP)"
    assert client.delete(f"{GROUPS}/{oidc_id}").status_code == 200
    assert client.get(f"{GROUPS}/{oidc_id}").status_code == 404
    assert [g["id"] for g in client.get(GROUPS).json()] == [ldap_id]


def test_paging_follows_the_other_lists(client):
    for number in range(5):
        create_group(client, {"group_name": f"team-{number}", "group_type": 3})
    page = client.get(GROUPS, params={"page": 2, "page_size": 2})
    assert [g["group_name"] for g in page.json()] == ["team-2", "team-3"]
    assert page.headers["X-Total-Count"] == "5"
    assert 'rel="next"' in page.headers["Link"] and 'rel="prev"' in page.headers["Link"]
    assert client.get(GROUPS, params={"page": 0}).status_code == 400


def test_search_answers_ids_names_and_types_to_any_signed_in_user(client):
    create_user(client, "dev")
    group_id = create_group(client, {"group_name": "qa-team", "group_type": 3})
    create_group(client, {"group_name": "ops", "group_type": 3})
    found = client.get(f"{GROUPS}/search", params={"groupname": "qa"}, auth=("dev", PASSWORD))
    assert found.status_code == 200
    assert found.json() == [{"id": group_id, "group_name": "qa-team", "group_type": 3}]
    assert found.headers["X-Total-Count"] == "1"
    assert client.get(f"{GROUPS}/search", auth=("dev", PASSWORD)).status_code == 400
    assert client.get(f"{GROUPS}/search", params={"groupname": "qa"}, auth=None).status_code == 401


@pytest.mark.parametrize("body, message", [
    ({"group_name": "x", "group_type": 2}, "group_type is 1 (LDAP) or 3 (OIDC)"),
    ({"group_name": "x", "group_type": "3"}, "group_type is 1 (LDAP) or 3 (OIDC)"),
    ({"group_name": "x", "group_type": True}, "group_type is 1 (LDAP) or 3 (OIDC)"),
    ({"group_type": 3}, "an OIDC group needs group_name"),
    ({"group_name": "   ", "group_type": 3}, "an OIDC group needs group_name"),
    ({"group_name": "x", "group_type": 1}, "an LDAP group needs ldap_group_dn"),
    ({"group_type": 1, "ldap_group_dn": "not a dn"}, "ldap_group_dn is not a distinguished name"),
    ({"group_type": 1, "ldap_group_dn": "cn=a,,dc=x"}, "ldap_group_dn is not a distinguished name"),
    ({"group_name": "x" * 256, "group_type": 3}, "group_name is at most 255 characters"),
])
def test_bad_input_is_a_400_naming_the_problem(client, body, message):
    response = client.post(GROUPS, json=body)
    assert response.status_code == 400, response.text
    assert message in harbor_errors(response)[0][1]


def test_a_duplicate_is_a_409_and_unknown_ids_are_404(client):
    group_id = create_group(client, {"group_name": "ops", "group_type": 3})
    create_group(client, {"group_type": 1, "ldap_group_dn": "cn=devs,dc=example,dc=org"})
    for body in ({"group_name": "ops", "group_type": 3},
                 {"group_name": "other name", "group_type": 1, "ldap_group_dn": "CN=devs,DC=example,DC=org"}):
        response = client.post(GROUPS, json=body)
        assert response.status_code == 409, response.text
        assert harbor_errors(response)[0][0] == "CONFLICT"
    for path in (f"{GROUPS}/999999", f"{GROUPS}/abc", f"{GROUPS}/%C2%B2"):
        assert client.get(path).status_code == 404, path
        assert client.put(path, json={"group_name": "x"}).status_code == 404, path
        assert client.delete(path).status_code == 404, path
    assert client.put(f"{GROUPS}/{group_id}", json={}).status_code == 400
    renamed = client.put(f"{GROUPS}/{group_id}", json={"group_name": "operations"})
    assert renamed.status_code == 400 and "cannot be renamed" in harbor_errors(renamed)[0][1]
    assert client.post(GROUPS, json=[1]).status_code == 400
    # deleted, the name can be taken again, under a new id
    assert client.delete(f"{GROUPS}/{group_id}").status_code == 200
    assert create_group(client, {"group_name": "ops", "group_type": 3}) != group_id


def test_only_system_administrators_manage_groups(client):
    create_user(client, "dev")
    grant(client, "team", "dev", "project_admin")
    group_id = create_group(client, {"group_name": "ops", "group_type": 3})
    dev = ("dev", PASSWORD)
    for method, path, body in [("GET", GROUPS, None), ("POST", GROUPS, {"group_name": "x", "group_type": 3}),
                               ("GET", f"{GROUPS}/{group_id}", None),
                               ("PUT", f"{GROUPS}/{group_id}", {"group_name": "ops"}),
                               ("DELETE", f"{GROUPS}/{group_id}", None)]:
        response = client.request(method, path, json=body, auth=dev)
        assert response.status_code == 403, (method, path, response.text)
        assert client.request(method, path, json=body, auth=None).status_code == 401, (method, path)
    assert [g["group_name"] for g in client.get(GROUPS).json()] == ["ops"]


def test_a_group_member_is_listed_changed_and_removed_as_harbor_does(client):
    group_id = create_group(client, {"group_name": "ops", "group_type": 3})
    added = client.post(TEAM_MEMBERS, json={"role_id": 2, "member_group": {"id": group_id}})
    assert added.status_code == 201, added.text
    member_id = id_of(added.headers["Location"])
    team_id = client.get("/api/v2.0/projects/team").json()["project_id"]
    expected = {"id": member_id, "project_id": team_id, "entity_name": "ops", "entity_type": "g",
                "entity_id": group_id, "role_id": 2, "role_name": "developer"}
    assert client.get(f"{TEAM_MEMBERS}/{member_id}").json() == expected
    assert expected in client.get(TEAM_MEMBERS).json()
    assert [m["entity_name"] for m in client.get(TEAM_MEMBERS, params={"entityname": "op"}).json()] == ["ops"]

    again = client.post(TEAM_MEMBERS, json={"role_id": 3, "member_group": {"id": group_id}})
    assert again.status_code == 409 and "ops is already a member" in harbor_errors(again)[0][1]
    assert client.put(f"{TEAM_MEMBERS}/{member_id}", json={"role_id": 4}).status_code == 200
    assert client.get(f"{TEAM_MEMBERS}/{member_id}").json()["role_name"] == "maintainer"
    v1 = client.get("/api/v1/projects/team/members").json()
    assert {"kind": "group", "principal": "ops", "role": "maintainer",
            "group": {"id": group_id, "name": "ops", "group_type": 3}}.items() <= next(
        m for m in v1 if m["kind"] == "group").items()
    assert client.delete(f"{TEAM_MEMBERS}/{member_id}").status_code == 200
    assert all(m["entity_type"] == "u" for m in client.get(TEAM_MEMBERS).json())
    assert client.get(f"{TEAM_MEMBERS}/{member_id}").status_code == 404


def test_member_group_by_dn_or_name_creates_the_group_when_new(client):
    by_dn = client.post(TEAM_MEMBERS, json={"role_id": 3, "member_group": {
        "ldap_group_dn": "cn=readers,ou=groups,dc=example,dc=org"}})
    assert by_dn.status_code == 201, by_dn.text
    by_name = client.post(TEAM_MEMBERS, json={"role_id": 2, "member_group": {"group_name": "builders",
                                                                            "group_type": 3}})
    assert by_name.status_code == 201, by_name.text
    groups = {g["group_name"]: g for g in client.get(GROUPS).json()}
    assert groups["cn=readers,ou=groups,dc=example,dc=org"]["group_type"] == 1
    assert groups["builders"]["group_type"] == 3
    # named again (another case of the DN), the existing group is found, not created twice
    race = client.post("/api/v2.0/projects/race/members", json={"role_id": 3, "member_group": {
        "ldap_group_dn": "CN=Readers,OU=Groups,DC=example,DC=org", "group_type": 1}})
    assert race.status_code == 201, race.text
    assert len(client.get(GROUPS).json()) == 2
    members = {m["entity_name"]: m for m in client.get(TEAM_MEMBERS).json()}
    assert members["builders"]["entity_id"] == groups["builders"]["id"]

    for member_group, status in [({"id": 999999}, 404), ({"group_type": 1}, 400), ({"group_type": 9,
                                 "group_name": "x"}, 400), ({"ldap_group_dn": "nonsense"}, 400)]:
        response = client.post(TEAM_MEMBERS, json={"role_id": 2, "member_group": member_group})
        assert response.status_code == status, (member_group, response.text)
    assert client.post(TEAM_MEMBERS, json={"role_id": 9, "member_group": {"id": groups["builders"]["id"]}}) \
        .status_code == 400


def test_deleting_a_group_removes_its_memberships_first(client, services):
    group_id = create_group(client, {"group_name": "ops", "group_type": 3})
    for project in ("team", "race"):
        assert client.post(f"/api/v2.0/projects/{project}/members", json={
            "role_id": 2, "member_group": {"id": group_id}}).status_code == 201
    assert client.delete(f"{GROUPS}/{group_id}").status_code == 200
    assert services.access.group_memberships("ops") == []
    logs = client.get("/api/v2.0/audit-logs", params={"page_size": 100}).json()
    operations = [log["operation_description"] for log in logs]
    assert operations.count("project.member_removed") == 2 and "user_group.deleted" in operations


def test_a_project_admin_adds_groups_to_their_project_and_a_developer_cannot(client):
    create_user(client, "lead")
    create_user(client, "dev")
    grant(client, "team", "lead", "project_admin")
    grant(client, "team", "dev", "developer")
    body = {"role_id": 2, "member_group": {"group_name": "builders", "group_type": 3}}
    assert client.post(TEAM_MEMBERS, json=body, auth=("dev", PASSWORD)).status_code == 403
    assert client.post(TEAM_MEMBERS, json=body, auth=("lead", PASSWORD)).status_code == 201
    race = client.post("/api/v2.0/projects/race/members", json=body, auth=("lead", PASSWORD))
    assert race.status_code == 403


def test_a_groups_role_reaches_its_members_through_a_real_login(client, services):
    oidc_account(services, "olivia", ["builders"])
    olivia = ("olivia", CLI_SECRET)
    assert actions(client, olivia) == []
    group_id = create_group(client, {"group_name": "builders", "group_type": 3})
    added = client.post(TEAM_MEMBERS, json={"role_id": 2, "member_group": {"id": group_id}})
    assert actions(client, olivia) == ["pull", "push"]
    client.auth = olivia  # Basic with the CLI secret on /v2/, as docker and skopeo send it
    try:
        push_image(client, "team/app", "v1", seed="pushed through a group")
        assert client.get("/v2/team/app/tags/list").json()["tags"] == ["v1"]
    finally:
        client.auth = ("admin", ADMIN_PASSWORD)
    assert client.put(f"{TEAM_MEMBERS}/{id_of(added.headers['Location'])}", json={"role_id": 3}).status_code == 200
    assert actions(client, olivia) == ["pull"]
    services.admin.observe_groups("olivia", [], SETUP)  # her next login names no group
    services.projections.catch_up()
    assert actions(client, olivia, "repository:team/app:pull") == []
    services.admin.observe_groups("olivia", ["builders"], SETUP)
    services.projections.catch_up()
    assert client.delete(f"{GROUPS}/{group_id}").status_code == 200
    assert actions(client, olivia, "repository:team/app:pull") == []


def test_an_ldap_groups_dn_matches_the_dn_observed_at_login(client, services):
    services.admin.onboard_user(ExternalIdentity("lena", LDAP, "uid=lena,ou=people,dc=example,dc=org"), SETUP)
    services.admin.observe_groups("lena", ["cn=devs,ou=groups,dc=example,dc=org"], SETUP)
    services.projections.catch_up()
    assert client.post(TEAM_MEMBERS, json={"role_id": 4, "member_group": {
        "ldap_group_dn": "CN=Devs, OU=Groups, DC=example, DC=org"}}).status_code == 201
    lena = services.access.user_principal(services.access.user("lena"))
    assert [g.role.value for g in lena.grants["team"]] == ["maintainer"]
    group = services.access.group(LDAP_GROUP, "cn=devs,ou=groups,dc=example,dc=org")
    assert group is not None and group.ldap_dn == "CN=Devs, OU=Groups, DC=example, DC=org"


@pytest.mark.anyio
@pytest.mark.filterwarnings("ignore::DeprecationWarning:harborapi")
async def test_harborapi_speaks_to_the_groups_api(harbor, client):
    location = await harbor.create_usergroup(UserGroup(group_name="ops", group_type=3))
    group_id = id_of(location)
    assert (await harbor.get_usergroup(group_id)).group_name == "ops"
    assert [g.id for g in await harbor.get_usergroups(group_name="op")] == [group_id]
    assert [g.group_type for g in await harbor.search_usergroups("op")] == [3]
    with pytest.raises(Conflict):
        await harbor.create_usergroup(UserGroup(group_name="ops", group_type=3))
    await harbor.add_project_member("team", ProjectMember(role_id=2, member_group=UserGroup(id=group_id)))
    await harbor.add_project_member_group("race", "cn=devs,ou=groups,dc=example,dc=org", 3)
    members = await harbor.get_project_members("team")
    assert {(m.entity_type, m.entity_name, m.entity_id) for m in members} >= {("g", "ops", group_id)}
    assert [(m.entity_type, m.role_id) for m in await harbor.get_project_members("race")
            if m.entity_type == "g"] == [("g", 3)]
    await harbor.delete_usergroup(group_id)
    assert [g.group_name for g in await harbor.get_usergroups()] == ["cn=devs,ou=groups,dc=example,dc=org"]
