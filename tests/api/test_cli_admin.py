"""`portlog admin`, `portlog audit` and `portlog keys` as a real subprocess on a data directory."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.server import ADMIN_PASSWORD, REPO_ROOT


def portlog(data_dir, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api.cli", *args, "--data-dir", str(data_dir)],
                          cwd=REPO_ROOT, input=stdin, capture_output=True, text=True, timeout=60,
                          env={"PORTLOG_ADMIN_PASSWORD": ADMIN_PASSWORD, "PATH": "/usr/bin:/bin"})


def test_admin_commands_round_trip(tmp_path):
    data = tmp_path / "data"
    assert portlog(data, "admin", "users", "create", "bob", "--password-stdin", stdin="Bob-Pass-12\n").returncode == 0
    assert portlog(data, "admin", "projects", "create", "web").returncode == 0
    assert portlog(data, "admin", "members", "set", "web", "bob", "maintainer").returncode == 0
    members = json.loads(portlog(data, "admin", "members", "list", "web").stdout)
    assert {"principal": "bob", "role": "maintainer", "repository": None} in members
    robot = json.loads(portlog(data, "admin", "robots", "create", "ci", "--project", "web",
                               "--permission", "web:repository:push").stdout)
    assert robot["name"] == "robot$web+ci" and len(robot["secret"]) > 20
    assert portlog(data, "admin", "robots", "disable", robot["name"]).returncode == 0
    robots = json.loads(portlog(data, "admin", "robots", "list", "--project", "web").stdout)
    assert robots[0]["disabled"] is True and "secret" not in robots[0]
    lines = portlog(data, "audit", "--project", "web").stdout.splitlines()
    operations = [json.loads(line)["operation"] for line in lines]
    assert operations == ["project.created", "project.member_added", "robot.created", "robot.disabled"]


def test_errors_have_clear_messages_and_exit_codes(tmp_path):
    data = tmp_path / "data"
    missing = portlog(data, "admin", "members", "set", "nope", "admin", "developer")
    assert missing.returncode == 1 and "project not found" in missing.stderr
    weak = portlog(data, "admin", "users", "create", "weak", "--password-stdin", stdin="short\n")
    assert weak.returncode == 1 and "password must be" in weak.stderr
    usage = portlog(data, "admin", "members", "set", "web", "bob", "emperor")
    assert usage.returncode == 2 and "invalid choice" in usage.stderr


def test_key_rotation_keeps_old_tokens_valid_until_retired(tmp_path):
    from adapters.signing_keys import SigningKeyFile

    data = tmp_path / "data"
    portlog(data, "admin", "projects", "list")
    first = SigningKeyFile(data / "token-keys.json").load()
    assert portlog(data, "keys", "rotate").returncode == 0
    rotated = SigningKeyFile(data / "token-keys.json").load()
    assert len(rotated) == 2 and rotated[1].kid == first[0].kid
    assert portlog(data, "keys", "rotate", "--retire").returncode == 0
    assert len(SigningKeyFile(data / "token-keys.json").load()) == 1
    assert (data / "token-keys.json").stat().st_mode & 0o777 == 0o600
