""""Restore to this moment" in the time-travel views: a repository as of a moment between two
pushes, its dry run shown, confirmed, the registry serving the older digest again; the project's
view as of that moment previews the member added since and changes nothing when cancelled; a guest
sees no button."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, expect

from tests.support.auth import PASSWORD, create_user, grant
from tests.support.browser import shot, sign_in, skopeo_copy
from tests.support.images import build_image_layout


@pytest.fixture(scope="module")
def moment(ui_server, tmp_path_factory) -> dict:
    """rest/app:v1 pushed; the moment; then v1 moved and extra pushed, and a guest added."""
    with ui_server.client() as api:
        assert api.post("/api/v2.0/projects", json={"project_name": "rest"}).status_code == 201
        create_user(api, "onlooker")
    root = tmp_path_factory.mktemp("restore-ui")
    first = build_image_layout(root / "first", tag="v1", text="first image")
    second = build_image_layout(root / "second", tag="v1", text="second image")
    skopeo_copy(f"oci:{first.layout}:v1", f"docker://{ui_server.host}/rest/app:v1", ui_server.admin_creds)
    time.sleep(1.1)
    at = datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    time.sleep(1.1)
    skopeo_copy(f"oci:{second.layout}:v1", f"docker://{ui_server.host}/rest/app:v1", ui_server.admin_creds)
    skopeo_copy(f"oci:{second.layout}:v1", f"docker://{ui_server.host}/rest/app:extra", ui_server.admin_creds)
    with ui_server.client() as api:
        grant(api, "rest", "onlooker", "guest")
    return {"as_of": at, "first": first.manifest_digest, "second": second.manifest_digest}


def served(ui_server, tag: str) -> str | None:
    with ui_server.client() as api:
        response = api.get(f"/v2/rest/app/manifests/{tag}", headers={
            "Authorization": ui_server.basic_authorization, "Accept": "application/vnd.oci.image.manifest.v1+json"})
    return response.headers["Docker-Content-Digest"] if response.status_code == 200 else None


def test_restore_a_repository_to_the_moment_shown(admin_page: Page, ui_server, moment):
    page = admin_page
    page.goto("/ui/repository?" + urlencode({"name": "rest/app", "as_of": moment["as_of"]}))
    page.get_by_role("button", name="Restore to this moment").click()
    dialog = page.get_by_role("dialog", name="Restore rest/app to this moment")
    expect(dialog.locator("li.restore-change")).to_have_count(2)
    expect(dialog).to_contain_text(f"Move rest/app:v1 back from {moment['second'][:19]}")
    expect(dialog).to_contain_text("Remove the tag rest/app:extra")
    shot(page, "restore-preview")
    assert served(ui_server, "extra") == moment["second"]  # the preview recorded nothing

    dialog.get_by_role("button", name="Restore").click()
    expect(page.get_by_text("rest/app restored: 2 changes recorded")).to_be_visible()
    expect(page).to_have_url("/ui/repository?name=rest%2Fapp")
    assert served(ui_server, "v1") == moment["first"]
    assert served(ui_server, "extra") is None


def test_the_project_preview_names_the_member_added_since_and_cancel_changes_nothing(
        admin_page: Page, ui_server, moment):
    page = admin_page
    page.goto("/ui/projects/rest?" + urlencode({"tab": "repositories", "as_of": moment["as_of"]}))
    page.get_by_role("button", name="Restore to this moment").click()
    dialog = page.get_by_role("dialog", name="Restore rest to this moment")
    expect(dialog).to_contain_text("Remove onlooker (guest), added since")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    with ui_server.client() as api:
        members = {m["principal"] for m in api.get("/api/v1/projects/rest/members").json()}
    assert "onlooker" in members


def test_a_guest_sees_no_restore_button(page: Page, ui_server, moment):
    sign_in(page, "onlooker", PASSWORD)
    page.goto("/ui/repository?" + urlencode({"name": "rest/app", "as_of": moment["as_of"]}))
    expect(page.get_by_role("status").filter(has_text="as it was at")).to_be_visible()
    expect(page.get_by_role("button", name="Restore to this moment")).to_have_count(0)
