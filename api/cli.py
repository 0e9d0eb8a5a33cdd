"""The `portlog` command."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from api.cli_admin import add_commands as add_admin_commands
from api.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="portlog", description="Portlog container registry")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the registry")
    serve.add_argument("--host", help="listen address (PORTLOG_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (PORTLOG_PORT, default 5000)")
    _data_dir_option(serve)
    serve.add_argument("--workers", type=int, help="worker processes (PORTLOG_WORKERS, default 1)")
    serve.add_argument("--no-access-log", action="store_true", help="do not log every request")
    serve.set_defaults(run=_serve)

    projections = commands.add_parser("projections", help="read models")
    projection_commands = projections.add_subparsers(dest="projections_command", required=True)
    rebuild = projection_commands.add_parser("rebuild", help="drop every read model and replay the log")
    _data_dir_option(rebuild)
    rebuild.set_defaults(run=_rebuild)

    add_admin_commands(commands, _data_dir_option, _settings)

    args = parser.parse_args(argv)
    return args.run(args)


def _data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="where data lives (PORTLOG_DATA_DIR, default ./data)")


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        workers=getattr(args, "workers", None),
        data_dir=Path(args.data_dir) if args.data_dir else None,
        access_log=False if getattr(args, "no_access_log", False) else None,
    )


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from api.bootstrap import bootstrap

    settings = _settings(args)
    services = bootstrap(settings)
    if services.generated_admin_password:
        print(f"\n  First start: the administrator is 'admin' with password "
              f"{services.generated_admin_password}\n  It is shown only this once; change it with "
              f"PUT /api/v1/users/admin/password.\n", file=sys.stderr, flush=True)
    options = dict(host=settings.host, port=settings.port, access_log=settings.access_log,
                   log_level="info")
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
