"""A follower (docs/time-travel.md) as users run it: an embedded leader and a scale-out follower
(PostgreSQL + S3) shipping its log with a robot's event-log:read credentials. skopeo pushes to
the leader and pulls the same digests from the follower; the follower answers as the leader at
the same position; writes to it are refused naming the leader; kill -9 mid-stream and a leader
restart resume without gaps or duplicates; the leader's garbage collection, under pushes, deletes
the follower's bytes too; promoted, it takes pushes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import TEST_PROJECTS, scale_out_environment
from tests.support.images import build_image_layout
from tests.support.oci import OCI_MANIFEST, digest_of, push_image
from tests.support.server import ADMIN_PASSWORD, REPO_ROOT, LiveServer, collect_garbage, start_server
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
SKOPEO_TIMEOUT = 120
CREDS = f"admin:{ADMIN_PASSWORD}"


def skopeo(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=SKOPEO_TIMEOUT)
    if check:
        assert result.returncode == 0, f"skopeo {' '.join(args)}: {result.stderr}"
    return result


class Follower:
    """The follower's process, restarted on the same port, data and database."""

    def __init__(self, root, env: dict[str, str]) -> None:
        self.root, self.env, self.starts = root, env, 0
        self.server: LiveServer | None = None

    def start(self) -> LiveServer:
        self.starts += 1
        port = self.server.port if self.server else None
        self.server = start_server(self.root / "data", self.root / f"serve-{self.starts}.log", extra_env=self.env,
                                   port=port)
        return self.server

    def status(self) -> dict:
        return httpx.get(f"{self.server.url}/api/v1/follow", auth=self.server.admin_auth, timeout=10).json()


@pytest.fixture(scope="module")
def leader(live_server):
    return live_server


@pytest.fixture(scope="module")
def follower(request, leader, tmp_path_factory):
    with leader.client() as client:
        response = client.post("/api/v1/robots", json={"name": "follower", "permissions": [
            {"project": "*", "resource": "event-log", "action": "read"}]})
        assert response.status_code == 201, response.text
        robot = response.json()
    env, cleanup = scale_out_environment(request)
    env |= {"PORTLOG_FOLLOW_URL": leader.url, "PORTLOG_FOLLOW_USERNAME": robot["name"],
            "PORTLOG_FOLLOW_PASSWORD": robot["secret"]}
    follower = Follower(tmp_path_factory.mktemp("follower"), env)
    follower.start()
    yield follower
    follower.server.stop()
    for step in cleanup:
        step()


def leader_head(leader) -> int:
    with leader.client() as client:
        return log_lines(client)[-1]["head"]


def log_events(client: httpx.Client) -> list[dict]:
    return [line for line in log_lines(client) if "heartbeat" not in line]


def log_lines(client: httpx.Client) -> list[dict]:
    response = client.get("/api/v1/log/events", params={"after": 0, "wait": "false"})
    assert response.status_code == 200, response.text
    return [orjson.loads(line) for line in response.text.splitlines()]


def caught_up(leader, follower) -> dict:
    head = leader_head(leader)
    return wait_until(lambda: (s := follower.status()).get("position", -1) >= head and s,
                      timeout=60, what=f"the follower reached {head}")


def test_skopeo_pulls_from_the_follower_what_was_pushed_to_the_leader(leader, follower, tmp_path):
    image = build_image_layout(tmp_path / "image", "1.0")
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", CREDS, f"oci:{image.layout}:1.0",
           f"docker://{leader.host}/team/app:1.0")
    caught_up(leader, follower)
    ref = f"docker://{follower.server.host}/team/app:1.0"
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", CREDS, ref],
                         capture_output=True, timeout=SKOPEO_TIMEOUT)
    assert raw.returncode == 0 and raw.stdout == image.manifest_bytes
    skopeo("copy", "--src-tls-verify=false", "--src-creds", CREDS, ref, f"oci:{tmp_path / 'out'}:1.0")
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == image.manifest_digest
    for digest in (image.config_digest, *image.layer_digests):
        assert (tmp_path / "out" / "blobs" / "sha256" / digest.removeprefix("sha256:")).is_file()


def test_the_follower_answers_as_the_leader_at_the_same_position(leader, follower):
    status = caught_up(leader, follower)
    assert status["state"] == "following" and status["lag_events"] == 0 and status["leader"] == leader.url
    with leader.client() as lead, follower.server.client() as follow:
        for path in ("/v2/_catalog", "/v2/team/app/tags/list", "/api/v1/projects", "/api/v1/repositories",
                     "/api/v1/audit-logs?page_size=100", "/api/v1/robots"):
            assert follow.get(path).json() == lead.get(path).json(), path
        assert log_events(follow) == log_events(lead)  # the same events at the same positions


def test_writes_to_the_follower_are_refused_naming_the_leader(leader, follower, tmp_path):
    image = build_image_layout(tmp_path / "image", "1.0", text="refused")
    pushed = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", CREDS, f"oci:{image.layout}:1.0",
                    f"docker://{follower.server.host}/team/app:refused", check=False)
    assert pushed.returncode != 0 and "denied" in pushed.stderr and leader.url in pushed.stderr
    with follower.server.client() as client:
        response = client.put("/api/v1/projects/team/members/admin", json={"role": "guest"})
        assert response.status_code == 403 and response.json()["leader"] == leader.url


def test_the_web_ui_shows_the_leader_the_position_and_the_lag(leader, follower):
    from playwright.sync_api import sync_playwright

    from tests.support.browser import CHROMIUM, CHROMIUM_FLAGS, shot, sign_in

    status = caught_up(leader, follower)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_context(base_url=follower.server.url, locale="en-US").new_page()
            sign_in(page, "admin", ADMIN_PASSWORD)
            page.goto("/ui/projects")
            banner = page.locator("#follower")
            banner.wait_for(state="visible", timeout=10_000)
            text = banner.inner_text()
            assert f"Read-only follower of {leader.url}" in text
            assert f"Log position {status['position']} of {status['leader_head']}" in text and "up to date" in text
            page.get_by_role("link", name="team", exact=True).wait_for()  # the leader's projects, read here
            shot(page, "follower-banner")
        finally:
            browser.close()


def test_kill_9_mid_stream_resumes_without_gaps_or_duplicates(leader, follower):
    start = follower.status()["position"]
    done = threading.Event()

    def push_many() -> None:
        with leader.client() as client:
            for i in range(40):
                push_image(client, f"{TEST_PROJECTS[0]}/burst", str(i), seed=f"burst-{i}")
        done.set()

    pusher = threading.Thread(target=push_many)
    pusher.start()
    wait_until(lambda: follower.status()["position"] > start + 10, what="the follower shipping the burst")
    os.kill(follower.server.process.pid, signal.SIGKILL)
    follower.server.process.wait()
    pusher.join()
    assert done.is_set()
    follower.start()
    caught_up(leader, follower)
    with leader.client() as lead, follower.server.client() as follow:
        shipped, original = log_events(follow), log_events(lead)
        assert shipped == original
        positions = [line["position"] for line in shipped]
        assert positions == sorted(set(positions))
        assert follow.get("/v2/team/burst/tags/list").json() == lead.get("/v2/team/burst/tags/list").json()


def test_a_leader_restart_interrupts_the_follower_which_then_resumes(leader, follower, live_server):
    caught_up(leader, follower)
    live_server.stop()
    wait_until(lambda: follower.status()["last_error"], what="the follower noticing the leader gone")
    assert follower.status()["state"] == "following"
    restarted = start_server(leader.data_dir, leader.log_path.with_name("serve-again.log"), port=leader.port)
    leader.process = restarted.process
    with leader.client() as client:
        digest, _ = push_image(client, "team/after", "1", seed="after-restart")
    caught_up(leader, follower)
    assert follower.status()["last_error"] is None
    with follower.server.client() as client:
        response = client.get("/v2/team/after/manifests/1", headers={"Accept": OCI_MANIFEST})
        assert response.status_code == 200 and response.headers["docker-content-digest"] == digest


def stores(client: httpx.Client, digest: str) -> bool:
    status = client.get(f"/api/v1/log/blobs/{digest}").status_code
    assert status in (200, 404), status
    return status == 200


def pulled_tags(host: str, repository: str, into: Path) -> dict[str, str]:
    """Every tag of the repository pulled with skopeo (manifest and blobs): tag -> manifest digest."""
    skopeo("sync", "--src", "docker", "--dest", "dir", "--src-tls-verify=false", "--src-creds", CREDS,
           f"{host}/{repository}", str(into))
    return {path.parent.name.rpartition(":")[2]: digest_of(path.read_bytes()) for path in into.glob("*/manifest.json")}


def test_the_leaders_garbage_collection_under_pushes_deletes_the_followers_bytes(leader, follower, tmp_path):
    doomed = build_image_layout(tmp_path / "doomed", "1.0", text="collected on the leader and its follower")
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", CREDS, f"oci:{doomed.layout}:1.0",
           f"docker://{leader.host}/team/doomed:1.0")
    doomed_digests = {doomed.manifest_digest, doomed.config_digest, *doomed.layer_digests}
    caught_up(leader, follower)
    with leader.client() as lead, follower.server.client() as follow:
        assert all(stores(follow, digest) for digest in doomed_digests)
        assert lead.delete("/api/v1/repositories/team/doomed").status_code == 204

    def push_during() -> None:  # over HTTP and with skopeo, while the collector runs
        with leader.client() as client:
            for i in range(10):
                push_image(client, "team/during", str(i), seed=f"during-gc-{i}")
        image = build_image_layout(tmp_path / "during", "1.0", text="pushed while the leader collects")
        skopeo("copy", "--dest-tls-verify=false", "--dest-creds", CREDS, f"oci:{image.layout}:1.0",
               f"docker://{leader.host}/team/during:skopeo")

    pusher = threading.Thread(target=push_during)
    time.sleep(1.1)  # nothing touched in the last second is collected
    pusher.start()
    with leader.client() as lead:
        run = collect_garbage(lead)
    pusher.join()
    caught_up(leader, follower)
    with leader.client() as lead, follower.server.client() as follow:
        collected = {digest for digest in doomed_digests if not stores(lead, digest)}
        assert doomed.manifest_digest in collected and run["blobs"] >= len(collected)
        assert {digest for digest in doomed_digests if not stores(follow, digest)} == collected
        assert log_events(follow) == log_events(lead)
        repositories = lead.get("/v2/_catalog").json()["repositories"]
        assert "team/doomed" not in repositories and "team/during" in repositories
        for repository in repositories:
            tags = lead.get(f"/v2/{repository}/tags/list").json()["tags"]
            leaders = {tag: lead.head(f"/v2/{repository}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
                       .headers["docker-content-digest"] for tag in tags}
            into = tmp_path / "pulled" / repository.replace("/", "_")
            assert pulled_tags(follower.server.host, repository, into) == leaders, repository


def test_promoted_the_follower_takes_pushes(leader, follower, tmp_path):
    caught_up(leader, follower)
    env = {**os.environ, **follower.env}
    result = subprocess.run([sys.executable, "-m", "cli", "follow", "promote", "--data-dir",
                             str(follower.root / "data")], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "promoted at position" in result.stdout
    wait_until(lambda: follower.status()["state"] == "promoted", what="the follower promoted")
    with follower.server.client() as client:  # the server notices within a second
        wait_until(lambda: client.post("/v2/team/promoted/blobs/uploads/").status_code == 202, timeout=5,
                   what="the promoted follower accepting writes")
    image = build_image_layout(tmp_path / "image", "1.0", text="pushed to the promoted follower")
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", CREDS, f"oci:{image.layout}:1.0",
           f"docker://{follower.server.host}/team/promoted:1.0")
    with follower.server.client() as client:
        assert client.get("/v2/team/promoted/tags/list").json()["tags"] == ["1.0"]
