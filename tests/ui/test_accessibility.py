"""Keyboard use, labelled controls and the Chinese interface, on the pages every user sees."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import shot, skopeo_copy
from tests.support.images import build_image_layout

# Controls without an accessible name: no <label>, aria-label, aria-labelledby or text.
UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button, a[href]')]
  .filter((el) => el.offsetParent !== null)
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                  && !el.getAttribute('aria-labelledby') && !el.textContent.trim())
  .map((el) => el.outerHTML.slice(0, 120))"""


@pytest.fixture(scope="module")
def pushed(ui_server, tmp_path_factory):
    image = build_image_layout(tmp_path_factory.mktemp("layout") / "oci", tag="1.0")
    with ui_server.client() as client:
        client.post("/api/v1/projects", json={"name": "keys"})
    skopeo_copy(f"oci:{image.layout}:1.0", f"docker://{ui_server.host}/keys/app:1.0", ui_server.admin_creds)
    return image


def test_a_project_can_be_created_with_the_keyboard_alone(admin_page: Page):
    page = admin_page
    page.goto("/ui/projects")
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "New project":
            break
    expect(page.get_by_role("button", name="New project")).to_be_focused()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Project name", exact=True)).to_be_focused()
    page.keyboard.type("typed")
    page.keyboard.press("Enter")
    expect(page).to_have_url("/ui/projects/typed")


def test_escape_closes_a_dialog_without_doing_anything(admin_page: Page, pushed):
    page = admin_page
    page.goto("/ui/repository?name=keys/app")
    page.get_by_role("button", name="Delete tag 1.0").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.get_by_role("row").filter(has_text="1.0")).to_be_visible()


@pytest.mark.parametrize("path", ["/ui/projects", "/ui/repository?name=keys/app", "/ui/login"])
def test_every_control_has_a_name(admin_page: Page, pushed, path):
    admin_page.goto(path)
    expect(admin_page.get_by_role("heading", level=1)).to_be_visible()
    assert admin_page.evaluate(UNLABELLED) == []


def test_the_repository_page_in_simplified_chinese(admin_page: Page, pushed):
    page = admin_page
    page.goto("/ui/projects")
    page.get_by_label("Language").select_option("zh-CN")
    expect(page.get_by_role("heading", level=1)).to_have_text("项目")
    page.goto("/ui/repository?name=keys/app")
    expect(page.get_by_role("columnheader", name="标签")).to_be_visible()
    expect(page.get_by_role("button", name="删除标签 1.0")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    shot(page, "repository-zh-CN")
