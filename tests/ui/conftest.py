"""Browser tests of the web UI: Debian's Chromium (/usr/bin/chromium, from
scripts/install-system-packages) driven by Playwright against a live `portlog serve`.

Helpers (sign_in, shot, skopeo_copy) are in tests/support/browser.py."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.support.browser import CHROMIUM, CHROMIUM_FLAGS, sign_in
from tests.support.server import LiveServer, start_server


@pytest.fixture(scope="module")
def browser() -> Browser:
    """One Chromium per module (Playwright's sync API owns an event loop while it runs; it is
    not kept alive into other modules' tests)."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory) -> LiveServer:
    """A fresh `portlog serve` (embedded storage) for one test module."""
    root = tmp_path_factory.mktemp("ui")
    server = start_server(root / "data", root / "serve.log")
    yield server
    server.stop()


@pytest.fixture
def context(browser: Browser, ui_server: LiveServer) -> BrowserContext:
    created = browser.new_context(base_url=ui_server.url, locale="en-US", viewport={"width": 1280, "height": 800})
    created.set_default_timeout(10_000)
    yield created
    created.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A page whose script errors fail the test."""
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    assert not errors, f"script errors in the page: {errors}"


@pytest.fixture
def admin_page(page: Page, ui_server: LiveServer) -> Page:
    """The page, signed in as the administrator (through the API's login, sharing its cookies)."""
    sign_in(page, *ui_server.admin_auth)
    return page
