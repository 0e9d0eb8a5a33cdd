"""A tag's history page: two pushes to one tag, restoring the older digest (checked through the
registry too), the repository's tags as of a moment between the pushes, and a guest who may
look but not restore."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from tests.support.auth import PASSWORD, create_user, grant
from tests.support.browser import shot, sign_in, skopeo_copy
from tests.support.images import build_image_layout

HISTORY = "/ui/history?name=hist%2Fapp&tag=v1"


@pytest.fixture(scope="module")
def pushes(ui_server, tmp_path_factory):
    """hist/app:v1 pushed twice, with different images, more than a second apart."""
    with ui_server.client() as api:
        assert api.post("/api/v2.0/projects", json={"project_name": "hist"}).status_code == 201
        create_user(api, "onlooker")
        grant(api, "hist", "onlooker", "guest")
    root = tmp_path_factory.mktemp("history")
    first = build_image_layout(root / "first", tag="v1", text="first image")
    second = build_image_layout(root / "second", tag="v1", text="second image")
    assert first.manifest_digest != second.manifest_digest
    skopeo_copy(f"oci:{first.layout}:v1", f"docker://{ui_server.host}/hist/app:v1", ui_server.admin_creds)
    time.sleep(1.2)
    skopeo_copy(f"oci:{second.layout}:v1", f"docker://{ui_server.host}/hist/app:v1", ui_server.admin_creds)
    skopeo_copy(f"oci:{second.layout}:v1", f"docker://{ui_server.host}/hist/app:stable", ui_server.admin_creds)
    with ui_server.client() as api:
        intervals = api.get("/api/v1/repositories/hist/app/tags/v1/history").json()
    assert [i["digest"] for i in intervals] == [first.manifest_digest, second.manifest_digest]
    return {"first": first.manifest_digest, "second": second.manifest_digest, "intervals": intervals}


def registry_digest(ui_server, reference: str) -> str:
    with ui_server.client() as api:
        response = api.get(f"/v2/hist/app/manifests/{reference}", headers={
            "Authorization": ui_server.basic_authorization,
            "Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert response.status_code == 200, response.text
    return response.headers["Docker-Content-Digest"]


def timeline(page: Page):
    return page.get_by_role("table", name="Every digest v1 pointed at").locator("tbody tr")


def test_see_the_history_and_restore_the_older_digest(admin_page: Page, ui_server, pushes):
    page = admin_page
    first, second = pushes["first"], pushes["second"]
    page.goto(HISTORY)
    expect(page.get_by_role("heading", level=1)).to_have_text("Tag history: hist/app:v1")
    crumbs = page.get_by_role("navigation", name="You are here")
    expect(crumbs.get_by_role("link", name="hist", exact=True)).to_have_attribute("href", "/ui/projects/hist")
    expect(crumbs.get_by_role("link", name="app")).to_have_attribute("href", "/ui/repository?name=hist%2Fapp")
    rows = timeline(page)
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text(second[:19])  # newest first
    expect(rows.nth(0)).to_contain_text("Current")
    expect(rows.nth(0).get_by_role("button", name="Restore to here")).to_have_count(0)
    expect(rows.nth(1)).to_contain_text(first[:19])
    expect(rows.nth(1)).to_contain_text("admin")
    expect(rows.nth(1).get_by_role("link", name=first[:19] + "…")).to_have_attribute("title", first)
    shot(page, "tag-history")

    rows.nth(1).get_by_role("button", name="Restore to here").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"Point hist/app:v1 back at {first[:19]}")
    dialog.get_by_role("button", name="Restore").click()
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text(first[:19])
    expect(rows.nth(0)).to_contain_text("Current")
    expect(page.locator("tr.current")).to_have_count(1)
    expect(page.get_by_text(f"v1 points at {first[:19]}… now.")).to_be_visible()
    assert registry_digest(ui_server, "v1") == first
    assert registry_digest(ui_server, "stable") == second
    page.set_viewport_size({"width": 400, "height": 800})
    shot(page, "tag-history-narrow")


def test_view_the_tags_as_of_a_moment_between_the_pushes(admin_page: Page, ui_server, pushes):
    page = admin_page
    first_interval = pushes["intervals"][0]
    began = datetime.fromisoformat(first_interval["from_time"].replace("Z", "+00:00"))
    between = (began.replace(microsecond=0) + timedelta(seconds=1)).isoformat()
    assert between < pushes["intervals"][1]["from_time"].replace("Z", "+00:00")
    page.goto(HISTORY)
    picker = page.get_by_label("View as of (your time zone)")
    local = page.evaluate("""iso => { const d = new Date(iso);
        return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19); }""", between)
    picker.fill(local)
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(HISTORY + "&as_of=" + between.replace("+00:00", "Z").replace(":", "%3A"))
    expect(page.get_by_role("status").filter(has_text="Showing the tags of hist/app as they were at")).to_be_visible()
    tags_then = page.get_by_role("table", name="Tags of hist/app at").locator("tbody tr")
    expect(tags_then).to_have_count(1)  # stable came later
    expect(tags_then.first).to_contain_text("v1")
    expect(tags_then.first).to_contain_text(pushes["first"][:19])
    expect(timeline(page).filter(has_text="At the moment shown below")).to_contain_text(pushes["first"][:19])
    shot(page, "tag-history-as-of")

    page.reload()
    # the browser leaves out ":00" seconds
    expect(picker).to_have_value(re.compile("^" + re.escape(local[:16]) + f"(:{local[17:19]})?$"))
    expect(tags_then).to_have_count(1)
    page.get_by_role("link", name="Back to now").click()
    expect(page).to_have_url(HISTORY)
    expect(page.get_by_role("table", name="Tags of hist/app now").locator("tbody tr")).to_have_count(2)


def test_a_guest_sees_the_history_without_restore_buttons(page: Page, ui_server, pushes):
    sign_in(page, "onlooker", PASSWORD)
    page.goto(HISTORY)
    expect(timeline(page).first).to_be_visible()
    expect(timeline(page).nth(1)).to_contain_text("sha256:")
    expect(page.get_by_role("button", name="Restore to here")).to_have_count(0)
    with ui_server.client() as api:
        refused = api.post("/api/v1/repositories/hist/app/tags/v1/restore", json={"as_of": 1},
                           auth=("onlooker", PASSWORD))
    assert refused.status_code == 403
    page.get_by_label("Language").select_option("zh-CN")
    expect(page.get_by_role("heading", level=1)).to_have_text("标签历史：hist/app:v1")
    expect(page.get_by_role("button", name="恢复到此处")).to_have_count(0)
    expect(page.get_by_role("table", name="hist/app 当前的标签")).to_be_visible()
    shot(page, "tag-history-zh-CN")


def test_anonymous_visitors_of_a_private_project_are_asked_to_sign_in(page: Page, pushes):
    page.goto(HISTORY)
    expect(page).to_have_url("/ui/login?next=" + "%2Fui%2Fhistory%3Fname%3Dhist%252Fapp%26tag%3Dv1")


def test_a_delete_and_an_undelete_are_shown_as_such(admin_page: Page, ui_server, pushes, tmp_path):
    """hist/back:v1 deleted with its repository, the repository undeleted, then the tag deleted
    and undeleted: one digest all along, so nothing to restore; each row says what happened."""
    image = build_image_layout(tmp_path / "back", tag="v1", text="back again")
    skopeo_copy(f"oci:{image.layout}:v1", f"docker://{ui_server.host}/hist/back:v1", ui_server.admin_creds)
    with ui_server.client() as api:
        assert api.delete("/api/v1/repositories/hist/back").status_code == 204
        assert api.post("/api/v1/repositories/hist/back/undelete").status_code == 200
        assert api.delete("/v2/hist/back/manifests/v1").status_code == 202
        assert api.post("/api/v1/repositories/hist/back/tags/v1/undelete").status_code == 200
    page = admin_page
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto("/ui/history?name=hist%2Fback&tag=v1")
    rows = timeline(page)
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("Undeleted by admin")
    expect(rows.nth(0)).to_contain_text("Current")
    expect(rows.nth(1)).to_contain_text("Undeleted by admin")
    expect(rows.nth(1)).to_contain_text("Tag deleted by admin")
    expect(rows.nth(2)).to_contain_text("Pointed here by admin")
    expect(rows.nth(2)).to_contain_text("Repository deleted by admin")
    expect(page.get_by_role("table", name="Every digest v1 pointed at")).not_to_contain_text("Moved away")
    for index in range(3):
        expect(rows.nth(index)).to_contain_text(image.manifest_digest[:19])
    expect(page.get_by_role("button", name="Restore to here")).to_have_count(0)  # all the current digest
    shot(page, "tag-history-undeleted")
