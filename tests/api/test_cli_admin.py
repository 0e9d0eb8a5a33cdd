"""`portlog admin`, `portlog audit` and `portlog keys` as a real subprocess on a data directory."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from contextlib import contextmanager

from starlette.testclient import TestClient

from adapters.registry_client import RegistryClient
from api.app import create_app
from api.bootstrap import bootstrap
from api.settings import Settings
from tests.support.oci import push_image
from tests.support.outbound import LOOPBACK, LOOPBACK_ALLOWED
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


@contextmanager
def registry_on(data):
    """The registry on `data`, in process, for a test to push through before the commands run."""
    services = bootstrap(Settings(data_dir=data, admin_password=ADMIN_PASSWORD, outbound_allow=LOOPBACK))
    try:
        with TestClient(create_app(services)) as client:
            client.auth = ("admin", ADMIN_PASSWORD)
            yield client
    finally:
        services.close()


def test_gc_and_repository_commands(tmp_path):
    data = tmp_path / "data"
    assert portlog(data, "admin", "projects", "create", "web").returncode == 0
    with registry_on(data) as client:
        push_image(client, "web/app", "v1", seed="cli")
    assert portlog(data, "admin", "repositories", "delete", "web/app").returncode == 0
    deleted = json.loads(portlog(data, "admin", "repositories", "deleted", "web").stdout)
    assert [r["name"] for r in deleted] == ["web/app"]
    assert portlog(data, "admin", "repositories", "undelete", "web/app").returncode == 0
    assert portlog(data, "admin", "repositories", "delete", "web/app").returncode == 0
    time.sleep(1.1)  # nothing touched in the last second is collected
    dry = portlog(data, "gc", "run", "--dry-run", "--grace-period", "0")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["status"] == "succeeded" and report["dry_run"] is True and report["blobs"] == 3
    real = json.loads(portlog(data, "gc", "run", "--grace-period", "0").stdout)
    assert real["blobs"] == 3 and real["bytes"] == report["bytes"]
    refused = portlog(data, "admin", "repositories", "undelete", "web/app")
    assert refused.returncode == 1 and "garbage-collected" in refused.stderr
    runs = json.loads(portlog(data, "gc", "runs").stdout)
    assert [r["dry_run"] for r in runs] == [False, True]
    assert portlog(data, "gc", "run", "--grace-period", "-5").returncode == 1


def test_retention_commands(tmp_path):
    data = tmp_path / "data"
    assert portlog(data, "admin", "projects", "create", "web").returncode == 0
    with registry_on(data) as client:
        old = push_image(client, "web/app", "v1", seed="one")[0]
        push_image(client, "web/app", "v2", seed="two")
        client.put("/api/v1/projects/web/retention", json={"rules": [{"template": "latestPushedK", "param": 1}]})
    dry = json.loads(portlog(data, "retention", "run", "web", "--dry-run").stdout)
    assert dry["dry_run"] is True and [d["digest"] for d in dry["deleted"]] == [old]
    real = json.loads(portlog(data, "retention", "run", "web").stdout)
    assert real["deleted"] == dry["deleted"] and real["trigger"] == "cli"
    assert len(json.loads(portlog(data, "retention", "runs", "web").stdout)) == 2
    missing = portlog(data, "retention", "run", "nope")
    assert missing.returncode == 1 and "project not found" in missing.stderr


def test_replication_commands_start_and_follow_an_execution(tmp_path, distribution):
    data = tmp_path / "data"
    assert portlog(data, "admin", "projects", "create", "web").returncode == 0
    with registry_on(data) as client:
        digest = push_image(client, "web/app", "v1", seed="replicated by the cli")[0]
        response = client.post("/api/v2.0/registries", json={"name": "peer", "url": distribution.url,
                                                             "type": "docker-registry"})
        registry_id = int(response.headers["Location"].rsplit("/", 1)[1])
        assert client.post("/api/v2.0/replication/policies", json={
            "name": "out", "dest_registry": {"id": registry_id}, "dest_namespace": "cli",
            "filters": [{"type": "name", "value": "web/**"}]}).status_code == 201
        started = portlog(data, "replication", "start", "out")
        assert started.returncode == 0, started.stderr
        execution = json.loads(started.stdout)
        assert execution["policy"] == "out" and execution["total"] == 1 and execution["trigger"] == "manual"
        deadline = time.monotonic() + 30  # the serving registry's workers run the task
        while execution["status"] == "InProgress" and time.monotonic() < deadline:
            time.sleep(0.3)
            [execution] = json.loads(portlog(data, "replication", "executions", "--policy", "out").stdout)
        assert execution["status"] == "Succeed", execution
    [task] = json.loads(portlog(data, "replication", "tasks", str(execution["id"])).stdout)
    assert task["status"] == "succeeded" and task["destination"] == "cli/app:v1" and task["attempts"] == 1
    assert task["bytes"] > 0 and task["error"] is None
    assert RegistryClient(distribution.url, outbound=LOOPBACK_ALLOWED).manifest_digest("cli/app", "v1") == digest
    missing = portlog(data, "replication", "tasks", "999999")
    assert missing.returncode == 1 and "no such replication execution" in missing.stderr
