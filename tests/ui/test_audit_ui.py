"""The audit log page: filters kept in the URL (reload, back button), cursor pages, exports, the
empty state, and a project administrator who must name a project."""

from __future__ import annotations

import csv
import io
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from playwright.sync_api import Page, expect

from tests.support.auth import PASSWORD, create_user, grant
from tests.support.browser import shot, sign_in
from tests.support.oci import push_image


@pytest.fixture(scope="module")
def activity(ui_server):
    """Projects created by the administrator and by a user, one deleted, a project administrator."""
    with ui_server.client() as api:
        for name in ("audit-a", "audit-b", "audit-c"):
            assert api.post("/api/v2.0/projects", json={"project_name": name}).status_code == 201
        create_user(api, "auditor")
        create_user(api, "pa")
        grant(api, "audit-a", "pa", "project_admin")
        assert api.delete("/api/v2.0/projects/audit-c").status_code == 200
        created = api.get("/api/v1/audit-logs", params={"actor": "admin", "operation": "project.created",
                                                        "limit": 1000}).json()
    with ui_server.client() as api:
        made = api.post("/api/v2.0/projects", json={"project_name": "auditor-own"}, auth=("auditor", PASSWORD))
        assert made.status_code == 201, made.text
    return {"created_by_admin": [entry["resource"] for entry in created]}


def rows(page: Page):
    return page.locator("main table tbody tr")


def test_filter_by_operation_and_actor_survives_reload_and_back(admin_page: Page, activity):
    page = admin_page
    page.goto("/ui/audit")
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
    expect(rows(page).first).to_be_visible()

    page.get_by_label("Operation").fill("project.deleted")
    page.get_by_role("button", name="Apply filter").click()
    expect(page).to_have_url("/ui/audit?operation=project.deleted")
    expect(rows(page)).to_have_count(1)
    expect(rows(page)).to_contain_text(["project.deleted"])
    expect(rows(page).first).to_contain_text("audit-c")
    expect(page.locator("main table")).not_to_contain_text("audit-a")
    shot(page, "audit-filtered")

    page.reload()
    expect(page.get_by_label("Operation")).to_have_value("project.deleted")
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text("audit-c")

    page.get_by_label("Operation").fill("")
    page.get_by_label("User").fill("auditor")
    page.get_by_role("button", name="Apply filter").click()
    expect(page).to_have_url("/ui/audit?actor=auditor")
    expect(rows(page).first).to_contain_text("auditor-own")
    for text in rows(page).locator("td:nth-child(2)").all_inner_texts():
        assert text == "auditor"
    expect(page.locator("main table")).not_to_contain_text("audit-c")

    page.go_back()
    expect(page).to_have_url("/ui/audit?operation=project.deleted")
    expect(page.get_by_label("Operation")).to_have_value("project.deleted")
    expect(page.get_by_label("User")).to_have_value("")
    expect(rows(page)).to_have_count(1)

    csv_link = page.get_by_role("link", name="CSV")
    exported = page.context.request.get(csv_link.get_attribute("href"))
    assert exported.ok
    resources = [row["resource"] for row in csv.DictReader(io.StringIO(exported.text()))]
    assert resources == ["audit-c"]
    assert "format=jsonl" in page.get_by_role("link", name="JSON Lines").get_attribute("href")

    page.goto("/ui/audit?actor=nobody-at-all")
    expect(page.get_by_text("No entries match this filter.")).to_be_visible()


def test_next_page_follows_the_cursor_with_the_filter(admin_page: Page, activity):
    page = admin_page
    expected = list(reversed(activity["created_by_admin"]))  # newest first
    assert len(expected) >= 3
    page.goto("/ui/audit?actor=admin&operation=project.created&limit=2")
    expect(page.get_by_text("Entries on this page: 2, newest first")).to_be_visible()
    seen = []
    while True:
        texts = rows(page).locator("td:nth-child(4)").all_inner_texts()
        assert len(texts) <= 2
        seen += texts
        more = page.get_by_role("link", name="Next page (earlier entries) »")
        if not more.count():
            break
        before = page.url
        more.click()
        expect(page).not_to_have_url(before)
        cursor = parse_qs(urlparse(page.url).query)["before"][0]
        shown = page.get_by_text(f"before log position {cursor}").or_(page.get_by_text("No more entries."))
        expect(shown).to_be_visible()
    assert seen == expected
    expect(page.get_by_label("User")).to_have_value("admin")
    expect(page.get_by_label("Operation")).to_have_value("project.created")
    expect(page.get_by_label("Entries per page")).to_have_value("2")
    page.get_by_role("link", name="« Newest entries").click()
    expect(page).to_have_url("/ui/audit?actor=admin&operation=project.created&limit=2")
    expect(page.get_by_text("Entries on this page: 2, newest first")).to_be_visible()
    assert rows(page).locator("td:nth-child(4)").all_inner_texts() == expected[:2]


def test_a_project_administrator_is_asked_for_a_project(page: Page, ui_server, activity):
    sign_in(page, "pa", PASSWORD)
    page.goto("/ui/audit")
    expect(page.get_by_role("alert")).to_contain_text("enter a project")
    expect(page.get_by_label("Project")).to_be_focused()
    shot(page, "audit-project-required")
    page.get_by_label("Project").fill("audit-a")
    page.get_by_role("button", name="Apply filter").click()
    expect(page).to_have_url("/ui/audit?project=audit-a")
    expect(page.locator("main table")).to_contain_text("project.member_added")
    expect(page.locator("main table")).not_to_contain_text("audit-b")
    page.goto("/ui/audit?project=audit-b")
    expect(page.get_by_role("alert")).to_be_visible()


def test_since_and_until_are_local_times_in_the_form_and_utc_in_the_url(admin_page: Page, activity):
    page = admin_page
    page.goto("/ui/audit?operation=project.created&since=2999-01-01T00:00:00Z")
    expect(page.get_by_text("No entries match this filter.")).to_be_visible()
    local = page.evaluate("""() => { const d = new Date("2999-01-01T00:00:00Z");
        return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16); }""")
    expect(page.get_by_label("From (your time zone)")).to_have_value(local)
    page.get_by_label("From (your time zone)").fill("")
    page.get_by_label("Until, exclusive (your time zone)").fill("2000-01-01T12:00:00")
    page.get_by_role("button", name="Apply filter").click()
    utc = page.evaluate("() => new Date('2000-01-01T12:00:00').toISOString().replace('.000Z', 'Z')")
    expect(page).to_have_url("/ui/audit?" + urlencode({"operation": "project.created", "until": utc}))
    expect(page.get_by_text("No entries match this filter.")).to_be_visible()
    page.get_by_role("link", name="Clear filter").click()
    expect(page).to_have_url("/ui/audit")
    expect(rows(page).first).to_be_visible()


def test_narrow_and_chinese(admin_page: Page, activity):
    page = admin_page
    page.set_viewport_size({"width": 400, "height": 800})
    page.goto("/ui/audit?operation=project.created")
    expect(rows(page).first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 400  # nothing sticks out sideways
    shot(page, "audit-narrow")
    page.get_by_label("Language").select_option("zh-CN")
    expect(page.get_by_role("heading", level=1)).to_have_text("审计日志")
    expect(page.get_by_label("操作", exact=True)).to_have_value("project.created")
    page.set_viewport_size({"width": 1280, "height": 800})
    expect(page.get_by_text("本页记录")).to_be_visible()
    shot(page, "audit-zh-CN")


# Every text piece of each operation cell (they break only after a dot, at a <wbr>) laid out on one line.
WORDS_BROKEN = """() => [...document.querySelectorAll("main td.audit-op code")].flatMap((code) =>
    [...code.childNodes].filter((node) => node.nodeType === Node.TEXT_NODE && node.data.trim()).map((node) => {
        const range = document.createRange();
        range.selectNodeContents(node);
        return [node.data, new Set([...range.getClientRects()].map((rect) => Math.round(rect.top))).size];
    })).filter(([, lines]) => lines > 1).map(([text]) => text)"""


@pytest.mark.parametrize("width", [1400, 400])
def test_operation_names_never_break_inside_a_word(admin_page: Page, ui_server, activity, width):
    with ui_server.client() as api:
        push_image(api, "audit-a/a-repository-with-a-rather-long-name-for-the-resource-column", "release-candidate",
                   seed="audit-words")
    page = admin_page
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/ui/audit")
    expect(rows(page).filter(has_text="repository.manifest_pushed").first).to_be_visible()
    operations = page.locator("main td.audit-op code")
    assert operations.count() > 5
    shot(page, f"audit-{width}")
    assert page.evaluate(WORDS_BROKEN) == []
    style = operations.first.evaluate("el => [getComputedStyle(el).overflowWrap, getComputedStyle(el).wordBreak]")
    assert style == ["normal", "normal"]
