"""`portlog backup create|verify|restore`: consistent online backups (docs/operations.md, Backups).

`create` writes the registry as it is at one log position into a directory or an S3 bucket while
the server goes on serving; `verify` checks a backup without any registry; `restore` makes a new
registry from one (never over an existing one) that `portlog serve` then starts.

Exit codes: 0 done, 1 refused or failed (the message says why, naming the first bad item), 2 bad usage.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

import orjson

from config.settings import Settings
from domain.context import RequestContext
from domain.errors import RegistryError

_LOCATION_VARIABLES = ("PORTLOG_DATABASE_URL", "PORTLOG_READ_MODELS_URL", "PORTLOG_STORAGE_URL", "PORTLOG_CONFIG")


def add_commands(commands, settings_options, settings_of) -> None:
    backup = commands.add_parser("backup", help="consistent online backups: create, verify, restore")
    actions = backup.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="back the registry up into DEST while it runs")
    create.add_argument("destination", metavar="DEST",
                        help="a directory, or s3://ACCESS:SECRET@HOST:PORT/BUCKET[/PREFIX]?secure=false")
    create.add_argument("--incremental", action="store_true",
                        help="copy only the blobs the backup already at DEST lacks")
    settings_options(create)
    create.set_defaults(run=_create, settings_of=settings_of)
    verify = actions.add_parser("verify", help="check a backup: every log segment, the hash chain, every blob")
    verify.add_argument("destination", metavar="DEST")
    verify.set_defaults(run=_verify)
    restore = actions.add_parser("restore", help="make a new registry from a backup (never over an existing one)")
    restore.add_argument("destination", metavar="DEST")
    restore.add_argument("--data-dir", help="the new registry's data directory (embedded; must be empty)")
    restore.add_argument("--database-url", help="scale-out: an empty PostgreSQL database (postgresql://…)")
    restore.add_argument("--storage-url", help="scale-out: an empty bucket (s3://ACCESS:SECRET@HOST:PORT/BUCKET)")
    restore.set_defaults(run=_restore)


def _create(args) -> int:
    from cli.admin import require_registry
    from config.bootstrap import bootstrap

    settings: Settings = args.settings_of(args)
    require_registry(settings)
    services = bootstrap(settings)
    try:
        backup, _ = services.backup_jobs.start(args.destination, args.incremental, "cli", _ctx(), guarded=False,
                                               background=False)
        services.projections.catch_up()
        row = services.backups.backup_by_uuid(str(backup.id))
    except RegistryError as error:
        return _refused(error.message)
    finally:
        services.close()
    _print({"backup": row.id, "status": row.status, "destination": row.destination, "position": row.position,
            "blob_count": row.blob_count, "bytes": row.bytes, "copied_blobs": row.copied_blobs,
            "copied_bytes": row.copied_bytes, "log_events": row.log_events, "log_digest": row.log_digest,
            "started_at": row.started_at, "finished_at": row.finished_at,
            "seconds": round((row.finished_at - row.started_at).total_seconds(), 3) if row.finished_at else None})
    return 0 if row.status == "succeeded" else _refused(f"the backup failed: {row.reason}")


def _verify(args) -> int:
    from background.backups import BackupInvalid, verify_backup
    from config.bootstrap import backup_destination

    try:
        verified = verify_backup(backup_destination(args.destination))
    except BackupInvalid as invalid:
        return _refused(f"the backup does not verify: {invalid}")
    except RegistryError as error:
        return _refused(error.message)
    _print({"position": verified.position, "log_events": verified.log_events, "log_digest": verified.log_digest,
            "blob_count": verified.blob_count, "bytes": verified.bytes})
    return 0


def _restore(args) -> int:
    from background.backups import BackupInvalid, read_manifest, verify_backup
    from config.bootstrap import backup_destination

    if bool(args.database_url) != bool(args.storage_url) or not (args.data_dir or args.database_url):
        args.parser_of_command.error("give --data-dir DIR, or --database-url URL and --storage-url URL")
    settings = _restore_settings(args)
    try:
        destination = backup_destination(args.destination)
        verify_backup(destination)
        refusal = _not_empty(settings)
        if refusal:
            return _refused(f"refusing to restore: {refusal}")
        manifest = read_manifest(destination)
        _restore_into(settings, destination, manifest)
    except BackupInvalid as invalid:
        return _refused(f"refusing to restore: the backup does not verify: {invalid}")
    except RegistryError as error:
        return _refused(error.message)
    where = f"--data-dir {settings.data_dir}" if not args.database_url else "with the same database and storage"
    print(f"restored the registry as of log position {manifest.position} ({manifest.log_events} events, "
          f"{len(manifest.blobs)} blobs); start it: portlog serve {where}", file=sys.stderr)
    return 0


def _restore_settings(args) -> Settings:
    """Where to restore is what the options say, nothing else: no location from the environment
    or a configuration file (a restore meant for a new directory never lands in a database)."""
    environ = {k: v for k, v in os.environ.items() if k not in _LOCATION_VARIABLES}
    if args.database_url:
        environ.update(PORTLOG_DATABASE_URL=args.database_url, PORTLOG_STORAGE_URL=args.storage_url)
    return Settings.from_env(environ, data_dir=args.data_dir)


def _not_empty(settings: Settings) -> str | None:
    """Why the target is not a new registry's (None: it is empty)."""
    from config.bootstrap import blob_store_for, registry_exists

    if settings.event_database.kind == "sqlite" and settings.data_dir.is_dir() and any(settings.data_dir.iterdir()):
        return f"the data directory {settings.data_dir} is not empty"
    if settings.event_database.kind == "postgres":
        from sqlalchemy import create_engine, inspect

        if registry_exists(settings):
            return "the database holds a registry"
        engine = create_engine(settings.read_model_url)
        try:
            if inspect(engine).get_table_names():
                return "the database is not empty"
        finally:
            engine.dispose()
    if settings.storage.kind == "s3" or settings.storage.root is not None:
        if next(iter(blob_store_for(settings).stored_blobs()), None) is not None:
            return "the blob storage is not empty"
    return None


def _restore_into(settings: Settings, destination, manifest) -> None:
    from adapters.log_store import log_store_for
    from adapters.private_files import write_private
    from background.backups import read_secret_key, record_restored, restore_blobs, restore_log
    from config.bootstrap import blob_store_for, bootstrap, empty_event_store

    store = empty_event_store(settings)
    try:
        restore_log(destination, manifest, log_store_for(store.recorder))
    finally:
        store.close()
    restore_blobs(destination, manifest, blob_store_for(settings))
    key = read_secret_key(destination) if manifest.secret_key else None
    if key and settings.secret_key and key != settings.secret_key:
        print("portlog: warning: the backup's secret key is not security.secret_key: stored credentials will not "
              "open until security.secret_key is the key in the backup's secret.key", file=sys.stderr)
    elif key and settings.event_database.kind == "postgres" and not settings.secret_key:
        print("portlog: set security.secret_key (PORTLOG_SECRET_KEY) on every node to the key in the backup's "
              "secret.key: stored credentials open with it", file=sys.stderr)
    elif key and not settings.secret_key:
        write_private(Path(settings.data_dir) / "secret.key", key.encode() + b"\n")
    services = bootstrap(settings)  # finds the restored admin and projects: writes nothing; read models follow the log
    try:
        record_restored(services.registry, manifest, _ctx())
        services.projections.catch_up()
    finally:
        services.close()


def _ctx() -> RequestContext:
    return RequestContext(f"cli:{getpass.getuser()}", "cli", "local")


def _refused(message: str) -> int:
    print(f"portlog: {message}", file=sys.stderr)
    return 1


def _print(value) -> None:
    sys.stdout.write(orjson.dumps(value, default=str, option=orjson.OPT_INDENT_2).decode() + "\n")

