"""Issue 20's "done when" for OpenID Connect: an OIDC user logs in through the browser — Debian's
Chromium on glewlwyd's real login and consent pages, from Portlog's login page — lands signed in,
reads their CLI secret through the API, and skopeo logs in with it and pushes."""

from __future__ import annotations

import json
import subprocess

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.support.browser import CHROMIUM, CHROMIUM_FLAGS, shot
from tests.support.glewlwyd import new_username, oidc_provider  # noqa: F401
from tests.support.images import build_image_layout
from tests.support.server import start_server

pytestmark = pytest.mark.e2e
PASSWORD = "Oidc-pass-1"


@pytest.fixture(scope="module")
def server(tmp_path_factory, oidc_provider):  # noqa: F811
    root = tmp_path_factory.mktemp("oidc-e2e")
    live = start_server(root / "data", root / "serve.log", projects=("team",))
    oidc_provider.set_redirect_uris([f"{live.url}/c/oidc/callback"])
    with live.client() as admin:
        response = admin.put("/api/v2.0/configurations", json={
            "auth_mode": "oidc_auth", "oidc_name": "Glewlwyd", "oidc_endpoint": oidc_provider.issuer,
            "oidc_client_id": oidc_provider.client_id, "oidc_client_secret": oidc_provider.client_secret,
            "oidc_scope": "openid,profile,email", "oidc_groups_claim": "groups",
            "oidc_user_claim": "preferred_username", "oidc_auto_onboard": True})
        assert response.status_code == 200, response.text
    yield live
    live.stop()


def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)


def test_browser_login_then_skopeo_pushes_with_the_cli_secret(server, oidc_provider, tmp_path):  # noqa: F811
    username = new_username("web")
    oidc_provider.add_user(username, PASSWORD, groups=["devs"])
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(base_url=server.url, locale="en-US")
        page.set_default_timeout(15_000)
        page.goto("/ui/login")
        page.get_by_role("link", name="Log in via Glewlwyd").click()
        page.wait_for_url(f"{oidc_provider.url}/**")
        page.fill("#username", username)
        page.fill("#password", PASSWORD)
        page.keyboard.press("Enter")
        page.get_by_text("Continue").click()  # glewlwyd's consent screen
        page.wait_for_url(f"{server.url}/ui/projects")
        expect(page.locator("#user-menu")).to_contain_text(username)
        expect(page.get_by_role("heading", name="Projects")).to_be_visible()
        shot(page, "oidc-signed-in")
        session = page.context.request.get("/c/session").json()
        assert session["username"] == username
        me = page.context.request.get("/api/v2.0/users/current").json()
        secret = me["oidc_user_meta"]["secret"]
        browser.close()
    with server.client() as admin:
        granted = admin.put(f"/api/v1/projects/team/members/{username}", json={"role": "developer"})
        assert granted.status_code == 200, granted.text
    image = build_image_layout(tmp_path / "layout", "1.0", text="pushed by an OIDC user")
    wrong = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", f"{username}:{PASSWORD}",
                   f"oci:{image.layout}:1.0", f"docker://{server.host}/team/oidc-app:1.0")
    assert wrong.returncode != 0  # the provider's password is not Portlog's
    authfile = str(tmp_path / "auth.json")
    login = skopeo("login", "--tls-verify=false", "--authfile", authfile, "-u", username, "-p", secret, server.host)
    assert login.returncode == 0, login.stderr
    pushed = skopeo("copy", "--dest-tls-verify=false", "--authfile", authfile, f"oci:{image.layout}:1.0",
                    f"docker://{server.host}/team/oidc-app:1.0")
    assert pushed.returncode == 0, pushed.stderr
    inspected = skopeo("inspect", "--tls-verify=false", "--authfile", authfile,
                       f"docker://{server.host}/team/oidc-app:1.0")
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["Digest"] == image.manifest_digest
