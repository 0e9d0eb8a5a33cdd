"""The identity pages of the web UI (issue 20), in Chromium against a live `portlog serve`: the
login page's OIDC button, users (create, administrator on and off, password reset, delete), user
groups and group members of a project, the configuration page (sources, a pinned key, write-only
secrets, the LDAP test, the 409 of an authentication mode change) and the OIDC user's CLI secret.
Every action is checked through the API afterwards."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

from adapters.passwords import Argon2SecretHasher
from config.bootstrap import bootstrap
from config.settings import Settings
from domain.context import RequestContext
from domain.identity import LDAP, OIDC, ExternalIdentity
from tests.support.browser import shot, sign_in
from tests.support.server import ADMIN_PASSWORD, LiveServer, start_server
from tests.ui.test_accessibility import UNLABELLED

NARROW = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
UNREACHABLE = "ldap://127.0.0.1:9"  # the discard port: nothing answers LDAP there
DEVS_DN = "cn=devs,ou=groups,dc=example,dc=org"
SOURCES = {"db": "Local", "ldap": "LDAP", "oidc": "OIDC"}
UNTRANSLATED = re.compile(r"\b(?:users|groups|configuration|profile|project|login|common)\.[a-z_0-9]+\b")


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory) -> LiveServer:
    """`portlog serve` with one key pinned by the operator (shown disabled, naming its variable)."""
    root = tmp_path_factory.mktemp("ui-identity")
    server = start_server(root / "data", root / "serve.log", extra_env={"PORTLOG_LDAP_TIMEOUT": "7"},
                          projects=("team",))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def beside(ui_server):
    """The services of a second instance on the server's own data: what a directory or provider
    login would record (an onboarded OIDC account), written as the server itself would."""
    settings = Settings(data_dir=ui_server.data_dir, admin_password=ADMIN_PASSWORD, outbound_allow=("127.0.0.1/32",))
    services = bootstrap(settings, hasher=Argon2SecretHasher(fast=True))
    yield services
    services.close()


def api(ui_server):
    return ui_server.client()


def users_by_name(ui_server) -> dict[str, dict]:
    with api(ui_server) as client:
        return {u["username"]: u for u in client.get("/api/v2.0/users", params={"page_size": 100}).json()}


def only_admin_left(ui_server) -> None:
    """The authentication mode changes only while admin is the only user."""
    with api(ui_server) as client:
        for user in client.get("/api/v2.0/users", params={"page_size": 100}).json():
            if user["username"] != "admin":
                assert client.delete(f"/api/v2.0/users/{user['user_id']}").status_code == 200


def set_config(ui_server, **values) -> None:
    with api(ui_server) as client:
        answer = client.put("/api/v2.0/configurations", json=values)
        assert answer.status_code == 200, answer.text


def test_the_login_page_offers_the_oidc_provider_only_in_oidc_mode(page: Page, ui_server):
    only_admin_left(ui_server)
    page.goto("/ui/login")
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in to Portlog")
    expect(page.get_by_role("link", name=re.compile("Log in via"))).to_have_count(0)
    set_config(ui_server, auth_mode="oidc_auth", oidc_name="Corp SSO")
    try:
        page.goto("/ui/login")
        button = page.get_by_role("link", name="Log in via Corp SSO")
        expect(button).to_be_visible()
        expect(button).to_have_attribute("href", "/c/oidc/login")
        expect(page.get_by_label("Username")).to_be_visible()  # the local form stays, for admin
        assert page.evaluate(UNLABELLED) == []
        shot(page, "identity-login-oidc")
        page.get_by_label("Language").select_option("zh-CN")
        expect(page.get_by_role("link", name="通过 Corp SSO 登录")).to_be_visible()
        page.get_by_label("语言").select_option("en")
        # The administrator still logs in with the local form; accounts come from the provider.
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(ADMIN_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url("/ui/projects")
        page.goto("/ui/users")
        expect(page.get_by_role("heading", level=1)).to_have_text("Users")
        expect(page.get_by_text("Authentication is set to OIDC")).to_be_visible()
        expect(page.get_by_role("button", name="New user")).to_have_count(0)
    finally:
        set_config(ui_server, auth_mode="db_auth")
    page.goto("/ui/login")
    expect(page.get_by_label("Username")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("Log in via"))).to_have_count(0)


def test_users_are_created_made_administrators_reset_and_deleted(admin_page: Page, ui_server, beside):
    page = admin_page
    page.goto("/ui/projects")
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Users").click()
    expect(page).to_have_url("/ui/users")
    expect(page.get_by_role("table").locator("caption")).to_have_text("1 user")

    page.get_by_role("button", name="New user").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Username").fill("dana")
    dialog.get_by_label("Email").fill("dana@example.org")
    dialog.get_by_label("Password", exact=True).fill("Dana-Pass-1")
    dialog.get_by_label("Password again").fill("Dana-Pass-2")
    dialog.get_by_role("button", name="Create").click()
    expect(dialog).to_be_visible()  # the two passwords differ: the browser refuses the form
    dialog.get_by_label("Password again").fill("Dana-Pass-1")
    dialog.get_by_role("button", name="Create").click()
    expect(page.locator("#notices")).to_contain_text("Created user dana")
    dana = users_by_name(ui_server)["dana"]
    assert dana["email"] == "dana@example.org" and dana["sysadmin_flag"] is False
    row = page.get_by_role("row").filter(has_text="dana@example.org")
    expect(row.get_by_role("cell", name="Local", exact=True)).to_be_visible()

    row.get_by_role("button", name="Make dana a system administrator").click()
    expect(page.locator("#notices")).to_contain_text("dana is now a system administrator")
    assert users_by_name(ui_server)["dana"]["sysadmin_flag"] is True
    row = page.get_by_role("row").filter(has_text="dana@example.org")
    expect(row.get_by_role("cell", name="Administrator", exact=True)).to_be_visible()
    row.get_by_role("button", name="Remove system administration from dana").click()
    expect(page.locator("#notices")).to_contain_text("dana is no longer a system administrator")
    assert users_by_name(ui_server)["dana"]["sysadmin_flag"] is False

    row.get_by_role("button", name="Reset the password of dana").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Password", exact=True).fill("Dana-Newer-2")
    dialog.get_by_label("Password again").fill("Dana-Newer-2")
    dialog.get_by_role("button", name="Reset password").click()
    expect(page.locator("#notices")).to_contain_text("The password of dana was reset")
    with api(ui_server) as client:
        assert client.get("/api/v2.0/users/current", auth=("dana", "Dana-Newer-2")).status_code == 200
        assert client.get("/api/v2.0/users/current", auth=("dana", "Dana-Pass-1")).status_code == 401

    # Search, the administrator's own row (no self-demotion, no self-deletion), a narrow screen.
    page.get_by_label("Username").fill("dan")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url("/ui/users?name=dan")
    expect(page.get_by_role("table").locator("caption")).to_have_text("1 user")
    page.goto("/ui/users")
    admin_row = page.get_by_role("row").filter(has=page.get_by_text("you", exact=True))
    expect(admin_row.get_by_role("button", name=re.compile("Delete"))).to_have_count(0)
    assert page.evaluate(UNLABELLED) == []
    shot(page, "identity-users")
    page.set_viewport_size(NARROW)
    shot(page, "identity-users-narrow")
    assert page.evaluate("document.documentElement.scrollWidth") <= NARROW["width"]
    page.set_viewport_size(DESKTOP)

    page.get_by_role("button", name="Delete user dana").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.locator("#notices")).to_contain_text("Deleted dana")
    assert "dana" not in users_by_name(ui_server)
    expect(page.get_by_role("table").locator("caption")).to_have_text("1 user")

    # A directory account: its source shown (as the API tells it), no password of Portlog's to reset.
    beside.admin.onboard_user(ExternalIdentity("lee", LDAP, "uid=lee,ou=people,dc=example,dc=org"),
                              RequestContext("admin", "test-setup"))
    beside.projections.catch_up()
    page.reload()
    row = page.get_by_role("row").filter(has_text="lee")
    expect(row.get_by_role("cell", name=SOURCES[users_by_name(ui_server)["lee"]["auth_source"]],
                           exact=True)).to_be_visible()
    expect(row.get_by_role("button", name="Reset the password of lee")).to_have_count(0)


def test_the_users_page_in_chinese_and_refused_to_others(page: Page, ui_server):
    with api(ui_server) as client:
        client.post("/api/v2.0/users", json={"username": "erin", "password": "Erin-Pass-1", "email": ""})
    sign_in(page, "erin", "Erin-Pass-1")
    page.goto("/ui/users")
    expect(page.get_by_role("alert")).to_have_text("Only system administrators manage users.")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Users")).to_have_count(0)
    page.context.request.get("/c/log_out")
    sign_in(page, *ui_server.admin_auth)
    page.goto("/ui/users")
    page.get_by_label("Language").select_option("zh-CN")
    expect(page.get_by_role("heading", level=1)).to_have_text("用户管理")
    expect(page.get_by_role("columnheader", name="认证来源")).to_be_visible()
    expect(page.get_by_role("button", name="将 erin 设为系统管理员")).to_be_visible()
    assert not UNTRANSLATED.search(page.locator("body").inner_text())
    shot(page, "identity-users-zh-CN")
    page.get_by_label("语言").select_option("en")


def test_the_configuration_page_saves_changes_and_says_where_values_come_from(admin_page: Page, ui_server, beside,
                                                                             slapd):
    page = admin_page
    only_admin_left(ui_server)  # the form changes the authentication mode too
    set_config(ui_server, auth_mode="db_auth", ldap_search_password="Bind-S3cret-value")
    page.goto("/ui/configuration")
    expect(page.get_by_role("heading", level=1)).to_have_text("Configuration")
    mode = page.get_by_label("Authentication mode")
    expect(mode).to_have_value("db_auth")
    expect(page.get_by_label("LDAP URL")).to_be_hidden()
    mode.select_option("ldap_auth")
    timeout = page.get_by_label("Timeout (seconds)")
    expect(timeout).to_be_disabled()
    expect(timeout).to_have_value("7")
    expect(page.get_by_text("Set by PORTLOG_LDAP_TIMEOUT: change it there")).to_be_visible()
    expect(page.get_by_label("UID attribute")).to_have_accessible_description(re.compile("Default value"))
    # The stored secret is never in the page: an empty field that says one is set.
    secret = page.get_by_label("Search password")
    expect(secret).to_have_value("")
    expect(secret).to_have_attribute("placeholder", "unchanged")
    assert "Bind-S3cret-value" not in page.content()
    assert page.evaluate(UNLABELLED) == []

    # Test the connection with the form's values: the stored password is not sent back.
    page.get_by_label("LDAP URL").fill(UNREACHABLE)
    page.get_by_label("Base DN", exact=True).fill("dc=example,dc=org")
    with page.expect_request("**/api/v2.0/ldap/ping") as pinged:
        page.get_by_role("button", name="Test LDAP connection").click()
    sent = pinged.value.post_data_json
    assert sent["ldap_url"] == UNREACHABLE and sent["ldap_base_dn"] == "dc=example,dc=org"
    assert sent["ldap_timeout"] == 7 and "ldap_search_password" not in sent
    expect(page.get_by_role("alert")).to_contain_text("LDAP connection failed")
    shot(page, "identity-configuration-ldap")
    # and a directory that answers, with the bind password typed
    page.get_by_label("LDAP URL").fill(slapd.url)
    page.get_by_label("Search DN").fill(slapd.admin_dn)
    secret.fill(slapd.admin_password)
    page.get_by_role("button", name="Test LDAP connection").click()
    expect(page.get_by_text("Connected to the LDAP server.")).to_be_visible()
    page.get_by_label("LDAP URL").fill(UNREACHABLE)

    # Save: only the keys changed, the secret only because it was typed.
    page.get_by_label("Search DN").fill("cn=portlog,dc=example,dc=org")
    secret.fill("New-Bind-S3cret")
    page.get_by_label("Search scope", exact=True).select_option("1")
    page.get_by_label("Who can create projects").select_option("adminonly")
    page.get_by_label("Robot account lifetime (days)").fill("45")
    with page.expect_request(lambda r: r.url.endswith("/api/v2.0/configurations") and r.method == "PUT") as saved:
        page.get_by_role("button", name="Save").click()
    assert json.loads(saved.value.post_data) == {
        "auth_mode": "ldap_auth", "ldap_url": UNREACHABLE, "ldap_search_dn": "cn=portlog,dc=example,dc=org",
        "ldap_search_password": "New-Bind-S3cret", "ldap_base_dn": "dc=example,dc=org", "ldap_scope": 1,
        "project_creation_restriction": "adminonly", "robot_token_duration": 45}
    expect(page.locator("#notices")).to_contain_text("Saved 8 settings")
    with api(ui_server) as client:
        stored = client.get("/api/v2.0/configurations").json()
    assert stored["ldap_search_dn"] == {"value": "cn=portlog,dc=example,dc=org", "editable": True, "source": "api"}
    assert stored["ldap_scope"]["value"] == 1 and stored["robot_token_duration"]["value"] == 45
    assert stored["project_creation_restriction"]["value"] == "adminonly"
    assert stored["auth_mode"]["value"] == "ldap_auth" and stored["ldap_search_password"]["has_value"] is True
    expect(page.get_by_label("Search DN")).to_have_accessible_description(re.compile("Set on this page"))
    expect(page.get_by_label("Search password")).to_have_value("")
    assert "New-Bind-S3cret" not in page.content()
    page.set_viewport_size(NARROW)
    shot(page, "identity-configuration-narrow")
    assert page.evaluate("document.documentElement.scrollWidth") <= NARROW["width"]
    page.set_viewport_size(DESKTOP)

    # A directory user logged in meanwhile: the mode cannot change, and the page says why.
    beside.admin.onboard_user(ExternalIdentity("fay", LDAP, "uid=fay,ou=people,dc=example,dc=org"),
                              RequestContext("admin", "test-setup"))
    beside.projections.catch_up()
    page.goto("/ui/configuration")
    page.get_by_label("Authentication mode").select_option("oidc_auth")
    page.get_by_label("Provider name").fill("Corp SSO")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("no user other than admin")
    only_admin_left(ui_server)
    set_config(ui_server, auth_mode="db_auth", project_creation_restriction="everyone")


def test_the_configuration_page_in_chinese(admin_page: Page, ui_server):
    page = admin_page
    page.goto("/ui/configuration")
    page.get_by_label("Language").select_option("zh-CN")
    expect(page.get_by_role("heading", level=1)).to_have_text("系统配置")
    page.get_by_label("认证模式").select_option("ldap_auth")
    expect(page.get_by_text("由 PORTLOG_LDAP_TIMEOUT 设置，请在该处修改")).to_be_visible()
    assert not UNTRANSLATED.search(page.locator("body").inner_text())
    shot(page, "identity-configuration-zh-CN")
    page.get_by_label("语言").select_option("en")


def test_groups_are_added_renamed_deleted_and_made_project_members(admin_page: Page, ui_server):
    page = admin_page
    page.goto("/ui/groups")
    expect(page.get_by_role("heading", level=1)).to_have_text("Groups")
    page.get_by_role("button", name="Add group").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Type").select_option("3")
    expect(dialog.get_by_label("LDAP group DN")).to_be_hidden()
    dialog.get_by_label("Name").fill("platform-team")
    dialog.get_by_role("button", name="Add").click()
    expect(page.locator("#notices")).to_contain_text("Added group platform-team")
    row = page.get_by_role("row").filter(has_text="platform-team")
    expect(row.get_by_role("cell", name="OIDC", exact=True)).to_be_visible()
    expect(row.get_by_role("button", name=re.compile("Rename"))).to_have_count(0)  # the claim names it

    page.get_by_role("button", name="Add group").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Type")).to_have_value("1")
    dialog.get_by_label("LDAP group DN").fill(DEVS_DN)
    dialog.get_by_role("button", name="Add").click()
    expect(page.locator("#notices")).to_contain_text(f"Added group {DEVS_DN}")
    with api(ui_server) as client:
        listed = {g["group_name"]: g for g in client.get("/api/v2.0/usergroups").json()}
    assert listed["platform-team"]["group_type"] == 3
    devs = listed[DEVS_DN]
    assert devs["group_type"] == 1 and devs["ldap_group_dn"] == DEVS_DN
    page.get_by_role("button", name=f"Rename group {DEVS_DN}").click()
    page.get_by_role("dialog").get_by_label("New name").fill("Developers")
    page.get_by_role("dialog").get_by_role("button", name="Rename").click()
    expect(page.locator("#notices")).to_contain_text("Renamed the group to Developers")
    with api(ui_server) as client:
        assert client.get(f"/api/v2.0/usergroups/{devs['id']}").json()["group_name"] == "Developers"
    expect(page.get_by_role("row").filter(has_text="Developers")).to_contain_text(DEVS_DN)
    assert page.evaluate(UNLABELLED) == []
    shot(page, "identity-groups")
    page.set_viewport_size(NARROW)
    shot(page, "identity-groups-narrow")
    assert page.evaluate("document.documentElement.scrollWidth") <= NARROW["width"]
    page.set_viewport_size(DESKTOP)

    # The LDAP group becomes a member of a project, marked as a group.
    page.goto("/ui/projects/team?tab=members")
    page.get_by_role("button", name="Add group").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Group", exact=True).select_option(str(devs["id"]))
    dialog.get_by_label("Role").select_option("2")
    dialog.get_by_role("button", name="Add").click()
    expect(page.locator("#notices")).to_contain_text("Developers added as Developer")
    with api(ui_server) as client:
        members = client.get("/api/v2.0/projects/team/members").json()
    member = next(m for m in members if m["entity_type"] == "g")
    assert member["entity_id"] == devs["id"] and member["role_id"] == 2
    row = page.get_by_role("row").filter(has_text="Developers")
    expect(row.get_by_text("Group", exact=True)).to_be_visible()
    expect(row.get_by_label("Role of Developers")).to_have_value("2")
    shot(page, "identity-members-group")
    page.get_by_label("Language").select_option("zh-CN")
    expect(page.get_by_role("button", name="添加用户组")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="Developers").get_by_text("用户组", exact=True)).to_be_visible()
    page.goto("/ui/groups")
    expect(page.get_by_role("heading", level=1)).to_have_text("用户组")
    assert not UNTRANSLATED.search(page.locator("body").inner_text())
    shot(page, "identity-groups-zh-CN")
    page.get_by_label("语言").select_option("en")

    page.get_by_role("button", name="Delete group Developers").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.locator("#notices")).to_contain_text("Deleted Developers")
    with api(ui_server) as client:
        assert all(g["id"] != devs["id"] for g in client.get("/api/v2.0/usergroups").json())
        assert all(m["entity_type"] != "g" for m in client.get("/api/v2.0/projects/team/members").json())


def test_a_project_administrator_adds_a_group_found_by_name(page: Page, ui_server):
    """Not a system administrator: the group list is not theirs to read, the search is."""
    set_config(ui_server, auth_mode="db_auth")
    with api(ui_server) as client:
        created = client.post("/api/v2.0/users", json={"username": "pia", "password": "Pia-Pass-1", "email": ""})
        assert created.status_code == 201, created.text
        made = client.post("/api/v2.0/projects/team/members", json={"member_user": {"username": "pia"}, "role_id": 1})
        assert made.status_code == 201, made.text
        group = client.post("/api/v2.0/usergroups", json={"group_type": 3, "group_name": "ops-oncall"})
        assert group.status_code == 201, group.text
    sign_in(page, "pia", "Pia-Pass-1")
    page.goto("/ui/projects/team?tab=members")
    page.get_by_role("button", name="Add group").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Group", exact=True).fill("nobody-has-this")
    dialog.get_by_role("button", name="Add").click()
    expect(dialog.get_by_role("alert")).to_have_text("No group is named nobody-has-this")
    dialog.get_by_label("Group", exact=True).fill("ops-oncall")
    dialog.get_by_label("Role").select_option("3")
    dialog.get_by_role("button", name="Add").click()
    expect(page.locator("#notices")).to_contain_text("ops-oncall added as Guest")
    with api(ui_server) as client:
        members = client.get("/api/v2.0/projects/team/members").json()
    assert any(m["entity_type"] == "g" and m["entity_name"] == "ops-oncall" and m["role_id"] == 3 for m in members)
    only_admin_left(ui_server)


def test_an_oidc_user_sees_and_replaces_their_cli_secret(page: Page, ui_server, beside):
    ctx = RequestContext("admin", "test-setup")
    beside.admin.onboard_user(ExternalIdentity("oscar", OIDC, "https://sso.example.org|oscar-sub",
                                               email="oscar@example.org", realname="Oscar O."), ctx)
    secret, _ = beside.admin.set_cli_secret("oscar", "Oscar-Cli-S3cret", ctx)
    beside.projections.catch_up()
    sign_in(page, "oscar", secret)  # an OIDC account's password is its CLI secret
    page.goto("/ui/projects")
    page.locator("#user-menu").get_by_role("link", name="oscar").click()
    expect(page).to_have_url("/ui/profile")
    expect(page.get_by_role("heading", level=1)).to_have_text("Profile")
    current = page.context.request.get("/api/v2.0/users/current").json()
    assert current["auth_source"] == "oidc" and current["oidc_user_meta"]["secret"] == secret
    expect(page.locator("dl.facts")).to_contain_text(SOURCES["oidc"])
    section = page.get_by_role("region", name="CLI secret")
    expect(section).not_to_contain_text(secret)
    section.get_by_role("button", name="Show").click()
    expect(section).to_contain_text(secret)
    section.get_by_role("button", name="Regenerate").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("New secret").fill("Oscar-Cli-N3wer")
    dialog.get_by_role("button", name="Regenerate").click()
    expect(page.locator("#notices")).to_contain_text("Your CLI secret was replaced")
    with api(ui_server) as client:
        assert client.get("/api/v2.0/users/current", auth=("oscar", "Oscar-Cli-N3wer")).status_code == 200
        assert client.get("/api/v2.0/users/current", auth=("oscar", secret)).status_code == 401
    shot(page, "identity-profile-oidc")
    page.get_by_label("Language").select_option("zh-CN")
    expect(page.get_by_role("heading", name="CLI 密钥")).to_be_visible()
    assert not UNTRANSLATED.search(page.locator("body").inner_text())
    page.set_viewport_size(NARROW)
    shot(page, "identity-profile-zh-CN-narrow")
    assert page.evaluate("document.documentElement.scrollWidth") <= NARROW["width"]


def test_a_local_user_has_no_cli_secret(admin_page: Page):
    admin_page.goto("/ui/projects")
    admin_page.locator("#user-menu").get_by_role("link", name="admin").click()
    expect(admin_page.get_by_role("heading", level=1)).to_have_text("Profile")
    expect(admin_page.locator("dl.facts")).to_contain_text("Local")
    expect(admin_page.get_by_role("heading", name="CLI secret")).to_have_count(0)


def test_a_first_oidc_login_chooses_its_username(page: Page, ui_server, beside):
    """The page /c/oidc/callback sends a new person to when accounts are not created on their own.
    The callback's onboarding cookie is made here as the callback makes it (the provider's part of
    the flow is tests/api/test_oidc_login.py's)."""
    from api import oidc
    from api.tokens import OIDC_ONBOARD_AUDIENCE

    pending = {"suggested": "Pat Doe", "external_id": "https://sso.example.org|pat-sub", "email": "pat@example.org",
               "realname": "Pat Doe", "groups": []}
    cookie = beside.tokens.issue_flow(OIDC_ONBOARD_AUDIENCE, "oidc-onboard", pending, 600)
    page.context.add_cookies([{"name": oidc.ONBOARD_COOKIE, "value": cookie, "url": ui_server.url}])
    page.goto("/ui/oidc-onboard?username=Pat%20Doe")
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose your username")
    name = page.get_by_label("Username")
    expect(name).to_have_value("Pat Doe")
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile("/ui/oidc-onboard"))  # a space: the browser refuses the name
    name.fill("admin")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_be_visible()  # taken: choose again, with the same cookie
    assert page.evaluate(UNLABELLED) == []
    shot(page, "identity-oidc-onboard")
    name.fill("pat")
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url("/ui/projects")
    expect(page.locator("#user-menu")).to_contain_text("pat")
    pat = users_by_name(ui_server)["pat"]
    assert pat["email"] == "pat@example.org" and pat.get("auth_source", "oidc") == "oidc"


def test_the_users_list_pages_through_many(admin_page: Page, ui_server):
    only_admin_left(ui_server)
    set_config(ui_server, auth_mode="db_auth")
    with api(ui_server) as client:
        for n in range(16):
            created = client.post("/api/v2.0/users", json={"username": f"many{n:02d}", "password": "Many-Pass-1",
                                                          "email": ""})
            assert created.status_code == 201, created.text
    page = admin_page
    page.goto("/ui/users")
    expect(page.get_by_role("table").locator("caption")).to_have_text("17 users")
    expect(page.get_by_role("navigation", name="Pages")).to_contain_text("Page 1 of 2 (17 in all)")
    expect(page.get_by_role("row")).to_have_count(16)  # the header and 15 users
    page.get_by_role("button", name="Next").click()
    expect(page).to_have_url("/ui/users?page=2")
    expect(page.get_by_role("row")).to_have_count(3)
    expect(page.get_by_role("row").filter(has_text="many15")).to_be_visible()
    page.get_by_label("Username").fill("many1")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("table").locator("caption")).to_have_text("6 users")
    only_admin_left(ui_server)
