"""skopeo through the Docker token flow, as users and robots (--creds, --src-creds, --dest-creds)."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from tests.support.auth import PASSWORD, create_user, grant
from tests.support.images import build_image_layout
from tests.support.server import REPO_ROOT
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e


def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return build_image_layout(tmp_path_factory.mktemp("auth-image") / "layout", "1.0", text="auth")


@pytest.fixture(scope="module")
def accounts(live_server):
    with live_server.client() as client:
        for name, role in (("dev", "developer"), ("viewer", "guest")):
            create_user(client, name)
            grant(client, "team", name, role)
        robot = client.post("/api/v1/robots", json={"name": "ci", "project": "team", "permissions": [
            {"project": "team", "resource": "repository", "action": action} for action in ("pull", "push")]})
        assert robot.status_code == 201, robot.text
        return {"robot": f"{robot.json()['name']}:{robot.json()['secret']}"}


def push(image, live_server, repo: str, creds: str | None) -> subprocess.CompletedProcess[str]:
    flags = ["--dest-creds", creds] if creds else ["--dest-no-creds"]
    return skopeo("copy", "--dest-tls-verify=false", *flags, f"oci:{image.layout}:1.0",
                  f"docker://{live_server.host}/{repo}")


def test_developer_pushes_and_guest_pulls(image, live_server, accounts, tmp_path):
    result = push(image, live_server, "team/authapp:1.0", f"dev:{PASSWORD}")
    assert result.returncode == 0, result.stderr
    inspected = skopeo("inspect", "--tls-verify=false", "--creds", f"viewer:{PASSWORD}",
                       f"docker://{live_server.host}/team/authapp:1.0")
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["Digest"] == image.manifest_digest
    pulled = skopeo("copy", "--src-tls-verify=false", "--src-creds", f"viewer:{PASSWORD}",
                    f"docker://{live_server.host}/team/authapp:1.0", f"oci:{tmp_path / 'out'}:1.0")
    assert pulled.returncode == 0, pulled.stderr


def test_guest_push_is_denied(image, live_server, accounts):
    result = push(image, live_server, "team/guestpush:1.0", f"viewer:{PASSWORD}")
    assert result.returncode != 0
    assert "denied" in result.stderr


def test_wrong_password_is_refused(image, live_server, accounts):
    result = push(image, live_server, "team/wrongpw:1.0", "dev:not-the-password")
    assert result.returncode != 0
    assert "unauthorized" in result.stderr.lower() or "invalid" in result.stderr.lower()


def test_robot_pushes_and_pulls(image, live_server, accounts, tmp_path):
    result = push(image, live_server, "team/robotapp:1.0", accounts["robot"])
    assert result.returncode == 0, result.stderr
    pulled = skopeo("copy", "--src-tls-verify=false", "--src-creds", accounts["robot"],
                    f"docker://{live_server.host}/team/robotapp:1.0", f"oci:{tmp_path / 'out'}:1.0")
    assert pulled.returncode == 0, pulled.stderr
    outside = push(image, live_server, "race/robotapp:1.0", accounts["robot"])
    assert outside.returncode != 0


def test_anonymous_pulls_public_projects_only(image, live_server, accounts):
    assert push(image, live_server, "library/open:1.0", f"dev:{PASSWORD}").returncode != 0  # dev is no member
    with live_server.client() as client:
        grant(client, "library", "dev", "developer")
    assert push(image, live_server, "library/open:1.0", f"dev:{PASSWORD}").returncode == 0
    public = skopeo("inspect", "--tls-verify=false", "--no-creds", f"docker://{live_server.host}/library/open:1.0")
    assert public.returncode == 0, public.stderr
    assert push(image, live_server, "team/private:1.0", f"dev:{PASSWORD}").returncode == 0
    private = skopeo("inspect", "--tls-verify=false", "--no-creds", f"docker://{live_server.host}/team/private:1.0")
    assert private.returncode != 0 and "unauthorized" in private.stderr.lower()


def test_documented_push_only_robot_pushes(image, live_server):
    """docs/access-control.md's example, `robots create ci --project web --permission
    web:repository:push`, made with the command line beside the running server: a push needs to
    read (skopeo checks for the blobs first), so push implies pull."""
    created = subprocess.run(
        [sys.executable, "-m", "cli", "admin", "robots", "create", "pushonly", "--project", "team",
         "--permission", "team:repository:push", "--days", "90", "--data-dir", str(live_server.data_dir)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    robot = json.loads(created.stdout)
    creds = f"{robot['name']}:{robot['secret']}"
    wait_until(lambda: httpx.get(f"{live_server.url}/service/token", auth=(robot["name"], robot["secret"]))
               .status_code == 200, what="the server knowing the robot the command line created")
    result = push(image, live_server, "team/pushonly:1.0", creds)
    assert result.returncode == 0, result.stderr
    outside = push(image, live_server, "race/pushonly:1.0", creds)
    assert outside.returncode != 0
