"""Who could push to a project at a moment, when the grant came through a group: the answer is
what Portlog saw of the group at its members' logins (User.GroupsObserved), from the log."""

from __future__ import annotations

from domain.context import RequestContext
from domain.identity import LDAP, LDAP_GROUP, ExternalIdentity, group_key
from domain.permissions import Role

CTX = RequestContext("admin", "test")
DEVS = "cn=devs,ou=groups,dc=example,dc=org"


def who_could_push(client, as_of: int) -> set[tuple[str, str]]:
    answer = client.get("/api/v1/projects/grouped/permissions", params={"action": "push", "as_of": as_of})
    assert answer.status_code == 200, answer.text
    return {(entry["principal"], entry["via"]) for entry in answer.json() if entry["kind"] == "user"}


def test_who_could_push_through_a_group_follows_the_logins(client, services):
    services.admin.create_project("grouped", False, CTX)
    key, _ = services.admin.create_group(LDAP_GROUP, "devs", DEVS, CTX)
    services.admin.set_group_member("grouped", LDAP_GROUP, key, Role.DEVELOPER, CTX)
    identity = ExternalIdentity("carol", LDAP, "uid=carol,ou=people,dc=example,dc=org")
    services.admin.onboard_user(identity, CTX)
    before_login = services.projections.catch_up()
    services.admin.observe_groups("carol", [group_key(LDAP_GROUP, DEVS)], RequestContext("carol", "login"))
    in_group = services.projections.catch_up()
    services.admin.observe_groups("carol", [], RequestContext("carol", "login"))
    after_removal = services.projections.catch_up()

    via = f"role developer of group {key}"
    assert ("carol", via) not in who_could_push(client, before_login)
    assert ("carol", via) in who_could_push(client, in_group)
    assert ("carol", via) not in who_could_push(client, after_removal)
    services.projections.rebuild()
    assert ("carol", via) in who_could_push(client, in_group)  # the same answer from a rebuilt read model
