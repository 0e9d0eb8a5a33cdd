"""Signing in and out through the login page, and what an anonymous visitor sees."""

from playwright.sync_api import Page, expect

from tests.support.browser import shot, sign_in


def test_login_page_signs_in_and_returns_to_the_page_asked_for(page: Page, ui_server):
    page.goto("/ui/audit")
    expect(page).to_have_url("/ui/login?next=%2Fui%2Faudit")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("invalid username or password")
    page.get_by_label("Password").fill(ui_server.admin_auth[1])
    shot(page, "login")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url("/ui/audit")
    expect(page.locator("#user-menu")).to_contain_text("admin")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url("/ui/login")
    page.goto("/ui/projects")
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    expect(page.get_by_role("button", name="New project")).to_have_count(0)


def test_a_change_through_a_session_needs_the_csrf_header(page: Page, ui_server):
    page.context.request.post("/c/login", form={"principal": "admin", "password": ui_server.admin_auth[1]})
    without = page.context.request.post("/api/v2.0/projects", data={"project_name": "forged"})
    assert without.status == 403
    assert "X-Harbor-CSRF-Token" in without.json()["errors"][0]["message"]
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "__csrf")
    with_header = page.context.request.post("/api/v2.0/projects", data={"project_name": "allowed"},
                                            headers={"X-Harbor-CSRF-Token": csrf})
    assert with_header.status == 201, with_header.text()


def test_the_session_cookie_is_no_bearer_token_for_the_registry(page: Page, ui_server):
    page.context.request.post("/c/login", form={"principal": "admin", "password": ui_server.admin_auth[1]})
    sid = next(c for c in page.context.cookies() if c["name"] == "sid")
    assert sid["httpOnly"] and sid["sameSite"] == "Strict"
    response = page.context.request.get("/v2/_catalog", headers={"Authorization": f"Bearer {sid['value']}"})
    assert response.status == 401


def test_the_interface_speaks_simplified_chinese(page: Page, ui_server):
    page.goto("/ui/login")
    page.get_by_label("Language").select_option("zh-CN")
    expect(page.get_by_role("heading", level=1)).to_have_text("登录 Portlog")
    expect(page.get_by_label("用户名")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    shot(page, "login-zh-CN")


def console_errors(page: Page) -> list[str]:
    """What the page logs as errors (a failed request shows there as one, named here by its URL)."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("response", lambda response: errors.append(f"{response.status} {response.url}")
            if response.status >= 400 else None)
    return errors


def test_an_anonymous_visitor_sees_no_errors_in_the_console(page: Page, ui_server):
    with ui_server.client() as api:
        created = api.post("/api/v2.0/projects", json={"project_name": "open", "metadata": {"public": "true"}})
        assert created.status_code == 201, created.text
        assert api.get("/api/v2.0/users/current", auth=None).status_code == 401  # Harbor's answer stays
    errors = console_errors(page)
    page.goto("/ui/login")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    page.goto("/ui/projects/open")
    expect(page.get_by_role("heading", level=1)).to_contain_text("open")
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert errors == []


def test_the_session_probe_answers_who_is_signed_in(page: Page, ui_server):
    anonymous = page.context.request.get("/c/session")
    assert anonymous.status == 200 and anonymous.json() is None
    sign_in(page, *ui_server.admin_auth)
    signed_in = page.context.request.get("/c/session")
    assert signed_in.status == 200
    assert signed_in.json()["username"] == "admin" and signed_in.json()["sysadmin_flag"] is True
    page.context.request.get("/c/log_out")
    assert page.context.request.get("/c/session").json() is None
