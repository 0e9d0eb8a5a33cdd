"""PostgreSQL for tests and benchmarks: a server to create throw-away databases on.

`server()` answers, in this order: the server named by PORTLOG_TEST_POSTGRES (a DSN without a
database name, e.g. `postgresql://postgres@127.0.0.1:5432`), the machine's own server on
127.0.0.1:5432 when it lets the `postgres` user in without a password (started with
`pg_ctlcluster` when it is installed but down; Debian's default asks TCP clients for one), or a private
cluster made with `initdb` in a directory of its own on a free port (as the `postgres` user
when running as root). The Debian package `postgresql-15` provides all three.

    pg = postgres.server()
    dsn = pg.create_database()      # postgresql://user@host:port/portlog_<random>
    ...
    pg.drop_database(dsn)
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from infra.services import processes

HOST = "127.0.0.1"
DEFAULT_PORT = 5432
SUPERUSER = "postgres"


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    password: str = ""
    cluster_dir: Path | None = None  # a private cluster this process started

    def dsn(self, database: str = "postgres") -> str:
        secret = f":{self.password}" if self.password else ""
        return f"postgresql://{self.user}{secret}@{self.host}:{self.port}/{database}"

    def create_database(self, prefix: str = "portlog", *, durable: bool = True) -> str:
        """A new empty database; `durable=False` commits without waiting for the disk (tests)."""
        name = f"{prefix}_{secrets.token_hex(6)}"
        self._admin(f'CREATE DATABASE "{name}"')
        if not durable:
            self._admin(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        return self.dsn(name)

    def empty_database(self, dsn: str) -> None:
        """Deletes every row of every table and restarts the sequences: much cheaper than a new
        database, or TRUNCATE, for the few rows a test leaves behind."""
        with psycopg.connect(dsn, connect_timeout=5) as connection:
            for (table,) in connection.execute(
                    "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables "
                    "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')").fetchall():
                connection.execute(f"DELETE FROM {table}")
            for (sequence,) in connection.execute(
                    "SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename) FROM pg_sequences").fetchall():
                connection.execute(f"ALTER SEQUENCE {sequence} RESTART")

    def drop_database(self, dsn: str) -> None:
        name = urlsplit(dsn).path.lstrip("/")
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def restart(self) -> None:
        """Fast shutdown (open connections are cut) and start again: private clusters only."""
        if self.cluster_dir is None:
            raise RuntimeError("only a private cluster is restarted by the tests")
        _as_postgres([_binary("pg_ctl"), "-D", str(self.cluster_dir / "data"), "-l",
                      str(self.cluster_dir / "postgres.log"), "-m", "fast", "-w", "restart"])

    def stop(self) -> None:
        if self.cluster_dir is not None:
            _as_postgres([_binary("pg_ctl"), "-D", str(self.cluster_dir / "data"), "-m", "fast", "-w", "stop"])
            shutil.rmtree(self.cluster_dir, ignore_errors=True)

    def _admin(self, statement: str) -> None:
        with psycopg.connect(self.dsn(), autocommit=True, connect_timeout=5) as connection:
            connection.execute(statement)


def server() -> PostgresServer:
    configured = os.environ.get("PORTLOG_TEST_POSTGRES")
    if configured:
        parts = urlsplit(configured)
        return PostgresServer(parts.hostname or HOST, parts.port or DEFAULT_PORT,
                              parts.username or SUPERUSER, parts.password or "")
    local = PostgresServer(HOST, DEFAULT_PORT, SUPERUSER)
    state = _state(local)
    if state == "down" and _start_machine_cluster():
        state = _wait_while_down(local)
    # "refused": it runs but wants a password (Debian's default for TCP): not ours to use.
    return local if state == "ready" else private_cluster()


def _state(pg: PostgresServer) -> str:
    """ready, refused (it answers but will not let us in) or down."""
    try:
        with psycopg.connect(pg.dsn(), connect_timeout=3):
            return "ready"
    except psycopg.OperationalError as error:
        return "down" if "Connection refused" in str(error) or "timeout" in str(error) else "refused"


def _wait_while_down(pg: PostgresServer, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while (state := _state(pg)) == "down" and time.monotonic() < deadline:
        time.sleep(0.2)
    return state


def _start_machine_cluster() -> bool:
    if shutil.which("pg_ctlcluster") is None or not Path("/etc/postgresql").is_dir():
        return False
    versions = sorted(os.listdir("/etc/postgresql"))
    if not versions:
        return False
    started = subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
        capture_output=True, text=True)
    return started.returncode == 0 or "already running" in started.stderr


def private_cluster() -> PostgresServer:
    """A cluster of our own on a free port, in a new directory under the system's temporary
    directory (the `postgres` user must reach it when we run as root); `stop()` removes it."""
    directory = Path(tempfile.mkdtemp(prefix="portlog-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(directory, SUPERUSER, SUPERUSER)
    port = processes.free_port()
    data = directory / "data"
    _as_postgres([_binary("initdb"), "-D", str(data), "-A", "trust", "-U", SUPERUSER, "-E", "UTF8",
                  "--locale=C.UTF-8"])
    _as_postgres([_binary("pg_ctl"), "-D", str(data), "-l", str(directory / "postgres.log"), "-w", "-o",
                  f"-p {port} -k {directory} -c listen_addresses={HOST}", "start"])
    pg = PostgresServer(HOST, port, SUPERUSER, cluster_dir=directory)
    if _wait_while_down(pg) != "ready":
        raise RuntimeError(f"private PostgreSQL did not start: see {directory / 'postgres.log'}")
    return pg


def _binary(name: str) -> str:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    for bin_dir in reversed(versions):
        if (bin_dir / name).exists():
            return str(bin_dir / name)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: install the Debian package postgresql-15")
    return found


def _as_postgres(command: list[str]) -> None:
    if os.geteuid() == 0:
        command = ["runuser", "-u", SUPERUSER, "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}{done.stderr}")

