"""An LDAP user with skopeo, on a live `portlog serve` configured for a real OpenLDAP: logs in
with directory credentials, pushes to a project where only their LDAP group is a member, and
loses push at the next login once removed from the group in the directory."""

from __future__ import annotations

import subprocess

import pytest

from infra.services.slapd import GROUPS_DN, group_dn
from tests.support.images import build_image_layout

pytestmark = pytest.mark.e2e

PROJECT = "ldapteam"


def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return build_image_layout(tmp_path_factory.mktemp("ldap-image") / "layout", "1.0", text="ldap")


@pytest.fixture
def ldap_server(live_server, slapd):
    """The live server in ldap_auth mode against the test directory (StartTLS, its CA), with a
    project whose only member is the LDAP group devs (developer)."""
    with live_server.client() as client:
        configured = client.put("/api/v2.0/configurations", json={
            "auth_mode": "ldap_auth", "ldap_url": slapd.url, "ldap_start_tls": True,
            "ldap_ca_file": str(slapd.ca_file), "ldap_base_dn": slapd.base_dn,
            "ldap_search_dn": slapd.admin_dn, "ldap_search_password": slapd.admin_password,
            "ldap_filter": "(objectClass=inetOrgPerson)", "ldap_uid": "uid", "ldap_scope": 2,
            "ldap_group_base_dn": GROUPS_DN, "ldap_group_search_filter": "(objectClass=groupOfNames)"})
        assert configured.status_code == 200, configured.text
        created = client.post("/api/v2.0/projects", json={"project_name": PROJECT, "metadata": {"public": "false"}})
        assert created.status_code in (201, 409), created.text
        member = client.post(f"/api/v2.0/projects/{PROJECT}/members", json={
            "role_id": 2, "member_group": {"group_name": "devs", "group_type": 1, "ldap_group_dn": group_dn("devs")}})
        assert member.status_code in (201, 409), member.text
        members = client.get(f"/api/v2.0/projects/{PROJECT}/members").json()
        assert {(m["entity_type"], m["entity_name"]) for m in members} == {("u", "admin"), ("g", "devs")}, members
    return live_server


def test_an_ldap_user_pushes_through_their_group_until_removed_from_it(ldap_server, slapd, image, tmp_path):
    authfile = str(tmp_path / "auth.json")
    login = skopeo("login", "--tls-verify=false", "--authfile", authfile, "-u", "dave",
                   "-p", slapd.password("dave"), ldap_server.host)
    assert login.returncode == 0, login.stderr

    def push(tag: str) -> subprocess.CompletedProcess[str]:
        return skopeo("copy", "--dest-tls-verify=false", "--dest-authfile", authfile, f"oci:{image.layout}:1.0",
                      f"docker://{ldap_server.host}/{PROJECT}/app:{tag}")

    pushed = push("1.0")
    assert pushed.returncode == 0, pushed.stderr
    inspected = skopeo("inspect", "--tls-verify=false", "--authfile", authfile,
                       f"docker://{ldap_server.host}/{PROJECT}/app:1.0")
    assert inspected.returncode == 0 and image.manifest_digest in inspected.stdout, inspected.stderr

    slapd.remove_member("devs", "dave")

    refused = push("2.0")
    assert refused.returncode != 0
    assert any(word in refused.stderr.lower() for word in ("403", "denied", "unauthorized")), refused.stderr
    # Still a member, alice pushes; carol, in no group, may not.
    alice = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", f"alice:{slapd.password('alice')}",
                   f"oci:{image.layout}:1.0", f"docker://{ldap_server.host}/{PROJECT}/app:3.0")
    assert alice.returncode == 0, alice.stderr
    carol = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", f"carol:{slapd.password('carol')}",
                   f"oci:{image.layout}:1.0", f"docker://{ldap_server.host}/{PROJECT}/app:4.0")
    assert carol.returncode != 0
    with ldap_server.client() as client:
        artifacts = client.get(f"/api/v2.0/projects/{PROJECT}/repositories/app/artifacts",
                               params={"with_tag": "true"}).json()
        assert sorted(t["name"] for a in artifacts for t in a.get("tags") or []) == ["1.0", "3.0"]
        observed = client.get("/api/v1/audit-logs", params={"operation": "user.groups_observed", "limit": 100}).json()
        assert {"dave", "alice"} <= {entry["resource"] for entry in observed}
