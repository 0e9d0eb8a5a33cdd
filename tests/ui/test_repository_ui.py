"""The main path through the UI: create a project, push an image with skopeo and see its tag
appear, look at the artifact, delete a tag; and what a guest may not do."""

from __future__ import annotations

import json
import re
import subprocess
import time
from datetime import datetime, timezone

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import shot, sign_in, skopeo_copy
from tests.support.images import build_image_layout, build_multiarch_layout
from tests.support.oci import push_referrer


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return build_image_layout(tmp_path_factory.mktemp("layout") / "oci", tag="1.0", text="hello from the ui test")


def test_create_a_project_push_see_the_tag_and_delete_it(admin_page: Page, ui_server, image):
    page = admin_page
    page.goto("/ui/projects")
    page.get_by_role("button", name="New project").click()
    page.get_by_label("Project name", exact=True).fill("webteam")
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url("/ui/projects/webteam")

    skopeo_copy(f"oci:{image.layout}:1.0", f"docker://{ui_server.host}/webteam/app:1.0", ui_server.admin_creds)
    skopeo_copy(f"oci:{image.layout}:1.0", f"docker://{ui_server.host}/webteam/app:stable", ui_server.admin_creds)
    page.goto("/ui/repository?name=webteam/app")
    row = page.get_by_role("row").filter(has_text=image.manifest_digest[:19])
    expect(row).to_contain_text("1.0")
    expect(row).to_contain_text("stable")
    expect(row).to_contain_text("Image")
    expect(page.get_by_text(f"docker pull {ui_server.host}/webteam/app:")).to_be_visible()
    page.set_viewport_size({"width": 1280, "height": 720})
    shot(page, "repository")

    page.get_by_role("button", name="Delete tag stable").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete tag stable").click()
    expect(page.get_by_role("button", name="Delete tag stable")).to_have_count(0)
    expect(row).to_contain_text("1.0")
    with ui_server.client() as client:
        assert client.get("/v2/webteam/app/manifests/stable").status_code == 404
        assert client.get("/v2/webteam/app/manifests/1.0").status_code == 200


def test_the_artifact_page_shows_config_layers_and_referrers(admin_page: Page, ui_server, image):
    page = admin_page
    with ui_server.client() as client:
        client.post("/api/v1/projects", json={"name": "sigs"})
    skopeo_copy(f"oci:{image.layout}:1.0", f"docker://{ui_server.host}/sigs/app:1.0", ui_server.admin_creds)
    with ui_server.client() as client:
        signature = push_referrer(client, "sigs/app", image.manifest_bytes,
                                  "application/vnd.dev.cosign.artifact.sig.v1+json", b"signed")
        sbom = push_referrer(client, "sigs/app", image.manifest_bytes, "application/spdx+json", b"{}")

    page.goto("/ui/repository?name=sigs/app")
    subject_row = page.get_by_role("row").filter(has_text="1.0")
    expect(subject_row.get_by_role("link", name="cosign signature")).to_be_visible()
    expect(subject_row.get_by_role("link", name="SBOM")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text=signature[:19])).to_have_count(0)  # nested, not listed

    subject_row.get_by_role("link", name=image.manifest_digest[:19]).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("sigs/app@")
    layers = page.get_by_role("table").filter(has=page.get_by_text("Layers: 1,"))
    expect(layers).to_contain_text(image.layer_digests[0])
    expect(page.get_by_text("linux/amd64").first).to_be_visible()
    referrers = page.get_by_role("table").filter(has=page.get_by_text("attestations): 2"))
    expect(referrers).to_contain_text("application/spdx+json")
    expect(referrers.get_by_role("link", name=sbom[:19])).to_be_visible()
    manifest = json.loads(page.locator("pre.json").inner_text())
    assert manifest["layers"][0]["digest"] == image.layer_digests[0]
    shot(page, "artifact")


def test_a_guest_sees_no_delete_buttons_and_the_api_refuses_anyway(page: Page, ui_server, image):
    with ui_server.client() as client:
        client.post("/api/v1/projects", json={"name": "guarded"})
        client.post("/api/v1/users", json={"username": "gina", "password": "Guest-Pass-1"})
        client.put("/api/v1/projects/guarded/members/gina", json={"role": "guest"})
    skopeo_copy(f"oci:{image.layout}:1.0", f"docker://{ui_server.host}/guarded/app:1.0", ui_server.admin_creds)
    sign_in(page, "gina", "Guest-Pass-1")
    page.goto("/ui/repository?name=guarded/app")
    expect(page.get_by_role("row").filter(has_text="1.0")).to_be_visible()
    expect(page.get_by_role("button", name="Delete tag 1.0")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete artifact", exact=False)).to_have_count(0)

    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "__csrf")
    refused = page.context.request.delete(
        f"/api/v2.0/projects/guarded/repositories/app/artifacts/{image.manifest_digest}/tags/1.0",
        headers={"X-Harbor-CSRF-Token": csrf})
    assert refused.status == 403
    shot(page, "repository-guest")


def test_the_repository_page_reads_at_phone_width(admin_page: Page, ui_server, image):
    page = admin_page
    with ui_server.client() as client:
        client.post("/api/v1/projects", json={"name": "narrow"})
    skopeo_copy(f"oci:{image.layout}:1.0", f"docker://{ui_server.host}/narrow/app:1.0", ui_server.admin_creds)
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto("/ui/repository?name=narrow/app")
    expect(page.get_by_role("row").filter(has_text="1.0")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at phone width ({width}px)"
    shot(page, "repository-narrow")


def test_the_artifact_table_fits_a_1400_pixel_window(admin_page: Page, ui_server, image, tmp_path):
    """Long tags, referrers, a multi-platform index and an artifact with a long type: the table
    still fits its box at 1400 px (no sideways scrolling, Actions in view), each digest on one line."""
    page = admin_page
    with ui_server.client() as client:
        client.post("/api/v1/projects", json={"name": "wide"})
    for tag in ("1.0", "stable", "release-2026-12-candidate"):
        skopeo_copy(f"oci:{image.layout}:1.0", f"docker://{ui_server.host}/wide/app:{tag}", ui_server.admin_creds)
    multi = build_multiarch_layout(tmp_path / "multi", tag="multi")
    skopeo_copy(f"oci:{multi.layout}:multi", f"docker://{ui_server.host}/wide/app:multi-platform-build",
                ui_server.admin_creds)
    with ui_server.client() as client:
        push_referrer(client, "wide/app", image.manifest_bytes, "application/vnd.dev.cosign.artifact.sig.v1+json", b"s")
        push_referrer(client, "wide/app", image.manifest_bytes, "application/spdx+json", b"{}")
        push_referrer(client, "wide/app", image.manifest_bytes,
                      "application/vnd.example.release-notes.v1+json", b"notes", tag="release-notes")
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto("/ui/repository?name=wide/app")
    expect(page.get_by_role("row").filter(has_text="release-2026-12-candidate")).to_be_visible()
    wrap = page.locator(".table-wrap")
    sizes = wrap.evaluate("el => [el.scrollWidth, el.clientWidth]")
    shot(page, "repository-1400")
    assert sizes[0] <= sizes[1], f"the artifact table scrolls sideways at 1400 px: {sizes}"
    expect(page.get_by_role("columnheader", name="Actions")).to_be_in_viewport()
    expect(page.get_by_role("columnheader", name="Last pulled")).to_be_in_viewport()
    expect(page.get_by_role("button", name="Delete artifact").first).to_be_in_viewport()
    digest = page.get_by_role("link", name=image.manifest_digest[:19] + "…")
    expect(digest).to_have_attribute("title", image.manifest_digest)
    assert digest.evaluate("el => el.getClientRects().length") == 1, "the digest wraps"
    expect(page.get_by_role("button", name=f"Copy the digest {image.manifest_digest}")).to_be_visible()


def test_the_repository_as_of_a_moment_and_the_command_that_pulls_it(admin_page: Page, ui_server, tmp_path):
    """The moment picker shows the artifacts and tags of the past, and the pull command it shows
    (the registry's as-of view) pulls the digest the tag had then."""
    with ui_server.client() as client:
        response = client.post("/api/v2.0/projects", json={"project_name": "pastui", "metadata": {"public": "false"}})
        assert response.status_code == 201, response.text
    first = build_image_layout(tmp_path / "first", tag="1.0", text="the first 1.0")
    second = build_image_layout(tmp_path / "second", tag="1.0", text="the second 1.0")
    skopeo_copy(f"oci:{first.layout}:1.0", f"docker://{ui_server.host}/pastui/app:1.0", ui_server.admin_creds)
    time.sleep(1.1)
    moment = datetime.now(timezone.utc).replace(microsecond=0)
    time.sleep(1.1)
    skopeo_copy(f"oci:{second.layout}:1.0", f"docker://{ui_server.host}/pastui/app:1.0", ui_server.admin_creds)

    page = admin_page
    page.goto("/ui/repository?name=pastui/app")
    expect(page.get_by_role("row").filter(has_text=second.manifest_digest[:19])).to_contain_text("1.0")
    local = page.evaluate("""iso => { const d = new Date(iso);
        return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19); }""",
                          moment.isoformat())
    page.get_by_label("View as of (your local time)").fill(local)
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"as_of=\d{4}-\d\d-\d\dT\d\d%3A\d\d%3A\d\dZ"))
    expect(page.locator(".asof")).to_contain_text("Showing pastui/app as it was at")
    expect(page.get_by_role("row").filter(has_text=first.manifest_digest[:19])).to_contain_text("1.0")
    expect(page.get_by_role("row").filter(has_text=second.manifest_digest[:19])).to_have_count(0)
    view = f"{ui_server.host}/as-of/{moment.strftime('%Y%m%dt%H%M%Sz')}/pastui/app"
    command = page.locator(".pull code")
    expect(command).to_have_text(f"docker pull {view}:1.0")
    shot(page, "repository-as-of")

    pulled = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--creds", ui_server.admin_creds,
                             f"docker://{view}:1.0"], capture_output=True, text=True, timeout=120)
    assert pulled.returncode == 0, pulled.stderr
    assert json.loads(pulled.stdout)["Digest"] == first.manifest_digest

    page.reload()  # the moment is in the address: a shared link shows the same past
    expect(page.get_by_label("View as of (your local time)")).to_have_value(local)
    page.get_by_role("link", name=first.manifest_digest[:19]).click()  # the artifact then, from the as-of view
    expect(page.locator(".asof")).to_contain_text("Showing the artifact as it was at")
    facts = page.locator("dl.facts").first
    expect(facts).to_contain_text("1.0")
    expect(facts).to_contain_text(f"{view}@{first.manifest_digest}")
    expect(page.locator("pre.json")).to_contain_text(first.config_digest)
    shot(page, "artifact-as-of")
    page.get_by_role("link", name="Back to the repository at that moment").click()
    page.get_by_role("link", name="Back to now").click()
    expect(page.get_by_role("row").filter(has_text=second.manifest_digest[:19])).to_contain_text("1.0")

    page.goto(f"/ui/projects/pastui?tab=quota&as_of={moment.isoformat().replace('+00:00', 'Z')}")
    panel = page.get_by_role("tabpanel", name="Quota")
    expect(panel.get_by_role("status")).to_contain_text("Showing the quota as it was at")
    expect(panel).to_contain_text("1 (no limit)")  # the first 1.0 only
