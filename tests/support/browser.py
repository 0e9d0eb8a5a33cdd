"""Helpers of the browser tests (tests/ui): Debian's Chromium driven by Playwright.

Screenshots land in test-artifacts/ui/ (`shot(page, "name")`); look at them after a run."""

from __future__ import annotations

import subprocess
from pathlib import Path

from playwright.sync_api import Page

from tests.support.server import REPO_ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "ui"


def sign_in(page: Page, username: str, password: str) -> None:
    response = page.context.request.post("/c/login", form={"principal": username, "password": password})
    assert response.ok, response.text()


def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def skopeo_copy(source: str, dest: str, creds: str) -> None:
    result = subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", creds, source, dest],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
