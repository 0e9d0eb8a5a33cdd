"""`portlog admin`, `portlog audit` and `portlog keys` as a real subprocess on a data directory.

Each command runs in a process of its own, with its own working directory, environment, standard
streams and exit code, as `python -m cli` would; the process is forked from an interpreter
that has imported the CLI's modules once (see `Forker`), which saves the second of imports every
one of the module's 60-odd commands would otherwise take."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from adapters.registry_client import RegistryClient
from api.app import create_app
from config.bootstrap import bootstrap
from config.settings import Settings
from tests.support.oci import push_image
from tests.support.outbound import LOOPBACK, LOOPBACK_ALLOWED
from tests.support.server import ADMIN_PASSWORD, REPO_ROOT

CLI_MODULE = "cli.main"

# The forking interpreter: it imports the CLI's modules (running one command that finds no
# registry imports what the commands need), then reads one request per line and forks a child
# for each that runs `python -m cli ARGS` as if just started, and answers its exit status.
FORKER = f"""
import contextlib, json, os, signal, sys, traceback
sys.path[0] = os.getcwd()  # the repository, also for modules imported after a child's chdir
import {CLI_MODULE} as cli
with open(os.devnull, "w") as quiet, contextlib.redirect_stderr(quiet):
    cli.main(["audit", "--data-dir", os.path.join(sys.argv[1], "no-registry")])
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            signal.alarm(60)
            os.chdir(request["cwd"])
            os.environ.clear()
            os.environ.update(request["env"])
            for fd, (path, flags) in enumerate([(request["stdin"], os.O_RDONLY),
                                                (request["stdout"], os.O_WRONLY | os.O_TRUNC),
                                                (request["stderr"], os.O_WRONLY | os.O_TRUNC)]):
                os.dup2(os.open(path, flags), fd)
            sys.stdin, sys.stdout, sys.stderr = (open(fd, mode, closefd=False) for fd, mode in enumerate("rww"))
            sys.argv = [cli.__file__, *request["args"]]
            try:
                code = cli.main()  # what `if __name__ == "__main__"` runs
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else (exit.code is not None)
                if isinstance(exit.code, str):
                    print(exit.code, file=sys.stderr)
            except BaseException:
                traceback.print_exc()
        finally:
            with contextlib.suppress(BaseException):
                sys.stdout.flush(), sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
"""


class Forker:
    """Runs `python -m cli ARGS` in processes forked from one interpreter (FORKER)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.process = subprocess.Popen([sys.executable, "-c", FORKER, str(directory)], cwd=REPO_ROOT,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        env={"PATH": "/usr/bin:/bin"})

    def run(self, args: list[str], cwd, env: dict[str, str], stdin: str | None) -> subprocess.CompletedProcess[str]:
        streams = {name: self.directory / name for name in ("stdin", "stdout", "stderr")}
        streams["stdin"].write_text(stdin or "")
        for name in ("stdout", "stderr"):
            streams[name].write_text("")
        request = {"args": args, "cwd": str(cwd), "env": env, **{k: str(v) for k, v in streams.items()}}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        assert answer, f"the forking interpreter ended (exit status {self.process.wait()})"
        return subprocess.CompletedProcess([CLI_MODULE, *args], int(answer), streams["stdout"].read_text(),
                                           streams["stderr"].read_text())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


_forker: Forker | None = None


@pytest.fixture(scope="module", autouse=True)
def forker():
    global _forker
    with tempfile.TemporaryDirectory(prefix="portlog-cli-") as directory:
        _forker = Forker(Path(directory))
        try:
            yield _forker
        finally:
            _forker.close()
            _forker = None


def portlog(data_dir, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return _forker.run([*args, "--data-dir", str(data_dir)], REPO_ROOT, stdin=stdin,
                       env={"PORTLOG_ADMIN_PASSWORD": ADMIN_PASSWORD, "PATH": "/usr/bin:/bin"})


def initialised(data):
    """A data directory with a registry in it: only `init` and `serve` create one."""
    created = portlog(data, "init")
    assert created.returncode == 0, created.stderr
    assert created.stdout == f"registry created at {data}\n"
    return data


def test_admin_commands_round_trip(tmp_path):
    data = initialised(tmp_path / "data")
    user = portlog(data, "admin", "users", "create", "bob", "--password-stdin", stdin="Bob-Pass-12\n")
    assert (user.returncode, user.stdout) == (0, "created user bob\n")
    project = portlog(data, "admin", "projects", "create", "web")
    assert (project.returncode, project.stdout) == (0, "created project web (private)\n")
    member = portlog(data, "admin", "members", "set", "web", "bob", "maintainer")
    assert (member.returncode, member.stdout) == (0, "bob is maintainer of project web\n")
    members = json.loads(portlog(data, "admin", "members", "list", "web").stdout)
    assert {"kind": "user", "principal": "bob", "role": "maintainer", "repository": None} in members
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
    data = initialised(tmp_path / "data")
    missing = portlog(data, "admin", "members", "set", "nope", "admin", "developer")
    assert missing.returncode == 1 and "project not found" in missing.stderr
    weak = portlog(data, "admin", "users", "create", "weak", "--password-stdin", stdin="short\n")
    assert weak.returncode == 1 and "password must be" in weak.stderr
    usage = portlog(data, "admin", "members", "set", "web", "bob", "emperor")
    assert usage.returncode == 2 and "invalid choice" in usage.stderr


def test_key_rotation_keeps_old_tokens_valid_until_retired(tmp_path):
    from adapters.signing_keys import SigningKeyFile

    data = initialised(tmp_path / "data")
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
    data = initialised(tmp_path / "data")
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


def test_restore_command(tmp_path):
    data = initialised(tmp_path / "data")
    assert portlog(data, "admin", "projects", "create", "web").returncode == 0
    with registry_on(data) as client:
        first = push_image(client, "web/app", "v1", seed="one")[0]
        moment = client.app.state.services.projections.catch_up()
        second = push_image(client, "web/app", "v1", seed="two")[0]
    dry = json.loads(portlog(data, "restore", "web/app", "--as-of", str(moment), "--dry-run").stdout)
    assert dry["changes"] == [{"kind": "tag-moved", "repository": "web/app", "tag": "v1", "digest": first,
                               "previous_digest": second}]
    real = portlog(data, "restore", "web", "--as-of", str(moment))
    assert real.returncode == 0, real.stderr
    assert json.loads(real.stdout)["changes"] == dry["changes"]
    operations = [json.loads(line) for line in portlog(data, "audit", "--repository", "web/app").stdout.splitlines()]
    assert operations[-1]["operation"] == "repository.tag_pointed" and operations[-1]["actor"].startswith("cli:")
    assert portlog(data, "restore", "web/app", "--as-of", "someday").returncode == 1
    assert portlog(data, "restore", "web/nothing", "--as-of", "1").returncode == 1
    assert portlog(data, "restore", "web/app").returncode == 2  # --as-of is required


def test_retention_commands(tmp_path):
    data = initialised(tmp_path / "data")
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
    data = initialised(tmp_path / "data")
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


def test_create_commands_print_what_they_created_and_json_for_scripts(tmp_path):
    data = initialised(tmp_path / "data")
    user = portlog(data, "admin", "users", "create", "carol", "--admin", "--json", "--password-stdin",
                   stdin="Carol-Pass-12\n")
    assert json.loads(user.stdout) == {"username": "carol", "email": "", "system_admin": True, "auth_source": "db"}
    project = portlog(data, "admin", "projects", "create", "web", "--public", "--json")
    assert json.loads(project.stdout) == {"name": "web", "public": True, "proxy_cache_registry": None}
    member = portlog(data, "admin", "members", "set", "web", "carol", "guest", "--repository", "web/app", "--json")
    assert json.loads(member.stdout) == {"project": "web", "kind": "user", "principal": "carol", "role": "guest",
                                         "repository": "web/app"}
    scoped = portlog(data, "admin", "members", "set", "web", "carol", "developer", "--repository", "web/app")
    assert scoped.stdout == "carol is developer of repository web/app\n"


@contextmanager
def services_on(data):
    """The registry's services on `data`, in process (for what only a login would record)."""
    services = bootstrap(Settings(data_dir=data, admin_password=ADMIN_PASSWORD, outbound_allow=LOOPBACK))
    try:
        yield services
    finally:
        services.close()


def test_user_commands_set_admins_reset_passwords_and_show_where_accounts_come_from(tmp_path):
    from domain.context import RequestContext
    from domain.identity import LDAP, LDAP_GROUP, ExternalIdentity
    from domain.permissions import Role

    data = initialised(tmp_path / "data")
    assert portlog(data, "admin", "users", "create", "bob", "--password-stdin", stdin="Bob-Pass-12\n").returncode == 0
    with services_on(data) as services:  # what the LDAP login of a directory user records
        services.admin.onboard_user(ExternalIdentity("lena", LDAP, "uid=lena,ou=people,dc=example,dc=org"),
                                    RequestContext("lena", "login"))
        key, _ = services.admin.create_group(LDAP_GROUP, "", "CN=Devs,DC=example,DC=org", RequestContext("admin"))
        services.admin.set_group_member("library", LDAP_GROUP, key, Role.DEVELOPER, RequestContext("admin"))
    members = json.loads(portlog(data, "admin", "members", "list", "library").stdout)
    assert {"kind": "group", "principal": "cn=devs,dc=example,dc=org", "role": "developer", "repository": None} \
        in members
    assert portlog(data, "admin", "users", "set-admin", "bob").returncode == 0
    listed = {u["username"]: u for u in json.loads(portlog(data, "admin", "users", "list").stdout)}
    assert listed["bob"] == {"username": "bob", "email": "", "system_admin": True, "auth_source": "db"}
    assert (listed["lena"]["auth_source"], listed["admin"]["auth_source"]) == ("ldap", "db")
    assert portlog(data, "admin", "users", "unset-admin", "bob").returncode == 0
    reset = portlog(data, "admin", "users", "reset-password", "bob", "--password-stdin", stdin="Bob-Pass-New-3\n")
    assert reset.returncode == 0, reset.stderr
    refused = portlog(data, "admin", "users", "reset-password", "lena", "--password-stdin", stdin="Lena-Pass-12\n")
    assert refused.returncode == 1 and "lena signs in through the LDAP directory" in refused.stderr
    with registry_on(data) as client:
        me = client.get("/api/v2.0/users/current", auth=("bob", "Bob-Pass-New-3"))
        assert me.status_code == 200 and me.json()["sysadmin_flag"] is False
        assert client.get("/api/v2.0/users/current", auth=("bob", "Bob-Pass-12")).status_code == 401
    assert portlog(data, "admin", "users", "delete", "bob").returncode == 0
    assert "bob" not in {u["username"] for u in json.loads(portlog(data, "admin", "users", "list").stdout)}
    lines = [json.loads(line) for line in portlog(data, "audit").stdout.splitlines()]
    assert [(e["operation"], e["resource"]) for e in lines if e["actor"].startswith("cli:")] == [
        ("user.created", "bob"), ("user.admin_granted", "bob"), ("user.admin_revoked", "bob"),
        ("user.password_changed", "bob"), ("user.deleted", "bob")]


def test_config_commands_read_and_set_keys_and_never_print_secrets(tmp_path):
    data = initialised(tmp_path / "data")
    got = portlog(data, "admin", "config", "get", "auth_mode")
    assert json.loads(got.stdout) == {"key": "auth_mode", "value": "db_auth", "editable": True, "source": "default"}
    changed = portlog(data, "admin", "config", "set", "ldap_url=ldaps://ldap.example.org", "ldap_timeout=9",
                      "ldap_verify_cert=false", "--value-stdin", "ldap_search_password", stdin="s3cret-bind\n")
    assert changed.returncode == 0, changed.stderr
    assert json.loads(changed.stdout) == {
        "ldap_url": {"value": "ldaps://ldap.example.org", "editable": True, "source": "api"},
        "ldap_timeout": {"value": 9, "editable": True, "source": "api"},
        "ldap_verify_cert": {"value": False, "editable": True, "source": "api"},
        "ldap_search_password": {"editable": True, "source": "api", "has_value": True}}
    everything = portlog(data, "admin", "config", "get")
    assert json.loads(everything.stdout)["ldap_timeout"]["value"] == 9 and "s3cret" not in everything.stdout
    [event] = [json.loads(line) for line in portlog(data, "audit", "--operation", "configuration.changed")
               .stdout.splitlines()]
    assert event["actor"].startswith("cli:") and "s3cret" not in json.dumps(event)
    with services_on(data) as services:
        assert services.configuration().ldap_search_password == "s3cret-bind"

    for args, message in [(["set", "no_such_key=1"], "unknown configuration key 'no_such_key'"),
                          (["set", "ldap_timeout=soon"], "ldap_timeout must be a whole number"),
                          (["set", "robot_name_prefix=bot"], "robot_name_prefix is not editable"),
                          (["set", "ldap_url"], "expected KEY=VALUE, not 'ldap_url'"),
                          (["set"], "nothing to set"), (["get", "nope"], "unknown configuration key 'nope'")]:
        result = portlog(data, "admin", "config", *args)
        assert (result.returncode, result.stdout) == (1, ""), args
        assert message in result.stderr, (args, result.stderr)

    assert portlog(data, "admin", "config", "set", "auth_mode=ldap_auth").returncode == 0
    local = portlog(data, "admin", "users", "create", "bob", "--password-stdin", stdin="Bob-Pass-12\n")
    assert local.returncode == 1 and "users cannot be created while auth_mode is ldap_auth" in local.stderr
    assert portlog(data, "admin", "config", "set", "auth_mode=db_auth").returncode == 0
    assert portlog(data, "admin", "users", "create", "bob", "--password-stdin", stdin="Bob-Pass-12\n").returncode == 0
    locked = portlog(data, "admin", "config", "set", "auth_mode=oidc_auth")
    assert locked.returncode == 1 and "no user other than admin" in locked.stderr


def run_elsewhere(cwd, *args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    """`portlog ARGS` in a directory of the user's, without --data-dir."""
    return _forker.run(list(args), cwd, stdin=None,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT), **(env or {})})


COMMANDS_ON_A_REGISTRY = [
    ["audit", "--project", "team"], ["admin", "projects", "list"], ["admin", "users", "list"],
    ["admin", "projects", "create", "team"], ["admin", "members", "list", "team"], ["admin", "robots", "list"],
    ["admin", "config", "get"], ["admin", "config", "set", "ldap_url=ldap://x"],
    ["admin", "repositories", "deleted", "team"], ["events", "tail"], ["keys", "rotate"],
    ["gc", "runs"], ["gc", "run", "--dry-run"], ["retention", "runs", "team"], ["replication", "executions"],
    ["projections", "rebuild"],
]


def test_commands_other_than_serve_and_init_never_create_a_registry(tmp_path):
    for command in COMMANDS_ON_A_REGISTRY:
        result = run_elsewhere(tmp_path, *command)
        assert (result.returncode, result.stdout) == (2, ""), command
        assert result.stderr == "portlog: no registry at ./data (use --data-dir or PORTLOG_DATA_DIR)\n", command
        assert list(tmp_path.iterdir()) == [], command
    elsewhere = run_elsewhere(tmp_path, "audit", env={"PORTLOG_DATA_DIR": str(tmp_path / "srv")})
    assert elsewhere.stderr == f"portlog: no registry at {tmp_path / 'srv'} (use --data-dir or PORTLOG_DATA_DIR)\n"
    created = run_elsewhere(tmp_path, "init", env={"PORTLOG_ADMIN_PASSWORD": ADMIN_PASSWORD})
    assert (created.returncode, created.stdout) == (0, "registry created at ./data\n")
    assert run_elsewhere(tmp_path, "audit", "--project", "library").returncode == 0
    again = run_elsewhere(tmp_path, "init")
    assert (again.returncode, again.stdout) == (0, "a registry was already at ./data\n")


@pytest.fixture
def new_postgres_database(postgres_server):
    """A database no test has used: the shared one keeps its tables, and may be written to by
    what an earlier test left running."""
    dsn = postgres_server.create_database(durable=False)
    yield dsn
    postgres_server.drop_database(dsn)


def test_on_postgresql_no_registry_means_no_event_log(tmp_path, new_postgres_database):
    env = {"PORTLOG_DATABASE_URL": new_postgres_database}
    for command in (["audit"], ["admin", "projects", "list"], ["keys", "rotate"], ["projections", "rebuild"]):
        result = run_elsewhere(tmp_path, *command, env=env)
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr.startswith("portlog: no registry at postgresql://"), result.stderr
        assert "the database has no event log yet" in result.stderr and list(tmp_path.iterdir()) == []
    assert run_elsewhere(tmp_path, "init", env={**env, "PORTLOG_ADMIN_PASSWORD": ADMIN_PASSWORD}).returncode == 0
    assert run_elsewhere(tmp_path, "admin", "projects", "list", env=env).returncode == 0


def test_a_bad_option_prints_the_usage_of_the_command_it_was_given_to(capsys):
    from cli.main import main

    wrong = main_exit(main, ["gc", "run", "--dryrun"], capsys)
    assert wrong.startswith("usage: portlog gc run [-h] [--dry-run]")
    assert wrong.rstrip().endswith("portlog gc run: error: unrecognized arguments: --dryrun")
    for command in leaf_commands():
        printed = main_exit(main, [*command, "--no-such-option"], capsys)
        assert f"portlog {' '.join(command)}: error: " in printed, (command, printed)


def main_exit(main, argv, capsys) -> str:
    try:
        main(argv)
    except SystemExit as exit:
        assert exit.code == 2
        return capsys.readouterr().err
    raise AssertionError(f"portlog {' '.join(argv)} did not exit on usage")


def leaf_commands() -> list[list[str]]:
    """Every command path of `portlog` that takes no further subcommand."""
    import argparse

    from cli.main import build_parser

    def walk(parser, path):
        subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subparsers:
            return [path]
        return [leaf for name, sub in subparsers[0].choices.items() for leaf in walk(sub, [*path, name])]

    return walk(build_parser(), [])
