"""Accounts of a directory or an OpenID Connect provider: onboarding, the groups seen at each
login recorded only when they change, group memberships in effective permissions, admin groups."""

from __future__ import annotations

from domain.context import RequestContext
from domain.errors import ConflictError, NotFoundError
from domain.identity import LDAP, LDAP_GROUP, OIDC, OIDC_GROUP, ExternalIdentity, group_key
from domain.permissions import Role, repository_actions

CTX = RequestContext("admin", "test")
DEVS_DN = "cn=devs,ou=groups,dc=example,dc=org"


def onboard(services, name="alice", source=LDAP, groups=()):
    identity = ExternalIdentity(name, source, f"uid={name},ou=people,dc=example,dc=org", f"{name}@example.org",
                                name.title(), tuple(groups))
    services.admin.onboard_user(identity, RequestContext(name, "login"))
    services.admin.observe_groups(name, list(groups), RequestContext(name, "login"))
    services.projections.catch_up()
    return services.access.user(name)


def observed_events(services, name):
    return [n for n in services.registry.recorder.select_notifications(start=None, limit=10_000)
            if n.topic.endswith("User.GroupsObserved") and name.encode() in n.state]


def test_an_onboarded_account_has_no_password_and_keeps_where_it_came_from(services):
    row = onboard(services, groups=[group_key(LDAP_GROUP, DEVS_DN)])
    assert (row.auth_source, row.password_hash, row.realname) == (LDAP, "", "Alice")
    assert row.external_id == "uid=alice,ou=people,dc=example,dc=org"
    assert services.access.user_groups("alice") == [DEVS_DN]


def test_groups_are_recorded_only_when_they_change(services):
    onboard(services, groups=[DEVS_DN])
    services.admin.observe_groups("alice", [DEVS_DN], CTX)
    assert len(observed_events(services, "alice")) == 1
    services.admin.observe_groups("alice", [], CTX)
    services.projections.catch_up()
    assert len(observed_events(services, "alice")) == 2 and services.access.user_groups("alice") == []


def test_a_group_membership_grants_its_role_to_the_users_seen_in_it(services):
    row = onboard(services, groups=[group_key(LDAP_GROUP, "CN=Devs, OU=groups,DC=example,DC=org")])
    key, _ = services.admin.create_group(LDAP_GROUP, "devs", DEVS_DN, CTX)
    services.admin.create_project("idteam", False, CTX)
    services.admin.set_group_member("idteam", LDAP_GROUP, key, Role.DEVELOPER, CTX)
    services.projections.catch_up()
    principal = services.access.user_principal(row)
    assert repository_actions(principal, "idteam", False, "idteam/app") == {"pull", "push"}
    services.admin.observe_groups("alice", [], CTX)  # the directory dropped her from the group
    services.projections.catch_up()
    assert repository_actions(services.access.user_principal(row), "idteam", False, "idteam/app") == set()


def test_the_highest_of_own_and_group_roles_counts(services):
    row = onboard(services, groups=["platform"], source=OIDC)
    key, _ = services.admin.create_group(OIDC_GROUP, "platform", "", CTX)
    services.admin.create_project("idteam", False, CTX)
    services.admin.set_group_member("idteam", OIDC_GROUP, key, Role.MAINTAINER, CTX)
    services.admin.set_member("idteam", "alice", Role.GUEST, None, CTX)
    services.projections.catch_up()
    assert "delete" in repository_actions(services.access.user_principal(row), "idteam", False, "idteam/app")


def test_members_of_the_configured_admin_group_are_system_administrators(services):
    row = onboard(services, groups=[group_key(LDAP_GROUP, "cn=admins,ou=groups,dc=example,dc=org")])
    assert not services.access.user_principal(row).system_admin
    services.configurations.update({"ldap_group_admin_dn": "CN=admins,ou=groups,dc=example,dc=org"}, CTX)
    services.projections.catch_up()
    assert services.access.user_principal(row).system_admin


def test_groups_are_created_once_and_need_their_identifier(services):
    services.admin.create_group(OIDC_GROUP, "platform", "", CTX)
    try:
        services.admin.create_group(OIDC_GROUP, "platform", "", CTX)
        raise AssertionError("a second group of the same name was created")
    except ConflictError:
        pass
    for bad in [(2, "x", ""), (LDAP_GROUP, "x", ""), (OIDC_GROUP, "", "")]:
        try:
            services.admin.create_group(*bad, CTX)
            raise AssertionError(f"{bad} was accepted")
        except Exception as error:
            assert type(error).__name__ == "InvalidInputError"
    try:
        services.admin.set_group_member("library", OIDC_GROUP, "nobody", Role.GUEST, CTX)
        raise AssertionError("a member group that does not exist was added")
    except NotFoundError:
        pass
