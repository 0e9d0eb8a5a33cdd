"""The `portlog` command.

Exit codes: 0 done, 1 refused (the message says why), 2 bad usage, bad configuration or no registry.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import signal
import socket
import sys
import threading

from cli.admin import NoRegistry, registry_location, require_registry
from cli.admin import add_commands as add_admin_commands
from cli.backup import add_commands as add_backup_commands
from config.settings import LOG_LEVELS, ConfigError, Settings


def main(argv: list[str] | None = None) -> int:
    args = parse(build_parser(), argv)
    try:
        return args.run(args)
    except ConfigError as error:
        print(f"portlog: configuration error: {error}", file=sys.stderr)
        return 2
    except NoRegistry as error:
        print(f"portlog: {error}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portlog", description="Portlog container registry")
    parser.add_argument("--config", metavar="FILE", help="TOML config file (PORTLOG_CONFIG)")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the registry")
    _server_options(serve)
    _settings_options(serve)
    serve.add_argument("--follow", metavar="URL", dest="follow_url",
                       help="follow this leader, read-only (PORTLOG_FOLLOW_URL; credentials in "
                            "PORTLOG_FOLLOW_USERNAME / PORTLOG_FOLLOW_PASSWORD)")
    serve.add_argument("--follow-projects", metavar="A,B", help="follow only these projects (PORTLOG_FOLLOW_PROJECTS)")
    serve.set_defaults(run=_serve)

    follow = commands.add_parser("follow", help="a follower of another registry")
    promote = follow.add_subparsers(dest="follow_command", required=True).add_parser(
        "promote", help="stop following: this registry accepts writes and runs the leader's workers")
    _settings_options(promote)
    promote.set_defaults(run=_promote)

    init = commands.add_parser("init", help="create a registry (its data directory or database) and exit")
    _settings_options(init)
    init.set_defaults(run=_init)

    projections = commands.add_parser("projections", help="read models")
    projection_commands = projections.add_subparsers(dest="projections_command", required=True)
    rebuild = projection_commands.add_parser("rebuild", help="drop every read model and replay the log")
    _settings_options(rebuild)
    rebuild.set_defaults(run=_rebuild)

    config = commands.add_parser("config", help="configuration")
    check = config.add_subparsers(dest="config_command", required=True).add_parser(
        "check", help="validate the configuration and print it, secrets masked")
    _server_options(check)
    _settings_options(check)
    check.set_defaults(run=_check_config)

    add_admin_commands(commands, _settings_options, _settings)
    add_backup_commands(commands, _settings_options, _settings)
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """As parse_args, but an unknown option is reported with the usage of the (sub)command it was
    given to, not the top-level one."""
    _remember_parsers(parser)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        args.parser_of_command.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def _remember_parsers(parser: argparse.ArgumentParser) -> None:
    """Each parser records itself in the namespace; the innermost one parsed wins."""
    parser.set_defaults(parser_of_command=parser)
    for action in parser._actions:  # argparse offers no public way to walk its subparsers
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                _remember_parsers(subparser)


def _server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="listen address (PORTLOG_HOST, default 127.0.0.1)")
    parser.add_argument("--port", help="listen port (PORTLOG_PORT, default 5000)")
    parser.add_argument("--workers", help="worker processes (PORTLOG_WORKERS, default: one per CPU it may run on)")
    parser.add_argument("--log-level", help=f"{', '.join(LOG_LEVELS)} (PORTLOG_LOG_LEVEL, default info)")
    parser.add_argument("--no-access-log", action="store_true", help="do not log every request")


def _settings_options(parser: argparse.ArgumentParser) -> None:
    """The options of every command that builds settings."""
    parser.add_argument("--data-dir", help="where data lives (PORTLOG_DATA_DIR, default ./data)")
    # SUPPRESS: when not given here, `portlog --config FILE <command>` keeps the top-level value.
    parser.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                        help="TOML config file (PORTLOG_CONFIG)")


def _settings(args: argparse.Namespace) -> Settings:
    """Flags, then PORTLOG_* variables, then the config file, then the defaults; raises ConfigError."""
    return Settings.from_env(
        config_file=args.config,
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        workers=getattr(args, "workers", None),
        log_level=getattr(args, "log_level", None),
        data_dir=args.data_dir,
        access_log=False if getattr(args, "no_access_log", False) else None,
        follow=getattr(args, "follow_url", None),
        follow_projects=getattr(args, "follow_projects", None),
    )


def _check_config(args: argparse.Namespace) -> int:
    settings = _settings(args)
    source = f"{settings.config_file}" if settings.config_file else "no config file"
    print(f"# effective configuration ({source}; flags > PORTLOG_* variables > file > defaults)")
    if not settings.admin_password:
        print("# admin_password: not set (a password is generated and printed on the first start)")
    print(render_toml(settings.effective(masked=True)), end="")
    return 0


def render_toml(document: dict) -> str:
    """Top-level scalars, then one [section] per nested table (one level deep is all we need)."""
    lines = [f"{key} = {_toml_value(value)}" for key, value in document.items() if not isinstance(value, dict)]
    for section, table in document.items():
        if isinstance(table, dict):
            lines += ["", f"[{section}]", *(f"{key} = {_toml_value(value)}" for key, value in table.items())]
    return "\n".join(lines) + "\n"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a valid TOML basic string


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from adapters.metrics import prepare_multiprocess_dir
    from api import logs
    from api.app import create_app
    from api.server_protocol import HeaderDeadlineProtocol
    from cli.malloc_arenas import limit_malloc_arenas
    from config.bootstrap import bootstrap

    limit_malloc_arenas()
    settings = _settings(args)
    logs.configure(settings.log_level, settings.log_format, settings.log_levels)
    services = bootstrap(settings)
    _show_generated_password(services)
    # Portlog writes the access line itself (api/access_log.py); uvicorn's own lines in log.format.
    options = dict(host=settings.host, port=settings.port, access_log=False, log_level=None,
                   log_config=logs.uvicorn_log_config(settings.log_level, settings.log_format, settings.log_levels),
                   http=functools.partial(HeaderDeadlineProtocol, header_timeout=settings.header_timeout_seconds),
                   # X-Forwarded-For/-Proto are believed from the trusted proxies only (by default none).
                   proxy_headers=bool(settings.trusted_proxies),
                   forwarded_allow_ips=list(settings.trusted_proxies) or None)
    with _serving(settings):
        if settings.workers > 1:
            services.close()  # each worker process builds its own from the environment
            if settings.metrics.enabled:  # the workers' counts, summed at each scrape
                prepare_multiprocess_dir(settings.data_dir / "metrics")
            os.environ.update(settings.as_environment())
            uvicorn.run("api.app:app_from_environment", factory=True, workers=settings.workers, **options)
            return 0
        try:
            uvicorn.run(create_app(services), **options)
        finally:
            services.close()
    return 0


def _show_generated_password(services) -> None:
    if services.generated_admin_password:
        print(f"\n  First start: the administrator is 'admin' with password "
              f"{services.generated_admin_password}\n  It is shown only this once; change it with "
              f"PUT /api/v1/users/admin/password.\n", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _serving(settings: Settings):
    """While the block runs: this server's heartbeat in the database (`projections rebuild`
    refuses while there is one), and "ready on …" printed once it accepts connections."""
    from adapters.serving_processes import ServingProcesses, serving
    from projections.database import ReadModelDatabase

    db = ReadModelDatabase.from_url(settings.read_model_url)
    stop = threading.Event()
    announcer = threading.Thread(target=_announce_ready, args=(settings.host, settings.port, stop,
                                                               settings.log_format == "json"),
                                 name="portlog-ready", daemon=True)
    # uvicorn raises the SIGTERM it caught again once it has shut down: leave through `finally`.
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        with serving(ServingProcesses(db), f"{settings.host}:{settings.port}"):
            if not _accepts(settings.host, settings.port):  # else another process has the port: uvicorn says so
                announcer.start()
            yield
    finally:
        stop.set()
        db.dispose()
        signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


def _announce_ready(host: str, port: int, stop: threading.Event, as_log_line: bool = False) -> None:
    """Prints "ready on URL" once the port accepts connections (uvicorn listens only once the
    application has started); a log line of its own with log.format = json."""
    while not stop.wait(0.1):
        if _accepts(host, port):
            shown = f"[{host}]" if ":" in host else host
            url = f"http://{shown}:{port}"
            if as_log_line:
                logging.getLogger("portlog").info("ready on %s", url, extra={"url": url})
            else:
                print(f"ready on {url}", flush=True)
            return


def _accepts(host: str, port: int) -> bool:
    probe = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # a wildcard: loopback
    try:
        with socket.create_connection((probe, port), timeout=1):
            return True
    except OSError:
        return False


def _init(args: argparse.Namespace) -> int:
    from config.bootstrap import bootstrap, registry_exists

    settings = _settings(args)
    existed = registry_exists(settings)
    services = bootstrap(settings)
    try:
        _show_generated_password(services)
    finally:
        services.close()
    print(f"{'a registry was already' if existed else 'registry created'} at {registry_location(settings)}")
    return 0


def _promote(args: argparse.Namespace) -> int:
    from adapters.follow_state import FollowStateTable
    from projections.database import ReadModelDatabase

    settings = _settings(args)
    require_registry(settings)
    db = ReadModelDatabase.from_url(settings.read_model_url)
    try:
        status = FollowStateTable(db).promote()
    finally:
        db.dispose()
    if status is None:
        print("portlog: this registry does not follow another one", file=sys.stderr)
        return 1
    print(f"promoted at position {status.position} (the leader was {status.leader}, at {status.leader_head}): "
          f"this registry accepts writes; a running server starts the leader's workers within a second")
    return 0


def _rebuild(args: argparse.Namespace) -> int:
    from adapters.serving_processes import ServingProcesses
    from config.bootstrap import bootstrap

    settings = _settings(args)
    require_registry(settings)
    services = bootstrap(settings)
    try:
        running = ServingProcesses(services.db).running()
        if running:
            where = ", ".join(f"{p.address} (pid {p.pid} on {p.machine})" for p in running)
            print(f"portlog: a server is running on this registry: {where}; stop it first (read models "
                  f"cannot be dropped under a running server)", file=sys.stderr)
            return 1
        services.projections.rebuild()
        for name, position in sorted(services.projections.positions().items()):
            print(f"{name}: rebuilt to position {position}")
    finally:
        services.close()
    return 0

