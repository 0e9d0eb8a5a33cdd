"""The replication page against a real peer (the Debian `docker-registry`): an endpoint created
and its connection tested, a push-based policy, an execution started with "Replicate" and
followed live in the executions table until it succeeds, its task, and the image on the peer."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.support.browser import shot, skopeo_copy
from tests.support.images import build_image_layout


def test_replicate_an_image_to_a_docker_registry_from_the_page(admin_page: Page, ui_server, distribution, tmp_path):
    with ui_server.client() as client:
        created = client.post("/api/v2.0/projects", json={"project_name": "team", "metadata": {"public": "false"}})
        assert created.status_code == 201, created.text
    image = build_image_layout(tmp_path / "layout", "v1")
    skopeo_copy(f"oci:{image.layout}:v1", f"docker://{ui_server.host}/team/app:v1", ui_server.admin_creds)
    page = admin_page

    # Registry endpoints: the empty state, a failed then a good connection test, then the endpoint.
    page.goto("/ui/replication")
    expect(page.get_by_role("tab", name="Registry endpoints")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_text("No registry endpoints yet.")).to_be_visible()
    page.get_by_role("button", name="New endpoint").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Endpoint name").fill("peer")
    expect(dialog.get_by_label("Type", exact=True)).to_have_value("docker-registry")
    dialog.get_by_label("URL").fill("http://127.0.0.1:9")
    dialog.get_by_role("button", name="Test connection").click()
    expect(dialog.get_by_role("alert").filter(has_text="failed to ping")).to_contain_text(
        "failed to ping the registry http://127.0.0.1:9")
    dialog.get_by_label("URL").fill(distribution.url)
    dialog.get_by_role("button", name="Test connection").click()
    expect(dialog.get_by_text("Connection succeeded")).to_be_visible()
    shot(page, "replication-endpoint-dialog")
    dialog.get_by_role("button", name="Create").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    endpoints = page.get_by_role("table", name=re.compile("registry endpoints?"))
    expect(endpoints.get_by_role("row", name=re.compile("peer"))).to_contain_text(distribution.url)
    page.get_by_role("button", name="Test connection to peer").click()
    expect(page.locator("#notices")).to_contain_text("Connection to peer succeeded")
    shot(page, "replication-endpoints")

    # A push-based policy: team/** tagged v*, into the namespace mirror, slowed down so that the
    # execution is seen in progress before it ends.
    page.get_by_role("tab", name="Policies").click()
    expect(page).to_have_url("/ui/replication?tab=policies")
    page.get_by_role("button", name="New policy").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Policy name").fill("out")
    expect(dialog.get_by_label("Replication mode")).to_have_value("push")
    expect(dialog.get_by_label("Destination registry")).to_have_value(re.compile(r"^\d+$"))
    dialog.get_by_label("Name", exact=True).fill("team/**")
    dialog.get_by_label("Tag", exact=True).fill("v*")
    dialog.get_by_label("Destination namespace").fill("mirror")
    expect(dialog.get_by_label("Cron schedule")).to_be_hidden()
    dialog.get_by_label("Trigger").select_option("scheduled")
    expect(dialog.get_by_label("Cron schedule")).to_be_visible()
    dialog.get_by_label("Trigger").select_option("manual")
    dialog.get_by_label("Bandwidth per task").fill("256")
    shot(page, "replication-policy-dialog")
    dialog.get_by_role("button", name="Create").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    row = page.get_by_role("row", name=re.compile("out"))
    expect(row).to_contain_text("Push to peer")
    expect(row).to_contain_text("Name matches team/**")
    expect(row).to_contain_text("Tag matches v*")
    shot(page, "replication-policies")

    # Replicate: the executions table shows the execution in progress, then succeeded, with no reload.
    page.evaluate("window.notReloaded = true")
    page.get_by_role("button", name="Replicate out now").click()
    expect(page).to_have_url("/ui/replication?tab=executions")
    with ui_server.client() as client:
        [execution] = client.get("/api/v2.0/replication/executions").json()
    number = execution["id"]
    executions = page.get_by_role("table", name=re.compile("executions?, newest first"))
    execution_row = executions.get_by_role("row", name=re.compile(f"#{number}\\b"))
    expect(execution_row.get_by_text("In progress", exact=True)).to_be_visible()
    expect(page.get_by_text("Updating every 2 seconds")).to_be_visible()
    shot(page, "replication-executions-running")
    expect(execution_row.get_by_text("Succeeded", exact=True).first).to_be_visible(timeout=25_000)
    assert page.evaluate("window.notReloaded") is True
    expect(page.get_by_text("Updating every 2 seconds")).to_have_count(0)
    expect(page.locator("#notices")).to_contain_text(f"Execution #{number} ended: Succeeded")
    shot(page, "replication-executions")

    # The execution's tasks.
    execution_row.get_by_role("link", name=f"Execution #{number}").click()
    expect(page).to_have_url(f"/ui/replication?tab=executions&execution={number}")
    tasks = page.get_by_role("table", name=f"Tasks of execution #{number} (1)")
    task = tasks.get_by_role("row").filter(has_text="team/app:v1")
    expect(task).to_contain_text("mirror/app:v1")
    expect(task.get_by_text("Succeeded", exact=True)).to_be_visible()
    log_link = task.get_by_role("link", name="Log of task")
    expect(log_link).to_have_attribute("href", re.compile(r"/tasks/\d+/log$"))
    log = page.request.get(log_link.get_attribute("href"))  # with the session's cookie, as the browser follows it
    assert log.ok and "copy team/app:v1 -> mirror/app" in log.text(), log.text()
    shot(page, "replication-execution")
    page.go_back()
    expect(page).to_have_url("/ui/replication?tab=executions")
    expect(page.get_by_role("link", name=f"Execution #{number}")).to_be_visible()

    tags = httpx.get(f"{distribution.url}/v2/mirror/app/tags/list", timeout=10)
    assert tags.status_code == 200 and tags.json()["tags"] == ["v1"], tags.text

    # Editing a policy starts from what it holds; an endpoint in use is not deleted, and says why.
    page.get_by_role("tab", name="Policies").click()
    expect(page.get_by_role("link", name="Executions of out")).to_have_attribute("href", re.compile(r"policy=\d+"))
    page.get_by_role("button", name="Edit policy out").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Policy name")).to_be_disabled()
    expect(dialog.get_by_label("Name", exact=True)).to_have_value("team/**")
    expect(dialog.get_by_label("Bandwidth per task")).to_have_value("256")
    dialog.get_by_label("Tag", exact=True).fill("v0*")
    dialog.get_by_label("Tags", exact=True).select_option("excludes")
    dialog.get_by_role("button", name="Save").click()
    expect(page.get_by_role("row", name=re.compile("out"))).to_contain_text("Tag excludes v0*")
    with ui_server.client() as client:
        [policy] = client.get("/api/v2.0/replication/policies").json()
    assert policy["filters"] == [{"type": "name", "value": "team/**", "decoration": "matches"},
                                 {"type": "tag", "value": "v0*", "decoration": "excludes"}]
    assert policy["dest_namespace"] == "mirror" and policy["speed"] == 256
    page.get_by_role("tab", name="Registry endpoints").click()
    page.get_by_role("button", name="Delete endpoint peer").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.get_by_role("alert")).to_contain_text("the registry peer is used by replication policies: out")

    # A phone's width, and the page in Simplified Chinese.
    shot(page, "replication-endpoints-in-use")
    page.set_viewport_size({"width": 400, "height": 800})
    page.goto("/ui/replication?tab=executions")
    expect(page.get_by_role("link", name=f"Execution #{number}")).to_be_visible()
    shot(page, "replication-executions-narrow")
    page.goto(f"/ui/replication?tab=executions&execution={number}")
    expect(page.get_by_role("table", name=f"Tasks of execution #{number} (1)")).to_be_visible()
    shot(page, "replication-execution-narrow")
    page.goto("/ui/replication?tab=policies")
    expect(page.get_by_role("row", name=re.compile("out"))).to_be_visible()
    shot(page, "replication-policies-narrow")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_label("Language").select_option("zh-CN")
    expect(page.get_by_role("heading", level=1)).to_have_text("复制管理")
    expect(page.get_by_role("tab", name="复制规则")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("row", name=re.compile("out"))).to_contain_text("推送到 peer")
    shot(page, "replication-policies-zh-CN")


def test_counts_take_the_singular_or_the_plural(admin_page: Page, ui_server, distribution):
    def add(name: str) -> None:
        response = client.post("/api/v2.0/registries", json={"name": name, "url": distribution.url,
                                                              "type": "docker-registry"})
        assert response.status_code == 201, response.text

    with ui_server.client() as client:
        if not client.get("/api/v2.0/registries").json():
            add("first")
        assert len(client.get("/api/v2.0/registries").json()) == 1
    page = admin_page
    page.goto("/ui/replication")
    caption = page.locator("main table caption")
    expect(caption).to_have_text("1 registry endpoint")
    with ui_server.client() as client:
        add("second")
    page.reload()
    expect(caption).to_have_text("2 registry endpoints")
    page.get_by_label("Language").select_option("zh-CN")
    expect(caption).to_have_text("共 2 个目标仓库")
