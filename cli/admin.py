"""`portlog admin …`, `portlog audit` and `portlog keys`: administration from the command
line, on the data directory (the server may be running: it picks the events up from the log).

Exit codes: 0 done, 1 refused (the message says why), 2 bad usage.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from contextlib import contextmanager
from uuid import UUID

import orjson

from api.management.problems import Problem
from api.request_input import as_id
from config.settings import Settings
from domain.context import RequestContext
from domain.errors import RegistryError
from domain.permissions import Role


def add_commands(commands, data_dir_option, settings_of) -> None:
    _LEAVES.clear()  # a second parser in the same process (tests call main() repeatedly) starts afresh
    admin = commands.add_parser("admin", help="users, configuration, projects, members and robots")
    groups = admin.add_subparsers(dest="group", required=True)
    _users(groups.add_parser("users", help="users").add_subparsers(dest="action", required=True))
    _config(groups.add_parser("config", help="the system configuration (authentication, LDAP, OIDC, …)")
            .add_subparsers(dest="action", required=True))
    _projects(groups.add_parser("projects", help="projects").add_subparsers(dest="action", required=True))
    _members(groups.add_parser("members", help="project members").add_subparsers(dest="action", required=True))
    _robots(groups.add_parser("robots", help="robot accounts").add_subparsers(dest="action", required=True))
    _repositories(groups.add_parser("repositories", help="delete and undelete repositories").add_subparsers(
        dest="action", required=True))
    _gc(commands.add_parser("gc", help="garbage collection").add_subparsers(dest="action", required=True))
    _restore(commands)
    _replication(commands.add_parser("replication", help="replication executions and their tasks").add_subparsers(
        dest="action", required=True))
    _retention(commands.add_parser("retention", help="tag retention runs").add_subparsers(
        dest="action", required=True))
    _vulndb(commands.add_parser("vulndb", help="vulnerability data (OSV records) for the built-in scanner")
            .add_subparsers(dest="action", required=True))
    audit = commands.add_parser("audit", help="print the audit trail")
    for option in ("actor", "project", "repository", "operation", "since", "until"):
        audit.add_argument(f"--{option}")
    audit.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    audit.set_defaults(run=_audit)
    events = commands.add_parser("events", help="the event log, as subscribers see it")
    tail = events.add_subparsers(dest="action", required=True).add_parser(
        "tail", help="print events as CloudEvents JSON lines (the last 10 unless told where to start)")
    start = tail.add_mutually_exclusive_group()
    start.add_argument("--from", dest="from_position", type=int, metavar="POSITION",
                       help="start at this log position (inclusive)")
    start.add_argument("--since", metavar="TIME", help="start at this time (ISO 8601; UTC without an offset)")
    tail.add_argument("--type", action="append", default=[], metavar="TYPE",
                      help="only these types (globs: artifact.*); repeat or separate with commas")
    tail.add_argument("--follow", "-f", action="store_true", help="keep printing new events as they come")
    tail.set_defaults(run=_tail_events)
    keys = commands.add_parser("keys", help="token signing keys")
    rotate = keys.add_subparsers(dest="action", required=True).add_parser(
        "rotate", help="add a new signing key (restart the server to use it)")
    rotate.add_argument("--retire", action="store_true", help="drop the older keys (their tokens stop working)")
    rotate.set_defaults(run=_rotate_keys)
    for parser in (audit, rotate, tail, *_LEAVES):  # the gc and repositories commands are leaves too
        data_dir_option(parser)
        parser.set_defaults(settings_of=settings_of)


_LEAVES: list[argparse.ArgumentParser] = []


def _leaf(sub, name: str, help_text: str, run) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text)
    parser.set_defaults(run=lambda args: _run(args, run))
    _LEAVES.append(parser)
    return parser


def _users(sub) -> None:
    _leaf(sub, "list", "list users with where their accounts come from (auth_source db, ldap or oidc)",
          lambda s, a: _print([_user_summary(u) for u in s.access.users(0, 10_000)[0]]))
    create = _leaf(sub, "create", "create a local user (only while auth_mode is db_auth)", _create_user)
    create.add_argument("username")
    _json_option(create)
    create.add_argument("--email", default="")
    create.add_argument("--admin", action="store_true", help="make a system administrator")
    _password_options(create)
    for name in ("reset-password", "password"):  # `password`: the older name
        password = _leaf(sub, name, "set a local user's password", lambda s, a: s.admin.change_password(
            a.username, _password(a), _ctx()))
        password.add_argument("username")
        _password_options(password)
    for names, flag in ((("set-admin", "grant-admin"), True), (("unset-admin", "revoke-admin"), False)):
        for name in names:
            parser = _leaf(sub, name, f"{'grant' if flag else 'revoke'} system administration",
                           lambda s, a, flag=flag: s.admin.set_admin(a.username, flag, _ctx()))
            parser.add_argument("username")
    delete = _leaf(sub, "delete", "delete a user and their memberships", _delete_user)
    delete.add_argument("username")


def _config(sub) -> None:
    get = _leaf(sub, "get", "print the system configuration (or one key): value, whether editable, source; "
                            "secrets only as has_value", _config_get)
    get.add_argument("key", nargs="?")
    change = _leaf(sub, "set", "set configuration keys (an audited event, as through the API)", _config_set)
    change.add_argument("assignments", nargs="*", metavar="KEY=VALUE")
    change.add_argument("--value-stdin", metavar="KEY",
                        help="read KEY's value from standard input (for secrets: not in the shell history)")


def _config_get(services, args) -> None:
    shown = services.configuration().public()
    if args.key is None:
        _print(shown)
    elif args.key in shown:
        _print({"key": args.key, **shown[args.key]})
    else:
        raise RegistryError(f"unknown configuration key {args.key!r}", {"key": args.key})


def _config_set(services, args) -> None:
    changes = {}
    for assignment in args.assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            raise RegistryError(f"expected KEY=VALUE, not {assignment!r}")
        changes[key] = value
    if args.value_stdin:
        changes[args.value_stdin] = sys.stdin.readline().rstrip("\n")
    if not changes:
        raise RegistryError("nothing to set: give KEY=VALUE or --value-stdin KEY")
    services.projections.wait_for(services.configurations.update(changes, _ctx()))
    shown = services.configuration().public()
    _print({key: shown[key] for key in changes})


def _projects(sub) -> None:
    _leaf(sub, "list", "list projects", lambda s, a: _print([
        _project_summary(p) for p in s.access.projects(0, 10_000)[0]]))
    create = _leaf(sub, "create", "create a project", _create_project)
    create.add_argument("name")
    _json_option(create)
    create.add_argument("--public", action="store_true")
    create.add_argument("--proxy-cache-registry", metavar="ENDPOINT",
                        help="make it a proxy-cache project of this registry endpoint (docs/proxy-cache.md)")
    visibility = _leaf(sub, "set-public", "make a project public or private",
                       lambda s, a: s.admin.set_project_public(a.name, a.public == "true", _ctx()))
    visibility.add_argument("name")
    visibility.add_argument("public", choices=("true", "false"))
    delete = _leaf(sub, "delete", "delete an empty project and its robots", lambda s, a: s.admin.delete_project(
        a.name, _ctx(), s.catalog.repository_count(a.name), [r.name for r in s.access.robots(project=a.name)]))
    delete.add_argument("name")


def _repositories(sub) -> None:
    delete = _leaf(sub, "delete", "delete a repository (it can be undeleted until GC takes its bytes)",
                   lambda s, a: s.trash.delete_repository(a.name, _ctx()))
    delete.add_argument("name")
    undelete = _leaf(sub, "undelete", "bring a deleted repository back",
                     lambda s, a: s.trash.undelete_repository(a.name, _ctx()))
    undelete.add_argument("name")
    deleted = _leaf(sub, "deleted", "list a project's deleted repositories",
                    lambda s, a: _print(s.history.deleted_repositories(a.project)))
    deleted.add_argument("project")


def _restore(commands) -> None:
    restore = _leaf(commands, "restore", "bring a repository or a project back to how it was at a moment "
                    "(new events; docs/time-travel.md)", _restore_run)
    restore.add_argument("name", metavar="REPOSITORY|PROJECT", help="a name without '/' is a project")
    restore.add_argument("--as-of", required=True, metavar="T", help="a log position or an ISO 8601 time")
    restore.add_argument("--dry-run", action="store_true", help="only list the changes")


def _restore_run(services, args) -> None:
    from api.management.history import parse_time

    services.projections.catch_up()
    position = as_id(args.as_of)
    if position is None:
        position = services.audit.position_at(parse_time(args.as_of, "--as-of"))
    if "/" in args.name:
        plan, _ = services.restores.restore_repository(args.name, position, _ctx(), args.dry_run)
    else:
        plan, _ = services.restores.restore_project(args.name, position, _ctx(), args.dry_run,
                                                    may_set_quota=True, grantable=lambda permissions: True)
    _print({"as_of_position": position, "dry_run": args.dry_run, **plan.public()})


def _gc(sub) -> None:
    run = _leaf(sub, "run", "collect the bytes nothing references (online: pushes and pulls go on)", _gc_run)
    run.add_argument("--dry-run", action="store_true", help="only report what would be freed")
    run.add_argument("--delete-untagged", action="store_true",
                     help="first delete manifests untagged for longer than the grace period")
    run.add_argument("--grace-period", type=int, metavar="SECONDS",
                     help="spare digests unreferenced for less than this (default: gc.grace_period_seconds)")
    _leaf(sub, "runs", "list GC runs, newest first", lambda s, a: _print(
        [_run_summary(r) for r in s.gc.runs(0, 100)[0]]))


def _gc_run(services, args) -> None:
    grace = args.grace_period if args.grace_period is not None else services.settings.gc.grace_period_seconds
    if grace < 0:
        raise RegistryError("the grace period is 0 seconds or more")
    run, _ = services.gc_jobs.start(grace, args.dry_run, "cli", _ctx(), background=False,
                                    delete_untagged=args.delete_untagged)
    services.projections.catch_up()
    row = services.gc.run_by_uuid(str(run.id))
    _print(_run_summary(row))
    if row.status != "succeeded":
        raise RegistryError(f"garbage collection failed: {row.error}")


def _retention(sub) -> None:
    run = _leaf(sub, "run", "apply a project's retention policy now", _retention_run)
    run.add_argument("project")
    run.add_argument("--dry-run", action="store_true", help="only list what it would delete")
    run.add_argument("--as-of", metavar="TIME", help="a dry run as of a past log position or ISO 8601 time")
    runs = _leaf(sub, "runs", "list a project's retention runs, newest first", lambda s, a: _print(
        [vars(r) for r in s.retention.runs(a.project, 0, 100)[0]]))
    runs.add_argument("project")


def _retention_run(services, args) -> None:
    from api.management.history import as_of_time
    from api.management.retention import before_the_log

    position, moment = None, as_of_time(args.as_of)
    if args.as_of:
        position = as_id(args.as_of) if moment is None else services.audit.position_at(moment)
    run_id, _ = services.retention_runner.run(args.project, args.dry_run, "cli", _ctx(), position,
                                              as_of_time=moment)
    services.projections.catch_up()
    _print(vars(services.retention.run_by_uuid(str(run_id))) | before_the_log(services.retention_runner, position))


def _replication(sub) -> None:
    start = _leaf(sub, "start", "start an execution of a policy (the serving registry runs its tasks)",
                  _replication_start)
    start.add_argument("policy")
    listing = _leaf(sub, "executions", "list executions, newest first", lambda s, a: _print(
        [_execution_summary(e) for e in s.replication_runs.executions(a.policy, 0, a.limit)[0]]))
    listing.add_argument("--policy", help="only this policy's")
    listing.add_argument("--limit", type=int, default=20)
    tasks = _leaf(sub, "tasks", "an execution's tasks: state, attempts, bytes, duration, last error",
                  lambda s, a: _print([_task_summary(t) for t in s.replication_runs.tasks(
                      _execution_row(s, a.execution).execution)]))
    tasks.add_argument("execution", type=int)
    stop = _leaf(sub, "stop", "stop an execution: pending tasks at once, running ones at their next chunk",
                 lambda s, a: s.replicator.stop(UUID(_execution_row(s, a.execution).execution), _ctx()))
    stop.add_argument("execution", type=int)


def _replication_start(services, args) -> None:
    execution, position = services.replicator.start(args.policy, "manual", _ctx())
    services.projections.wait_for(position)
    _print(_execution_summary(services.replication_runs.execution_by_uuid(str(execution))))


def _execution_row(services, execution_id: int):
    row = services.replication_runs.execution(execution_id)
    if row is None:
        raise RegistryError("no such replication execution", {"execution": execution_id})
    return row


def _execution_summary(row) -> dict:
    return {"id": row.id, "policy": row.policy, "status": row.status, "trigger": row.trigger, "total": row.total,
            "tasks": row.counts, "started_at": row.started_at, "ended_at": row.ended_at}


def _task_summary(row) -> dict:
    return {"id": row.id, "operation": row.operation, "source": f"{row.source_repository}:{row.reference}",
            "destination": f"{row.destination_repository}:{row.reference}", "status": row.status,
            "attempts": row.attempts, "bytes": row.bytes, "duration_ms": row.duration_ms, "error": row.error,
            "retry_at": row.retry_at, "started_at": row.started_at, "ended_at": row.ended_at}


def _run_summary(row) -> dict:
    return {"id": row.id, "status": row.status, "dry_run": row.dry_run, "trigger": row.trigger,
            "grace_period_seconds": row.grace_seconds, "blobs": row.blobs, "bytes": row.bytes,
            "untagged": row.untagged,
            "orphans": row.orphans, "error": row.error, "started_at": row.started_at,
            "finished_at": row.finished_at}


def _vulndb(sub) -> None:
    load = _leaf(sub, "import", "import OSV records: a JSON file, a directory or a zip (osv.dev's exports)",
                 _vulndb_import)
    load.add_argument("path", help="the file or directory")
    load.add_argument("--source", metavar="NAME",
                      help="the source it replaces (default: its ecosystem, such as Debian or PyPI)")
    _leaf(sub, "status", "the imported sources: records per ecosystem, when imported", lambda s, a: _print(
        _vulndb_status(s)))


def _vulndb_import(services, args) -> None:
    from pathlib import Path

    from adapters.osv_files import osv_file
    from scanner.vulndb import InvalidVulnerabilityData

    try:
        with osv_file(Path(args.path)) as data:
            name = args.source or data.default_source_name()
            _, position = services.vulnerability_imports.record(name, data.chunks(), data.file_name,
                                                                data.ecosystems, data.records, _ctx())
    except (InvalidVulnerabilityData, OSError) as error:
        raise RegistryError(f"cannot import {args.path}: {error}") from None
    services.projections.wait_for(position)
    _print(next(s for s in _vulndb_status(services)["sources"] if s["name"] == name))


def _vulndb_status(services) -> dict:
    sources = services.vulnerability_data.sources()
    totals: dict[str, int] = {}
    for source in sources:
        for ecosystem, count in source.ecosystems.items():
            totals[ecosystem] = totals.get(ecosystem, 0) + count
    return {"sources": [{"name": s.name, "records": s.records, "ecosystems": s.ecosystems, "file": s.file_name,
                         "digest": s.digest, "size": s.size, "imported_at": s.imported_at,
                         "imported_by": s.imported_by, **({"error": s.error} if s.error else {})} for s in sources],
            "ecosystems": dict(sorted(totals.items()))}


def _members(sub) -> None:
    listing = _leaf(sub, "list", "list a project's members", lambda s, a: _print([
        _member_summary(m) for m in s.access.members(a.project)]))
    listing.add_argument("project")
    grant = _leaf(sub, "set", "add a member or change their role", _set_member)
    _json_option(grant)
    grant.add_argument("project")
    grant.add_argument("username")
    grant.add_argument("role", choices=[r.value for r in Role])
    grant.add_argument("--repository", help="limit the grant to one repository (project/name)")
    remove = _leaf(sub, "remove", "remove a member", lambda s, a: s.admin.remove_member(
        a.project, a.username, a.repository, _ctx()))
    remove.add_argument("project")
    remove.add_argument("username")
    remove.add_argument("--repository")


def _robots(sub) -> None:
    listing = _leaf(sub, "list", "list robots", lambda s, a: _print([
        {"name": r.name, "project": r.project, "permissions": r.permissions, "disabled": r.disabled,
         "expires_at": r.expires_at} for r in s.access.robots(a.project, level_system=a.project is None)]))
    listing.add_argument("--project")
    create = _leaf(sub, "create", "create a robot and print its secret", _create_robot)
    create.add_argument("name")
    create.add_argument("--project", help="a project robot; without it, a system robot")
    create.add_argument("--permission", action="append", required=True, metavar="PROJECT:RESOURCE:ACTION",
                        help="e.g. team:repository:push (repeat; '*' as project for all)")
    create.add_argument("--days", type=int, help="expires after this many days (default: never)")
    create.add_argument("--description", default="")
    refresh = _leaf(sub, "refresh", "issue a new secret and print it", lambda s, a: _print(
        {"name": a.name, "secret": s.admin.refresh_robot_secret(a.name, _ctx())[0]}))
    refresh.add_argument("name")
    for name, flag in (("disable", True), ("enable", False)):
        parser = _leaf(sub, name, f"{name} a robot",
                       lambda s, a, flag=flag: s.admin.set_robot_disabled(a.name, flag, _ctx()))
        parser.add_argument("name")
    delete = _leaf(sub, "delete", "delete a robot", lambda s, a: s.admin.delete_robot(a.name, _ctx()))
    delete.add_argument("name")


def _create_user(services, args) -> None:
    from domain.administration import check_local_accounts

    check_local_accounts(services.configuration().auth_mode)
    services.admin.create_user(args.username, _password(args), args.email, args.admin, _ctx())
    services.projections.catch_up()
    user = services.access.user(args.username)
    _report(args, f"created user {user.username}" + (" (system administrator)" if user.system_admin else ""),
            _user_summary(user))


def _create_project(services, args) -> None:
    services.admin.create_project(args.name, args.public, _ctx(), proxy_registry=args.proxy_cache_registry)
    services.projections.catch_up()
    project = services.access.project(args.name)
    kind = "public" if project.public else "private"
    if project.proxy_registry:
        kind += f", a proxy cache of {project.proxy_registry}"
    _report(args, f"created project {project.name} ({kind})", _project_summary(project))


def _set_member(services, args) -> None:
    services.admin.set_member(args.project, args.username, Role(args.role), args.repository, _ctx())
    services.projections.catch_up()
    [member] = [m for m in services.access.members(args.project)
                if m.kind == "user" and m.principal == args.username and m.repository == args.repository]
    scope = f"repository {member.repository}" if member.repository else f"project {args.project}"
    _report(args, f"{member.principal} is {member.role} of {scope}", {"project": args.project,
                                                                         **_member_summary(member)})


def _user_summary(user) -> dict:
    return {"username": user.username, "email": user.email, "system_admin": user.system_admin,
            "auth_source": user.auth_source}


def _project_summary(project) -> dict:
    return {"name": project.name, "public": project.public, "proxy_cache_registry": project.proxy_registry}


def _member_summary(member) -> dict:
    """A group member's principal is the group's key (an LDAP group's DN lower-cased, an OIDC group's name)."""
    return {"kind": member.kind, "principal": member.principal, "role": member.role, "repository": member.repository}


def _json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON (for scripts)")


def _report(args, text: str, summary: dict) -> None:
    """What a command did: a sentence, or with --json the object."""
    if args.json:
        _print(summary)
    else:
        print(text)


def _create_robot(services, args) -> None:
    permissions = []
    for item in args.permission:
        parts = item.split(":")
        if len(parts) != 3:
            raise RegistryError(f"a permission is PROJECT:RESOURCE:ACTION, not {item!r}")
        permissions.append(dict(zip(("project", "resource", "action"), parts)))
    name, secret, _ = services.admin.create_robot(args.name, args.project, permissions, args.days,
                                                  args.description, _ctx())
    _print({"name": name, "secret": secret})


def _delete_user(services, args) -> None:
    for member in services.access.memberships_of(args.username):
        services.admin.remove_member(member.project, args.username, member.repository, _ctx())
    services.admin.delete_user(args.username, _ctx())


def _audit(args) -> int:
    from api.management.history import parse_time
    from projections.audit import AuditFilter
    from projections.audit_export import export

    def run(services, args):
        where = AuditFilter(actor=args.actor, project=args.project, repository=args.repository,
                            operation=args.operation,
                            since=parse_time(args.since, "since") if args.since else None,
                            until=parse_time(args.until, "until") if args.until else None)
        for chunk in export(services.audit, where, args.format):
            sys.stdout.buffer.write(chunk)
    return _run(args, run)


def _tail_events(args) -> int:
    from adapters.event_log import EventQuery, read_events

    def run(services, args):
        after = _tail_start(services, args)
        types = tuple(t for option in args.type for t in option.split(",") if t)
        source = services.settings.events.source
        try:
            while True:
                events, after = read_events(services.registry, source, EventQuery(after=after, limit=1000,
                                                                                   types=types))
                for event in events:
                    sys.stdout.buffer.write(orjson.dumps(event) + b"\n")
                sys.stdout.flush()
                if not events and not args.follow:
                    return
                if not events:
                    time.sleep(0.5)
        except KeyboardInterrupt:
            return
    return _run(args, run)


def _tail_start(services, args) -> int:
    """The position to print events after."""
    if args.from_position is not None:
        return max(args.from_position - 1, 0)
    if args.since:
        from api.management.history import parse_time

        at = services.audit.position_at(parse_time(args.since, "since"))
        return at if at is not None else 0
    return max(services.registry.recorder.max_notification_id() - TAIL_DEFAULT, 0)


TAIL_DEFAULT = 10


def _rotate_keys(args) -> int:
    from config.bootstrap import signing_keys_for
    from projections.database import ReadModelDatabase

    settings: Settings = args.settings_of(args)
    require_registry(settings)
    db = ReadModelDatabase.from_url(settings.read_model_url)
    try:
        key = signing_keys_for(settings, db).rotate(retire_old=args.retire)
    finally:
        db.dispose()
    print(f"new signing key {key.kid}; restart the server to sign with it", file=sys.stderr)
    return 0


def _run(args, action) -> int:
    try:
        with _services(args.settings_of(args)) as services:
            action(services, args)
            services.projections.catch_up()
    except RegistryError as error:
        detail = f" ({orjson.dumps(error.detail, default=str).decode()})" if error.detail else ""
        print(f"portlog: {error.message}{detail}", file=sys.stderr)
        return 1
    except Problem as problem:  # bad input caught by the API's parsers (times, positions)
        print(f"portlog: {problem.detail}", file=sys.stderr)
        return 1
    return 0


class NoRegistry(Exception):
    """Nothing to work on: only `serve` and `init` create a registry (exit 2)."""


def require_registry(settings: Settings) -> None:
    from config.bootstrap import registry_exists

    if registry_exists(settings):
        return
    if settings.event_database.kind == "postgres":
        raise NoRegistry(f"no registry at {registry_location(settings)}: the database has no event log yet "
                         f"(run `portlog init` or `portlog serve` first)")
    raise NoRegistry(f"no registry at {registry_location(settings)} (use --data-dir or PORTLOG_DATA_DIR)")


def registry_location(settings: Settings) -> str:
    """The database (password masked) in scale-out; else the data directory, a relative one as
    the user would type it: ./data, not data."""
    if settings.event_database.kind == "postgres":
        return settings.event_database.url(masked=True)
    text = str(settings.data_dir)
    return text if settings.data_dir.is_absolute() or text.startswith(".") else f"./{text}"


@contextmanager
def _services(settings: Settings):
    from config.bootstrap import bootstrap

    require_registry(settings)
    services = bootstrap(settings)
    try:
        yield services
    finally:
        services.close()


def _ctx() -> RequestContext:
    return RequestContext(f"cli:{getpass.getuser()}", "cli", "local")


def _password_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--password-stdin", action="store_true", help="read the password from standard input")


def _password(args) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if os.environ.get("PORTLOG_NEW_PASSWORD"):
        return os.environ["PORTLOG_NEW_PASSWORD"]
    return getpass.getpass("password: ")


def _print(value) -> None:
    options = orjson.OPT_INDENT_2 | orjson.OPT_NAIVE_UTC
    sys.stdout.write(orjson.dumps(value, default=str, option=options).decode() + "\n")
