"""adapters/ldap_directory.py against a real OpenLDAP (infra/services/slapd.py): search-then-bind,
hostile usernames, TLS (ldaps and StartTLS, verified against the test CA), groups, scopes, the
directory down, and the outbound guard."""

from __future__ import annotations

import socket

import pytest
from ldap3 import MODIFY_ADD

from adapters.ldap_directory import DirectoryGroup, LdapConfig, LdapDirectory
from adapters.outbound import OutboundGuard
from domain.identity import DirectoryUnavailableError
from infra.services.slapd import GROUPS_DN, MANAGE_DSA_IT, PEOPLE_DN, group_dn
from tests.support.outbound import LOOPBACK_ALLOWED, Trap


def config(slapd, **overrides) -> LdapConfig:
    values = dict(url=slapd.url, base_dn=slapd.base_dn, search_dn=slapd.admin_dn,
                  search_password=slapd.admin_password, filter="(objectClass=inetOrgPerson)", uid="uid",
                  scope=2, timeout=5, ca_file=str(slapd.ca_file), group_base_dn=GROUPS_DN,
                  group_search_filter="(objectClass=groupOfNames)")
    return LdapConfig(**{**values, **overrides})


def directory(slapd, guard: OutboundGuard = LOOPBACK_ALLOWED, **overrides) -> LdapDirectory:
    return LdapDirectory(config(slapd, **overrides), guard)


def test_search_then_bind_gives_the_person_and_their_groups(slapd):
    alice = directory(slapd).authenticate("alice", slapd.password("alice"))

    assert alice is not None
    assert (alice.username, alice.auth_source, alice.external_id) == ("alice", "ldap", slapd.user_dn("alice"))
    assert (alice.email, alice.realname) == ("alice@example.org", "Alice Liddell")
    assert alice.groups == (group_dn("admins").lower(), group_dn("devs").lower())


def test_a_uid_typed_in_another_case_is_the_directory_s_uid(slapd):
    alice = directory(slapd).authenticate("ALICE", slapd.password("alice"))

    assert alice is not None and alice.username == "alice"


def test_any_of_several_uid_values_signs_in_to_the_one_account(slapd):
    with slapd.admin_connection() as admin:
        assert admin.modify(slapd.user_dn("bob"), {"uid": [(MODIFY_ADD, ["bbuilder"])]}), admin.result
    ldap = directory(slapd)

    assert ldap.authenticate("bbuilder", slapd.password("bob")).username == "bob"
    assert ldap.authenticate("Bob", slapd.password("bob")).username == "bob"


def test_a_wrong_password_or_an_unknown_user_is_refused(slapd):
    ldap = directory(slapd)

    assert ldap.authenticate("alice", "not-her-password") is None
    assert ldap.authenticate("alice", slapd.password("bob")) is None
    assert ldap.authenticate("nobody", "whatever") is None


def test_a_filter_injection_finds_nobody(slapd):
    ldap = directory(slapd)

    for hostile in ("*)(uid=*", "*", "alice)(|(uid=*", "a*", "alice\x00"):
        assert ldap.authenticate(hostile, slapd.password("alice")) is None, hostile
        assert ldap.user(hostile) is None, hostile
    assert ldap.search_users("*)(uid=*") == []
    assert ldap.search_groups(name="*)(cn=*") == []


def test_an_empty_password_is_refused_without_an_anonymous_bind(slapd):
    ldap = directory(slapd)

    assert ldap.authenticate("alice", "") is None
    # The directory itself would accept an unauthenticated bind with that DN: ldap3 refuses
    # it, and the adapter never asks.
    slapd.stop()
    assert ldap.authenticate("alice", "") is None  # answered without connecting


def test_a_changed_password_is_the_one_that_binds(slapd):
    ldap = directory(slapd)
    assert ldap.authenticate("erin", "erin-pass-1") is not None

    slapd.set_password("erin", "erin-pass-2")

    assert ldap.authenticate("erin", "erin-pass-1") is None
    assert ldap.authenticate("erin", "erin-pass-2") is not None


def test_ldaps_verified_against_the_test_ca(slapd):
    ldap = directory(slapd, url=slapd.ldaps_url)

    assert ldap.authenticate("bob", slapd.password("bob")).groups == (group_dn("ops").lower(),)


def test_start_tls_verified_against_the_test_ca(slapd):
    ldap = directory(slapd, start_tls=True)

    assert ldap.authenticate("bob", slapd.password("bob")) is not None


@pytest.mark.parametrize("over", ["ldaps", "start_tls"])
def test_a_certificate_of_another_ca_is_refused(slapd, over):
    tls = dict(url=slapd.ldaps_url) if over == "ldaps" else dict(start_tls=True)
    ldap = directory(slapd, ca_file=str(slapd.untrusted_ca_file), **tls)

    with pytest.raises(DirectoryUnavailableError, match="certificate verify failed"):
        ldap.authenticate("bob", slapd.password("bob"))
    # Not verifying is the operator's choice (ldap_verify_cert false).
    unverified = directory(slapd, ca_file=str(slapd.untrusted_ca_file), verify_cert=False, **tls)
    assert unverified.authenticate("bob", slapd.password("bob")) is not None


def test_tls_checks_the_configured_host_name(slapd):
    # The certificate names 127.0.0.1 and localhost: a name of this machine that is neither
    # reaches the same server, whose certificate then does not match.
    other_name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(other_name, None)}
    except socket.gaierror:
        pytest.skip("this machine's name does not resolve")
    if "127.0.0.1" not in addresses and not any(a.startswith("127.") for a in addresses):
        pytest.skip("this machine's name does not resolve to loopback")
    ldap = directory(slapd, url=f"ldaps://{other_name}:{slapd.ldaps_port}",
                     guard=OutboundGuard(allow=["127.0.0.0/8", "::1/128"] + sorted(addresses)))

    with pytest.raises(DirectoryUnavailableError, match="doesn't match"):
        ldap.authenticate("bob", slapd.password("bob"))


def test_groups_by_member_search_without_a_membership_attribute(slapd):
    ldap = directory(slapd, group_membership_attribute="")

    assert ldap.authenticate("dave", slapd.password("dave")).groups == (group_dn("devs").lower(),)
    slapd.remove_member("devs", "dave")
    assert ldap.authenticate("dave", slapd.password("dave")).groups == ()


def test_groups_by_the_member_of_attribute_when_the_directory_keeps_one(slapd_memberof):
    slapd = slapd_memberof
    # No group base: the groups can only come from the user's memberOf.
    ldap = directory(slapd, group_base_dn="", group_membership_attribute="memberof")  # as Harbor writes it

    assert ldap.authenticate("alice", slapd.password("alice")).groups == (
        group_dn("admins").lower(), group_dn("devs").lower())
    slapd.remove_member("devs", "alice")
    assert ldap.authenticate("alice", slapd.password("alice")).groups == (group_dn("admins").lower(),)


def test_a_user_in_a_nested_ou_is_found_by_a_subtree_search_only(slapd):
    subtree = directory(slapd, base_dn=PEOPLE_DN, scope=2)
    onelevel = directory(slapd, base_dn=PEOPLE_DN, scope=1)

    assert subtree.authenticate("dave", slapd.password("dave")).external_id == slapd.user_dn("dave")
    assert onelevel.authenticate("dave", slapd.password("dave")) is None
    assert onelevel.authenticate("carol", slapd.password("carol")) is not None
    assert sorted(u.username for u in onelevel.search_users()) == ["alice", "bob", "carol", "erin"]


def test_an_anonymous_search_account_works_where_the_directory_allows_reads(slapd):
    ldap = directory(slapd, search_dn="", search_password="")

    assert ldap.authenticate("carol", slapd.password("carol")) is not None


def test_ping(slapd):
    directory(slapd).ping()
    directory(slapd, url=slapd.ldaps_url).ping()

    with pytest.raises(DirectoryUnavailableError, match="search account"):
        directory(slapd, search_password="wrong").ping()
    with pytest.raises(DirectoryUnavailableError, match="without ldap_search_password"):
        directory(slapd, search_password="").ping()
    with pytest.raises(DirectoryUnavailableError, match="base DN"):
        directory(slapd, base_dn="dc=elsewhere,dc=org").ping()
    with pytest.raises(DirectoryUnavailableError, match="search settings are not valid"):
        directory(slapd, filter="(objectClass=person").authenticate("alice", slapd.password("alice"))
    with pytest.raises(DirectoryUnavailableError, match="CA file"):
        directory(slapd, url=slapd.ldaps_url, ca_file="/nonexistent/ca.pem").ping()
    with pytest.raises(DirectoryUnavailableError, match="ldap_url"):
        directory(slapd, url="").ping()
    with pytest.raises(DirectoryUnavailableError, match="ldap://"):
        directory(slapd, url="http://127.0.0.1:1").ping()


def test_user_and_group_search(slapd):
    ldap = directory(slapd)

    found = {user.username: user for user in ldap.search_users()}
    assert sorted(found) == ["alice", "bob", "carol", "dave", "erin"]
    assert found["dave"].dn == slapd.user_dn("dave") and found["dave"].email == "dave@example.org"
    assert [user.username for user in ldap.search_users("bob")] == ["bob"]
    assert ldap.user("carol").realname == "Carol Danvers"
    assert ldap.user("nobody") is None

    assert sorted(group.name for group in ldap.search_groups()) == ["admins", "devs", "ops"]
    assert ldap.search_groups(name="devs") == [DirectoryGroup("devs", group_dn("devs"))]
    assert ldap.search_groups(dn=group_dn("ops")) == [DirectoryGroup("ops", group_dn("ops"))]
    assert ldap.search_groups(dn=f"cn=nothing,{GROUPS_DN}") == []
    assert ldap.search_groups(dn=slapd.user_dn("alice")) == []  # an entry, not a group


def test_the_directory_down_is_unavailable_not_a_wrong_password(slapd):
    ldap = directory(slapd, timeout=2)
    slapd.stop()

    with pytest.raises(DirectoryUnavailableError, match="cannot be reached"):
        ldap.authenticate("alice", slapd.password("alice"))
    with pytest.raises(DirectoryUnavailableError):
        ldap.ping()

    slapd.start()
    assert ldap.authenticate("alice", slapd.password("alice")) is not None


def test_a_directory_that_accepts_and_never_answers_times_out(slapd):
    silent = socket.create_server(("127.0.0.1", 0))  # the kernel accepts; nothing ever answers
    try:
        ldap = directory(slapd, url=f"ldap://127.0.0.1:{silent.getsockname()[1]}", timeout=1)
        with pytest.raises(DirectoryUnavailableError):
            ldap.authenticate("alice", slapd.password("alice"))
    finally:
        silent.close()


def test_the_outbound_guard_refuses_loopback_unless_allowed(slapd):
    ldap = directory(slapd, guard=OutboundGuard())

    with pytest.raises(DirectoryUnavailableError, match="loopback.*outbound_allow"):
        ldap.authenticate("alice", slapd.password("alice"))
    with pytest.raises(DirectoryUnavailableError, match="refused"):
        ldap.ping()


def test_config_from_configuration_keys():
    values = {"ldap_url": "ldaps://dc.example.org", "ldap_scope": 1, "ldap_search_password": "s",
              "ldap_start_tls": True, "auth_mode": "ldap_auth", "ldap_unknown": "x"}

    built = LdapConfig.from_values(values)

    assert (built.url, built.scope, built.search_password, built.start_tls) == ("ldaps://dc.example.org", 1, "s", True)
    assert built.uid == "uid" and built.group_membership_attribute == "memberof"
    assert built.with_values({"ldap_url": "ldap://other"}).url == "ldap://other"
    assert built.with_values({"ldap_url": "ldap://other"}).scope == 1


def test_config_from_an_effective_configuration():
    class Effective:
        ldap_url = "ldap://dc.example.org"
        ldap_search_password = "clear"
        ldap_group_search_scope = 1

    built = LdapConfig.from_configuration(Effective())

    assert (built.url, built.search_password, built.group_search_scope) == ("ldap://dc.example.org", "clear", 1)
    assert built.timeout == 5 and built.verify_cert is True


def test_referrals_are_not_followed(slapd):
    """A referral names another host: following it would bypass the guard (and ldap3 would
    bind there with the same credentials)."""
    trap = Trap()
    try:
        with slapd.admin_connection() as admin:
            added = admin.add(f"ou=elsewhere,{PEOPLE_DN}", ["referral", "extensibleObject"],
                              {"ou": "elsewhere", "ref": f"ldap://127.0.0.1:{trap.port}/ou=elsewhere,{PEOPLE_DN}"},
                              controls=[MANAGE_DSA_IT])
            assert added, admin.result

        referred = directory(slapd, base_dn=f"ou=elsewhere,{PEOPLE_DN}")

        with pytest.raises(DirectoryUnavailableError, match="referral"):
            referred.authenticate("alice", slapd.password("alice"))
        assert trap.connections() == 0
        # Searches that pass by it (a continuation reference) still find the users.
        assert directory(slapd).authenticate("alice", slapd.password("alice")) is not None
    finally:
        trap.close()
