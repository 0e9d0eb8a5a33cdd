"""Artifacts of different kinds in the UI: each gets the pull command of its client (docker for
images, helm for charts, oras for other artifacts); a tagged SBOM is found by its tag and counted
alike on the project and repository pages; viewing an artifact is no pull (issue 17, items 3-5)."""

from __future__ import annotations

import json
import time

import pytest
from playwright.sync_api import Page, expect

from tests.support.oci import OCI_MANIFEST, descriptor, digest_of, push_blob, push_image, push_referrer
from tests.support.server import LiveServer, start_server

HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
ORAS_UNKNOWN = "application/vnd.unknown.artifact.v1"
EMPTY = "application/vnd.oci.empty.v1+json"


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory) -> LiveServer:
    """`portlog serve` recording pulls every second, so that a test sees them soon."""
    root = tmp_path_factory.mktemp("ui-kinds")
    server = start_server(root / "data", root / "serve.log", extra_env={"PORTLOG_PULL_RECORD_SECONDS": "1"},
                          projects=("kinds",))
    yield server
    server.stop()


def push_artifact(client, name: str, tag: str, config_type: str, config: bytes, layer_type: str,
                  layer: bytes, **extra) -> str:
    """An OCI manifest as helm push and oras push write them; returns its digest."""
    push_blob(client, name, config)
    push_blob(client, name, layer)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, **extra,
                           "config": descriptor(config_type, config),
                           "layers": [descriptor(layer_type, layer)]}).encode()
    response = client.put(f"/v2/{name}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text
    return digest_of(manifest)


def copied_by(page: Page, button_name: str) -> str:
    page.get_by_role("button", name=button_name, exact=True).click()
    expect(page.get_by_text("Copied")).to_be_visible()
    return page.evaluate("navigator.clipboard.readText()")


def test_each_kind_of_artifact_gets_the_pull_command_of_its_client(admin_page: Page, ui_server):
    page, host = admin_page, ui_server.host
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    with ui_server.client() as client:
        image, _ = push_image(client, "kinds/app", "1.0")
        chart = push_artifact(client, "kinds/mychart", "0.1.0", HELM_CONFIG, b'{"name":"mychart","version":"0.1.0"}',
                              HELM_CHART, b"chart-tarball")
        notes = push_artifact(client, "kinds/notes", "notes", EMPTY, b"{}", "application/vnd.oci.image.layer.v1.tar",
                              b"some notes", artifactType=ORAS_UNKNOWN)

    page.goto("/ui/repository?name=kinds/app")
    expect(page.locator(".pull code")).to_have_text(f"docker pull {host}/kinds/app:1.0")
    page.goto("/ui/repository?name=kinds/mychart")
    expect(page.locator(".pull code")).to_have_text(
        f"helm pull oci://{host}/kinds/mychart --version 0.1.0 --plain-http")
    page.goto("/ui/repository?name=kinds/notes")
    expect(page.locator(".pull code")).to_have_text(f"oras pull --plain-http {host}/kinds/notes:notes")
    assert "docker" not in page.locator("main").inner_text()

    # The per-tag copy buttons and the artifact page's pull by digest fit the kind too.
    copied = {}
    for name, digest in (("kinds/app", image), ("kinds/mychart", chart), ("kinds/notes", notes)):
        page.goto(f"/ui/artifact?name={name}&digest={digest}")
        expect(page.get_by_role("heading", level=1)).to_contain_text(f"{name}@")
        copied[name] = copied_by(page, "Copy the pull command")
    assert copied == {
        "kinds/app": f"docker pull {host}/kinds/app@{image}",
        "kinds/mychart": f"helm pull oci://{host}/kinds/mychart@{chart} --plain-http",
        "kinds/notes": f"oras pull --plain-http {host}/kinds/notes@{notes}",
    }
    page.goto("/ui/repository?name=kinds/notes")
    assert copied_by(page, "Copy the pull command of notes") == f"oras pull --plain-http {host}/kinds/notes:notes"


def test_a_tagged_sbom_is_found_by_its_tag_and_counted_alike(admin_page: Page, ui_server):
    page = admin_page
    with ui_server.client() as client:
        subject_digest, subject = push_image(client, "kinds/signed", "v1")
        push_referrer(client, "kinds/signed", subject, "application/vnd.dev.cosign.artifact.sig.v1+json", b"sig")
        sbom = push_referrer(client, "kinds/signed", subject, "application/spdx+json", b"{}", tag="sbom")

    page.goto("/ui/repository?name=kinds/signed&tag=sbom")
    expect(page.get_by_role("table")).to_contain_text("Artifacts: 1")
    expect(page.get_by_role("row").filter(has_text=sbom[:19])).to_contain_text("sbom")
    page.goto("/ui/repository?name=kinds/signed")
    expect(page.get_by_role("table")).to_contain_text("Artifacts: 2")
    page.goto("/ui/projects/kinds")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="kinds/signed", exact=True))
    expect(row.get_by_role("cell").nth(1)).to_have_text("2")


def test_viewing_an_artifact_is_no_pull(admin_page: Page, ui_server):
    page = admin_page
    with ui_server.client() as client:
        digest, _ = push_image(client, "kinds/viewed", "v1")
    for _ in range(3):
        page.goto(f"/ui/artifact?name=kinds/viewed&digest={digest}")
        expect(page.locator("pre.json")).to_contain_text('"schemaVersion": 2')
    with ui_server.client() as client:
        # One pull by a registry client (by tag, the views were by digest), recorded within a
        # second or two: once it is, so is everything counted before it.
        assert client.get("/v2/kinds/viewed/manifests/v1", headers={"Accept": OCI_MANIFEST}).status_code == 200
        deadline = time.monotonic() + 20
        while tag_pull_time(client, "viewed", "v1") is None and time.monotonic() < deadline:
            time.sleep(0.3)
        assert tag_pull_time(client, "viewed", "v1") is not None
        assert client.get("/api/v2.0/projects/kinds/repositories/viewed").json()["pull_count"] == 1


def tag_pull_time(client, repository: str, tag: str) -> str | None:
    [found] = client.get(f"/api/v2.0/projects/kinds/repositories/{repository}/artifacts/{tag}/tags").json()
    return found["pull_time"]
