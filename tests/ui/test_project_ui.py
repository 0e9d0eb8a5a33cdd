"""The project page (/ui/projects/<name>): its tabs — repositories (now, and as of a past
moment), members, robot accounts, policies, webhooks, quota, settings — driven in Chromium
against a live server, as the administrator, as a guest member and anonymously."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest
from playwright.sync_api import Page, expect

from tests.support.auth import PASSWORD, create_user, grant, token, token_access
from tests.support.browser import shot, sign_in, skopeo_copy
from tests.support.images import build_image_layout

PROJECT = "team"
URL = f"/ui/projects/{PROJECT}"


@dataclass
class Seed:
    before_push: datetime  # a moment after the project was created and before anything was pushed


@pytest.fixture(scope="module")
def seed(ui_server, tmp_path_factory) -> Seed:
    """A private project holding one pushed image (team/app:1.0), a guest member `gail`, and a
    user `carol` who is no member yet."""
    with ui_server.client() as client:
        response = client.post("/api/v2.0/projects", json={"project_name": PROJECT, "metadata": {"public": "false"}})
        assert response.status_code == 201, response.text
        create_user(client, "carol")
        create_user(client, "gail")
        grant(client, PROJECT, "gail", "guest")
    time.sleep(1.05)  # the page picks moments to the second: let one pass after the project's creation
    before = datetime.now(timezone.utc)
    image = build_image_layout(tmp_path_factory.mktemp("project-ui") / "layout", "1.0")
    skopeo_copy(f"oci:{image.layout}:1.0", f"docker://{ui_server.host}/{PROJECT}/app:1.0", ui_server.admin_creds)
    return Seed(before)


def open_tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    expect(page.get_by_role("tab", name=name)).to_have_attribute("aria-selected", "true")


def local_input_value(page: Page, moment: datetime) -> str:
    """The datetime-local value the browser shows for `moment` (in the browser's time zone; the
    browser leaves out ":00" seconds)."""
    return page.evaluate("""(iso) => { const d = new Date(iso); const p = (n) => String(n).padStart(2, "0");
        return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`
          + (d.getSeconds() ? `:${p(d.getSeconds())}` : ""); }""", moment.isoformat())


def test_repositories_now_and_as_of_a_moment_before_the_push(admin_page: Page, seed: Seed):
    page = admin_page
    page.goto(URL)
    expect(page.get_by_role("heading", level=1)).to_have_text(PROJECT)
    expect(page.get_by_role("navigation", name="Breadcrumbs").get_by_role("link", name="Projects")).to_be_visible()
    expect(page.locator(".project-badges")).to_contain_text("Private")
    expect(page.get_by_role("tab", name="Repositories")).to_have_attribute("aria-selected", "true")
    panel = page.get_by_role("tabpanel", name="Repositories")
    repository = panel.get_by_role("link", name=f"{PROJECT}/app")
    expect(repository).to_have_attribute("href", f"/ui/repository?name={PROJECT}%2Fapp")
    expect(panel.get_by_role("table")).to_contain_text("Repositories (1)")
    expect(panel.get_by_role("button", name=f"Delete repository {PROJECT}/app")).to_be_visible()
    shot(page, "project-repositories")

    page.get_by_label("Repository name contains").fill("nothing-like-it")
    page.get_by_role("button", name="Search").click()
    expect(panel).to_contain_text("No repository name contains “nothing-like-it”")
    expect(page).to_have_url(re.compile(r"q=nothing-like-it"))
    page.get_by_label("Repository name contains").fill("")
    page.get_by_role("button", name="Search").click()
    expect(panel.get_by_role("link", name=f"{PROJECT}/app")).to_be_visible()

    page.get_by_label("View as of").fill(local_input_value(page, seed.before_push))
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"as_of=\d{4}-\d\d-\d\dT\d\d%3A\d\d%3A\d\dZ"))
    expect(panel.get_by_role("status")).to_contain_text("Showing the repositories as they were at")
    expect(panel).to_contain_text("The project held no repositories at that moment")
    expect(panel.get_by_role("link", name=f"{PROJECT}/app")).to_have_count(0)
    shot(page, "project-as-of")

    page.reload()  # the moment is in the URL: a reload (or a shared link) shows the same past
    expect(panel).to_contain_text("The project held no repositories at that moment")
    expect(page.get_by_label("View as of")).to_have_value(local_input_value(page, seed.before_push))
    page.get_by_role("link", name="Back to now").click()
    expect(panel.get_by_role("link", name=f"{PROJECT}/app")).to_be_visible()
    expect(page).not_to_have_url(re.compile("as_of"))


def test_add_a_member_as_guest_then_make_them_developer(admin_page: Page, seed: Seed, ui_server):
    page = admin_page
    page.goto(URL)
    open_tab(page, "Members")
    expect(page).to_have_url(re.compile(r"\?tab=members$"))
    panel = page.get_by_role("tabpanel", name="Members")
    expect(panel.get_by_role("table")).to_contain_text("gail")
    page.get_by_role("button", name="Add member").click()
    dialog = page.get_by_role("dialog", name="Add member")
    dialog.get_by_label("Username").fill("carol")
    dialog.get_by_label("Role").select_option(label="Guest")
    dialog.get_by_role("button", name="Add").click()
    expect(dialog).to_have_count(0)
    role = panel.get_by_label("Role of carol")
    expect(role).to_have_value("3")
    role.select_option(label="Developer")
    expect(page.get_by_role("status")).to_contain_text("carol is now Developer")
    with ui_server.client() as client:
        members = client.get(f"/api/v2.0/projects/{PROJECT}/members").json()
    assert {m["entity_name"]: m["role_id"] for m in members}["carol"] == 2

    page.get_by_role("button", name="Add member").click()  # the server's refusal shows in the form
    dialog = page.get_by_role("dialog", name="Add member")
    dialog.get_by_label("Username").fill("carol")
    dialog.get_by_role("button", name="Add").click()
    expect(dialog.get_by_role("alert").last).to_contain_text("carol is already a member of team")
    dialog.get_by_role("button", name="Cancel").click()
    shot(page, "project-members")


def test_a_robot_account_shows_its_secret_once(admin_page: Page, seed: Seed, ui_server):
    page = admin_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"{URL}?tab=robots")
    panel = page.get_by_role("tabpanel", name="Robot accounts")
    expect(panel).to_contain_text("No robot accounts yet")
    page.get_by_role("button", name="New robot account").click()
    form = page.get_by_role("dialog", name="New robot account")
    form.get_by_label("Name", exact=True).fill("ci")
    form.get_by_label("Expires after (days)").fill("7")
    form.get_by_label("Push").check()
    form.get_by_role("button", name="Create").click()
    dialog = page.get_by_role("dialog", name=f"Robot account robot${PROJECT}+ci created")
    expect(dialog).to_contain_text("shown only this once")
    secret = dialog.get_by_label("Secret", exact=True).input_value()
    assert len(secret) >= 16
    shot(page, "project-robot-secret")
    dialog.get_by_role("button", name="Copy the secret").click()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    with ui_server.client() as client:  # the secret is the robot's password, with the permissions chosen
        granted = token(client, [f"repository:{PROJECT}/app:pull,push"], (f"robot${PROJECT}+ci", secret))
    assert sorted(token_access(granted)[0]["actions"]) == ["pull", "push"]
    dialog.get_by_role("button", name="I have copied it").click()
    expect(dialog).to_have_count(0)
    row = panel.get_by_role("row", name=re.compile(r"robot\$team\+ci"))
    expect(row).to_contain_text("Pull, Push")
    expect(row).to_contain_text("Enabled")
    assert secret not in page.content()
    row.get_by_role("button", name=f"Disable robot${PROJECT}+ci").click()
    expect(row).to_contain_text("Disabled")
    page.reload()
    expect(panel.get_by_role("row", name=re.compile(r"robot\$team\+ci"))).to_be_visible()
    assert secret not in page.content()
    shot(page, "project-robots")


def test_immutability_and_retention_rules(admin_page: Page, seed: Seed, ui_server):
    page = admin_page
    page.goto(f"{URL}?tab=policies")
    panel = page.get_by_role("tabpanel", name="Policies")
    expect(panel.get_by_role("heading", name="Tag immutability")).to_be_visible()
    page.get_by_role("button", name="Add immutability rule").click()
    dialog = page.get_by_role("dialog", name="Add immutability rule")
    dialog.get_by_label("Tags", exact=True).fill("v*")
    dialog.get_by_role("button", name="Add").click()
    expect(dialog).to_have_count(0)
    expect(panel.get_by_role("table", name="Immutability rules (1)")).to_contain_text("matching v*")

    expect(panel).to_contain_text("No retention rules: nothing is deleted")
    page.get_by_role("button", name="Add retention rule").click()
    dialog = page.get_by_role("dialog", name="Add retention rule")
    dialog.get_by_label("Retain").select_option("latestPushedK")
    dialog.get_by_label("Number of artifacts").fill("3")
    dialog.get_by_label("Repositories: select those").select_option(label="excluding")
    dialog.get_by_label("Repositories", exact=True).fill("tmp/**")
    dialog.get_by_label("Retain").select_option("nDaysSinceLastPush")
    expect(dialog.get_by_label("Number of days")).to_have_value("3")  # the label follows the template
    dialog.get_by_label("Retain").select_option("latestPushedK")
    shot(page, "project-retention-dialog")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_have_count(0)
    rules = panel.get_by_role("table", name="Retention rules (1)")
    expect(rules).to_contain_text("excluding tmp/**")
    expect(rules).to_contain_text("the 3 most recently pushed artifacts")
    with ui_server.client() as client:
        policy = client.get(f"/api/v1/projects/{PROJECT}/retention").json()
    assert policy["rules"][0]["template"] == "latestPushedK" and policy["rules"][0]["param"] == 3

    panel.get_by_role("button", name="Dry run").click()
    expect(page.get_by_role("status")).to_contain_text("Dry run finished: 0 artifacts would be deleted, 1 retained")
    runs = panel.get_by_role("table", name="Retention runs, newest first")
    expect(runs).to_contain_text("Succeeded")
    expect(runs).to_contain_text("Dry run")
    shot(page, "project-policies")


def test_create_a_webhook_and_switch_it_off(admin_page: Page, seed: Seed):
    page = admin_page
    page.goto(f"{URL}?tab=webhooks")
    panel = page.get_by_role("tabpanel", name="Webhooks")
    expect(panel).to_contain_text("No webhooks yet")
    page.get_by_role("button", name="New webhook").click()
    dialog = page.get_by_role("dialog", name="New webhook")
    dialog.get_by_label("Name", exact=True).fill("ci-hook")
    dialog.get_by_label("Endpoint URL").fill("ftp://example.com/hook")
    dialog.get_by_label("Artifact pulled").check()
    dialog.get_by_role("button", name="Create").click()  # the browser accepts any URL; the server says no
    expect(dialog.get_by_role("alert").last).to_contain_text("http:// or https:// URL")
    shot(page, "project-webhook-dialog")
    dialog.get_by_label("Endpoint URL").fill("https://example.com/hook")
    dialog.get_by_role("button", name="Create").click()
    expect(dialog).to_have_count(0)
    row = panel.get_by_role("row", name=re.compile("ci-hook"))
    expect(row).to_contain_text("https://example.com/hook")
    expect(row).to_contain_text("Artifact pushed, Artifact pulled, Artifact deleted")
    expect(row).to_contain_text("Enabled")
    row.get_by_role("button", name="Disable ci-hook").click()
    expect(row).to_contain_text("Disabled")
    row.get_by_role("button", name="Recent deliveries of ci-hook").click()
    expect(panel.get_by_role("heading", name="Recent deliveries of ci-hook")).to_be_visible()
    expect(panel).to_contain_text("Nothing has been delivered yet")
    shot(page, "project-webhooks")


def test_set_a_quota_and_see_the_bar(admin_page: Page, seed: Seed, ui_server):
    page = admin_page
    page.goto(f"{URL}?tab=quota")
    panel = page.get_by_role("tabpanel", name="Quota")
    expect(panel).to_contain_text("(no limit)")
    expect(panel.get_by_role("meter")).to_have_count(0)
    page.get_by_role("button", name="Edit quota").click()
    dialog = page.get_by_role("dialog", name="Edit quota")
    dialog.get_by_label("Storage limit").fill("10")
    dialog.get_by_label("Unit").select_option("MiB")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_have_count(0)
    expect(panel).to_contain_text("of 10.0 MiB")
    bar = panel.get_by_role("meter", name="Share of team's storage quota used")
    expect(bar).to_be_visible()
    assert 0 < int(bar.get_attribute("aria-valuenow")) <= 100
    with ui_server.client() as client:
        assert client.get(f"/api/v2.0/projects/{PROJECT}/summary").json()["quota"]["hard"]["storage"] == 10 * 1024 ** 2
    shot(page, "project-quota")


def test_a_guest_sees_the_project_but_no_controls_and_the_api_refuses(page: Page, seed: Seed):
    sign_in(page, "gail", PASSWORD)
    page.goto(URL)
    expect(page.get_by_role("heading", level=1)).to_have_text(PROJECT)
    panel = page.get_by_role("tabpanel", name="Repositories")
    expect(panel.get_by_role("link", name=f"{PROJECT}/app")).to_be_visible()
    expect(page.get_by_role("tab")).to_have_text(["Repositories", "Members", "Quota"])
    expect(page.get_by_role("button", name=re.compile("^Delete"))).to_have_count(0)
    shot(page, "project-guest")
    open_tab(page, "Members")
    members = page.get_by_role("tabpanel", name="Members")
    expect(members.get_by_role("table")).to_contain_text("gail")
    expect(page.get_by_role("button", name="Add member")).to_have_count(0)
    expect(members.get_by_role("combobox")).to_have_count(0)
    expect(members.get_by_role("button", name=re.compile("Remove"))).to_have_count(0)
    open_tab(page, "Quota")
    expect(page.get_by_role("button", name="Edit quota")).to_have_count(0)

    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "__csrf")
    refused = page.context.request.delete(f"/api/v2.0/projects/{PROJECT}/repositories/app",
                                          headers={"X-Harbor-CSRF-Token": csrf})
    assert refused.status == 403, refused.text()
    refused = page.context.request.post(f"/api/v2.0/projects/{PROJECT}/members",
                                        data={"member_user": {"username": "carol"}, "role_id": 1},
                                        headers={"X-Harbor-CSRF-Token": csrf})
    assert refused.status == 403, refused.text()


def test_tabs_follow_the_arrow_keys(admin_page: Page, seed: Seed):
    page = admin_page
    page.goto(URL)
    first = page.get_by_role("tab", name="Repositories")
    first.focus()
    page.keyboard.press("ArrowRight")
    members = page.get_by_role("tab", name="Members")
    expect(members).to_be_focused()
    expect(members).to_have_attribute("aria-selected", "true")
    expect(first).to_have_attribute("tabindex", "-1")
    expect(page.get_by_role("tabpanel", name="Members")).to_be_visible()
    expect(page.get_by_role("tabpanel", name="Repositories")).to_be_hidden()
    expect(page).to_have_url(re.compile(r"tab=members"))
    page.keyboard.press("ArrowLeft")
    expect(first).to_be_focused()
    page.keyboard.press("ArrowLeft")  # wraps around to the last tab
    expect(page.get_by_role("tab", name="Settings")).to_be_focused()
    expect(page).to_have_url(re.compile(r"tab=settings"))
    page.keyboard.press("Home")
    expect(first).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Tab")  # from the tab list into the panel
    expect(page.get_by_role("tabpanel", name="Repositories")).to_be_focused()


def test_settings_refuse_deleting_a_project_with_repositories_and_make_it_public(admin_page: Page, seed: Seed,
                                                                                  browser, ui_server):
    page = admin_page
    page.goto(f"{URL}?tab=settings")
    panel = page.get_by_role("tabpanel", name="Settings")
    panel.get_by_role("button", name="Delete project").click()
    page.get_by_role("dialog", name="Confirm").get_by_role("button", name="Delete project").click()
    expect(panel.get_by_role("alert")).to_contain_text("project team still holds 1 repositories")
    panel.get_by_label("Public: anyone may pull without logging in").check()
    panel.get_by_role("form", name="Access level").get_by_role("button", name="Save").click()
    expect(page.locator(".project-badges")).to_contain_text("Public")
    expect(page.get_by_role("tab", name="Settings")).to_have_attribute("aria-selected", "true")
    shot(page, "project-settings")

    anonymous = browser.new_context(base_url=ui_server.url, locale="en-US")
    try:
        visitor = anonymous.new_page()
        visitor.goto(URL)
        repositories = visitor.get_by_role("tabpanel", name="Repositories")
        expect(repositories.get_by_role("link", name=f"{PROJECT}/app")).to_be_visible()
        expect(visitor.get_by_role("tab")).to_have_text(["Repositories", "Quota"])
        expect(visitor.get_by_role("button", name=re.compile("^Delete"))).to_have_count(0)
    finally:
        anonymous.close()


def test_narrow_screens_and_chinese(admin_page: Page, seed: Seed):
    page = admin_page
    page.set_viewport_size({"width": 400, "height": 800})
    page.goto(URL)
    expect(page.get_by_role("tabpanel", name="Repositories").get_by_role("link", name=f"{PROJECT}/app")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    shot(page, "project-narrow")
    page.goto(f"{URL}?tab=members")
    expect(page.get_by_role("tabpanel", name="Members").get_by_role("table")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    shot(page, "project-narrow-members")

    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_label("Language").select_option("zh-CN")
    for tab in ("镜像仓库", "成员", "机器人账户", "策略", "钩子", "配额"):
        expect(page.get_by_role("tab", name=tab)).to_be_visible()
    expect(page.get_by_role("tabpanel", name="成员")).to_contain_text("访客")
    shot(page, "project-members-zh-CN")
    page.get_by_role("tab", name="策略").click()
    expect(page.get_by_role("tabpanel", name="策略").get_by_role("heading", name="标签保留")).to_be_visible()
    expect(page.get_by_role("tabpanel", name="策略").get_by_role("heading", name="不可变的标签")).to_be_visible()
    expect(page.get_by_role("tabpanel", name="策略")).to_contain_text("最近推送的 3 个制品")
    shot(page, "project-policies-zh-CN")


def test_delete_the_repository_see_it_in_the_past_then_delete_the_project(admin_page: Page, seed: Seed):
    page = admin_page
    page.goto(URL)
    panel = page.get_by_role("tabpanel", name="Repositories")
    moment = datetime.now(timezone.utc)  # long after the push, just before the deletion
    time.sleep(1.0)
    panel.get_by_role("button", name=f"Delete repository {PROJECT}/app").click()
    page.get_by_role("dialog", name="Confirm").get_by_role("button", name="Delete").click()
    expect(panel).to_contain_text("No repositories yet. Push an image into the project:")
    expect(panel.locator("code")).to_contain_text(f"/{PROJECT}/IMAGE:TAG")

    page.get_by_label("View as of").fill(local_input_value(page, moment))
    page.get_by_role("button", name="Show").click()
    past = panel.get_by_role("link", name=f"{PROJECT}/app")
    expect(past).to_be_visible()
    expect(past).to_have_attribute("href", re.compile(r"^/ui/repository\?name=team%2Fapp&as_of=\d{4}-"))

    open_tab(page, "Settings")
    page.get_by_role("tabpanel", name="Settings").get_by_role("button", name="Delete project").click()
    page.get_by_role("dialog", name="Confirm").get_by_role("button", name="Delete project").click()
    expect(page).to_have_url("/ui/projects")
    expect(page.get_by_role("status")).to_contain_text(f"Deleted {PROJECT}")
