"""The `portlog` command.

Exit codes: 0 done, 1 refused (the message says why), 2 bad usage or bad configuration.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys

from api.cli_admin import add_commands as add_admin_commands
from api.settings import LOG_LEVELS, ConfigError, Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="portlog", description="Portlog container registry")
    parser.add_argument("--config", metavar="FILE", help="TOML config file (PORTLOG_CONFIG)")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the registry")
    _server_options(serve)
    _settings_options(serve)
    serve.set_defaults(run=_serve)

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

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except ConfigError as error:
        print(f"portlog: configuration error: {error}", file=sys.stderr)
        return 2


def _server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="listen address (PORTLOG_HOST, default 127.0.0.1)")
    parser.add_argument("--port", help="listen port (PORTLOG_PORT, default 5000)")
    parser.add_argument("--workers", help="worker processes (PORTLOG_WORKERS, default 1)")
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

    from api import logs
    from api.app import create_app
    from api.bootstrap import bootstrap
    from api.server_protocol import HeaderDeadlineProtocol

    settings = _settings(args)
    logs.configure(settings.log_level)
    services = bootstrap(settings)
    if services.generated_admin_password:
        print(f"\n  First start: the administrator is 'admin' with password "
              f"{services.generated_admin_password}\n  It is shown only this once; change it with "
              f"PUT /api/v1/users/admin/password.\n", file=sys.stderr, flush=True)
    options = dict(host=settings.host, port=settings.port, access_log=settings.access_log,
                   log_level=settings.log_level,
                   http=functools.partial(HeaderDeadlineProtocol, header_timeout=settings.header_timeout_seconds),
                   # X-Forwarded-For/-Proto are believed from the trusted proxies only (by default none).
                   proxy_headers=bool(settings.trusted_proxies),
                   forwarded_allow_ips=list(settings.trusted_proxies) or None)
    if settings.workers > 1:
        services.close()  # each worker process builds its own from the environment
        os.environ.update(settings.as_environment())
        uvicorn.run("api.app:app_from_environment", factory=True, workers=settings.workers, **options)
        return 0
    try:
        uvicorn.run(create_app(services), **options)
    finally:
        services.close()
    return 0


def _rebuild(args: argparse.Namespace) -> int:
    from api.bootstrap import bootstrap

    services = bootstrap(_settings(args))
    try:
        services.projections.rebuild()
        for name, position in sorted(services.projections.positions().items()):
            print(f"{name}: rebuilt to position {position}")
    finally:
        services.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
