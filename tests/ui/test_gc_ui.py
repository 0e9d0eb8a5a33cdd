"""The garbage collection page: a dry run and a real run started from the page and followed to
the end, a run's log, the schedule; and what someone who is not an administrator gets."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from domain.collector import MIN_IDLE_SECONDS
from tests.support.browser import shot, sign_in, skopeo_copy
from tests.support.images import build_image_layout
from tests.support.server import LiveServer, start_server


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory) -> LiveServer:
    """`portlog serve` with no grace period, so that an image deleted just now is garbage at once."""
    root = tmp_path_factory.mktemp("ui-gc")
    server = start_server(root / "data", root / "serve.log", extra_env={"PORTLOG_GC_GRACE_SECONDS": "0"})
    yield server
    server.stop()


def newest_run(ui_server) -> dict:
    with ui_server.client() as client:
        return client.get("/api/v1/gc/runs").json()[0]


def test_start_gc_runs_from_the_page_and_follow_them(admin_page: Page, ui_server, tmp_path):
    with ui_server.client() as client:
        assert client.post("/api/v2.0/projects", json={"project_name": "gcdemo"}).status_code == 201
        image = build_image_layout(tmp_path / "layout", "v1")
        skopeo_copy(f"oci:{image.layout}:v1", f"docker://{ui_server.host}/gcdemo/app:v1", ui_server.admin_creds)
        deleted = client.delete(f"/v2/gcdemo/app/manifests/{image.manifest_digest}")
        assert deleted.status_code == 202, deleted.text
    # Even with no grace period, bytes unused for less than MIN_IDLE_SECONDS are kept: with a warm
    # browser the whole page flow below fits in that second, and the real run would free nothing.
    time.sleep(MIN_IDLE_SECONDS + 0.1)
    page = admin_page
    page.goto("/ui/gc")
    expect(page.get_by_role("heading", level=1)).to_have_text("Garbage collection")
    expect(page.get_by_text("No GC runs yet.")).to_be_visible()
    expect(page.get_by_text("No scheduled runs")).to_be_visible()

    # A dry run: nothing deleted, what would be freed reported, and its log.
    page.get_by_label("Dry run").check()
    page.get_by_role("button", name="Start GC").click()
    expect(page.locator("#notices")).to_contain_text("Dry run of garbage collection started")
    dry = newest_run(ui_server)
    assert dry["number"] == 1 and dry["id"] > 1  # its id is a log position: not what the page shows
    runs = page.get_by_role("table", name=re.compile("GC runs?, newest first"))
    expect(runs.locator("caption")).to_have_text("1 GC run, newest first")
    row = runs.get_by_role("row").filter(has=page.get_by_role("cell", name="1", exact=True))
    expect(row.get_by_text("Succeeded", exact=True)).to_be_visible(timeout=15_000)
    expect(row).to_contain_text(re.compile(r"Would free \d+ blobs?"))
    expect(runs).not_to_contain_text(f"#{dry['id']}")
    row.get_by_role("link", name="Log of GC run 1").click()
    expect(page).to_have_url(f"/ui/gc?run={dry['id']}")
    log = page.get_by_role("region", name="Log of GC run 1")
    expect(log.locator("pre")).to_contain_text(f"GC run {dry['id']} started by admin")
    expect(log.locator("pre")).to_contain_text("would free")  # (nothing, maybe: the deletion is that recent)
    shot(page, "gc-log")
    page.get_by_role("link", name="Close the log").click()
    expect(page).to_have_url("/ui/gc")
    expect(page.locator("pre")).to_have_count(0)

    # A real run, confirmed first: the blobs are freed.
    page.get_by_label("Dry run").uncheck()
    page.get_by_label("Delete untagged manifests first").check()
    page.get_by_role("button", name="Start GC").click()
    page.get_by_role("dialog").get_by_role("button", name="Start GC").click()
    expect(page.locator("#notices")).to_contain_text("Garbage collection started")
    real = newest_run(ui_server)
    assert real["id"] != dry["id"] and real["dry_run"] is False and real["delete_untagged"] is True
    assert real["number"] == 2
    expect(runs.locator("caption")).to_have_text("2 GC runs, newest first")
    row = runs.get_by_role("row").filter(has=page.get_by_role("cell", name="2", exact=True))
    expect(row.get_by_text("Succeeded", exact=True)).to_be_visible(timeout=15_000)
    expect(row).to_contain_text(re.compile(r"^(?!.*Would).*[1-9]\d* blobs?"))
    assert newest_run(ui_server)["blobs"] > 0
    shot(page, "gc")

    # The schedule: daily, then a custom cron, then none.
    page.get_by_role("button", name="Edit schedule").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Cron schedule")).to_be_hidden()
    dialog.get_by_label("Frequency").select_option("Daily")
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator("#notices")).to_contain_text("GC schedule saved")
    schedule = page.get_by_role("region", name="Schedule")
    expect(schedule).to_contain_text("Daily")
    expect(schedule.locator("code")).to_have_text("0 0 0 * * *")
    expect(schedule.get_by_text("Next run")).to_be_visible()
    page.get_by_role("button", name="Edit schedule").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Frequency").select_option("Custom")
    dialog.get_by_label("Cron schedule").fill("every day")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.locator(".error")).to_contain_text("cron: expected 5 fields")
    dialog.get_by_label("Cron schedule").fill("0 30 2 * * *")
    dialog.get_by_label("Dry run").check()
    dialog.get_by_role("button", name="Save").click()
    expect(schedule.locator("code")).to_have_text("0 30 2 * * *")
    expect(schedule).to_contain_text("Dry run")
    shot(page, "gc-scheduled")
    with ui_server.client() as client:
        assert client.get("/api/v2.0/system/gc/schedule").json()["schedule"]["cron"] == "0 30 2 * * *"
    page.get_by_role("button", name="Edit schedule").click()
    page.get_by_role("dialog").get_by_label("Frequency").select_option("None")
    page.get_by_role("dialog").get_by_role("button", name="Save").click()
    expect(page.get_by_text("No scheduled runs")).to_be_visible()

    page.set_viewport_size({"width": 400, "height": 800})
    page.goto(f"/ui/gc?run={real['id']}")
    expect(page.locator("pre")).to_contain_text(f"GC run {real['id']}")
    shot(page, "gc-narrow")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_label("Language").select_option("zh-CN")
    expect(page.get_by_role("heading", level=1)).to_have_text("垃圾清理")
    expect(page.get_by_role("button", name="立即清理垃圾")).to_be_visible()
    shot(page, "gc-zh-CN")


def test_someone_who_is_not_an_administrator_is_refused(page: Page, ui_server):
    with ui_server.client() as client:
        created = client.post("/api/v2.0/users", json={"username": "dev", "password": "Dev-Pass-123",
                                                       "email": "dev@example.com", "realname": "Dev"})
        assert created.status_code == 201, created.text
    sign_in(page, "dev", "Dev-Pass-123")
    page.goto("/ui/projects")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Projects")).to_be_visible()
    expect(nav.get_by_role("link", name="Replication")).to_have_count(0)
    expect(nav.get_by_role("link", name="Garbage collection")).to_have_count(0)
    page.goto("/ui/gc")
    expect(page.get_by_role("alert")).to_contain_text("Only system administrators run garbage collection")
    expect(page.get_by_role("button", name="Start GC")).to_have_count(0)
    shot(page, "gc-refused")
    page.goto("/ui/replication")
    expect(page.get_by_role("alert")).to_contain_text("Only system administrators manage replication")
    assert page.request.get("/api/v2.0/system/gc").status == 403
    assert page.request.get("/api/v2.0/registries").status == 403
