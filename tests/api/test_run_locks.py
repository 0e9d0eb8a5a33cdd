"""One garbage collection at a time, and one backup per destination, across the processes and
nodes that share the data (adapters/run_locks.py): embedded, lock files in the data directory;
scale-out, advisory locks in the shared PostgreSQL database. And two scale-out nodes starting
together on a fresh database: both start, one administrator, one built-in scanner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from adapters.passwords import Argon2SecretHasher
from adapters.run_locks import FileRunLocks
from api.app import create_app
from background.backups import backup_lock
from background.gc_jobs import GC_LOCK
from config.bootstrap import bootstrap
from config.settings import Settings
from domain.account import User
from domain.context import RequestContext
from domain.errors import ConflictError
from projections.scanners import ScannersView
from tests.support.server import ADMIN_PASSWORD
from tests.support.waiting import wait_until

CTX = RequestContext("admin", "test")
SECRET_KEY = "a secret key of the registry, 32 characters or more"
ROOT = Path(__file__).resolve().parents[2]

# Another process taking the run locks named on its command line through the composition root,
# as a garbage collection or a backup running in it would, and holding them until it is killed.
HOLDER = """
import sys, time
from config.bootstrap import run_locks_for
from config.settings import Settings
locks = run_locks_for(Settings.from_env())
held = [locks.try_acquire(name) for name in sys.argv[1:]]
print("held" if all(held) else "refused", flush=True)
time.sleep(3600)
"""


@pytest.fixture
def settings(settings):
    """With a configured secret key (scale-out has no other), as backups need."""
    return replace(settings, secret_key=SECRET_KEY)


@pytest.fixture
def holder(settings):
    """Starts a process holding the given locks; kills those still running at the end."""
    started: list[subprocess.Popen] = []
    env = {**os.environ, "PORTLOG_DATA_DIR": str(settings.data_dir)}
    if settings.event_database.kind == "postgres":
        env["PORTLOG_DATABASE_URL"] = settings.event_database.url()

    def start(*names: str) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", HOLDER, *names], cwd=ROOT, env=env,
                                   stdout=subprocess.PIPE, text=True)
        started.append(process)
        assert process.stdout.readline().strip() == "held"
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def gc_refused(client) -> bool:
    response = client.post("/api/v1/gc/runs", json={"grace_period_seconds": 0, "dry_run": True})
    if response.status_code == 409:
        assert response.json()["detail"] == "a garbage collection is already running"
        return True
    assert response.status_code == 202, response.text
    return False


def finished_gc(client, run_id) -> dict:
    return wait_until(lambda: (r := client.get(f"/api/v1/gc/runs/{run_id}").json())["status"] != "running" and r,
                      what="the garbage collection's end")


def backup_refused(client, destination: Path) -> bool:
    response = client.post("/api/v1/backups", json={"destination": str(destination)})
    if response.status_code == 409:
        assert "running" in response.json()["detail"]
        return True
    assert response.status_code == 202, response.text
    return False


def finished_backup(client, backup_id) -> dict:
    return wait_until(lambda: (b := client.get(f"/api/v1/backups/{backup_id}").json())["status"] != "running" and b,
                      timeout=60, what="the backup's end")


def last_backup(client) -> dict:
    return client.get("/api/v1/backups").json()[0]


@pytest.mark.both_databases
def test_a_gc_running_in_another_process_refuses_a_start_here_until_that_process_dies(client, services, holder):
    other = holder(GC_LOCK)
    assert gc_refused(client)
    with pytest.raises(ConflictError):
        services.gc_jobs.start(0, True, "cli", CTX, background=False)  # the command line's and the schedule's way
    assert client.get("/api/v1/gc/runs").json() == []  # nothing refused was recorded
    other.send_signal(signal.SIGKILL)
    other.wait()
    wait_until(lambda: not gc_refused(client), what="a start after the holder was killed")
    assert len(client.get("/api/v1/gc/runs").json()) == 1


@pytest.mark.both_databases
def test_a_backup_running_in_another_process_refuses_the_same_destination_only(client, services, holder, tmp_path):
    busy, free = tmp_path / "busy", tmp_path / "free"
    destination = services.backup_destination(str(busy))
    other = holder(backup_lock(destination))
    assert backup_refused(client, busy)
    assert not backup_refused(client, free)  # another destination is not held
    assert finished_backup(client, last_backup(client)["id"])["status"] == "succeeded"
    assert backup_refused(client, busy)
    other.send_signal(signal.SIGKILL)
    other.wait()
    wait_until(lambda: not backup_refused(client, busy), what="a backup after the holder was killed")
    assert finished_backup(client, last_backup(client)["id"])["status"] == "succeeded"


@pytest.mark.both_databases
def test_two_nodes_run_one_gc_and_one_backup_per_destination_at_a_time(client, services, settings, tmp_path,
                                                                       monkeypatch):
    """A second set of services on the same data (another worker, another node) in this process:
    while the first runs a garbage collection and a backup, the second may start neither."""
    node_b = bootstrap(settings, hasher=Argon2SecretHasher(fast=True))
    go_on = threading.Event()
    for jobs, method in ((services.collector, "execute"), (services.backup_jobs, "_write")):
        real = getattr(jobs, method)
        monkeypatch.setattr(jobs, method, lambda *args, real=real: (go_on.wait(60), real(*args)))
    destination = tmp_path / "backup"
    try:
        with TestClient(create_app(node_b)) as client_b:
            client_b.auth = ("admin", ADMIN_PASSWORD)
            assert not gc_refused(client)
            assert not backup_refused(client, destination)
            assert gc_refused(client_b) and backup_refused(client_b, destination)
            assert gc_refused(client)  # and on the same node
            go_on.set()
            assert finished_gc(client, client.get("/api/v1/gc/runs").json()[0]["id"])["status"] == "succeeded"
            assert finished_backup(client, last_backup(client)["id"])["status"] == "succeeded"
            assert not gc_refused(client_b)
            assert finished_gc(client_b, client_b.get("/api/v1/gc/runs").json()[0]["id"])["status"] == "succeeded"
            assert not backup_refused(client_b, destination)
            assert finished_backup(client_b, last_backup(client_b)["id"])["status"] == "succeeded"
    finally:
        node_b.close()


def test_lock_files_are_private_and_stay_after_release(tmp_path):
    locks = FileRunLocks(tmp_path / "data" / "locks")
    held = locks.try_acquire(GC_LOCK)
    assert held is not None and locks.try_acquire(GC_LOCK) is None  # two opens exclude each other
    assert locks.try_acquire("backup-0123456789abcdef") is not None  # other names are other locks
    held.release()
    held.release()  # twice is harmless
    again = locks.try_acquire(GC_LOCK)
    assert again is not None
    again.release()
    path = tmp_path / "data" / "locks" / "gc.lock"
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    with pytest.raises(ValueError):
        locks.try_acquire("../gc")


@pytest.fixture
def fresh_postgres(postgres_server):
    dsn = postgres_server.create_database(durable=False)
    yield dsn
    postgres_server.drop_database(dsn)


class _MeetingHasher(Argon2SecretHasher):
    """Argon2, its first hash waiting for the other node's: both nodes found no administrator
    before either records one."""

    def __init__(self, meeting: threading.Barrier) -> None:
        super().__init__(fast=True)
        self.meeting = meeting

    def hash(self, secret: str) -> str:
        if self.meeting is not None:
            meeting, self.meeting = self.meeting, None
            meeting.wait()
        return super().hash(secret)


def test_two_nodes_starting_together_on_a_fresh_database_both_start(fresh_postgres, tmp_path, monkeypatch):
    database = Settings.from_env({"PORTLOG_DATABASE_URL": fresh_postgres}).database
    admin_meeting, scanner_meeting = threading.Barrier(2, timeout=60), threading.Barrier(2, timeout=60)
    name_taken, met = ScannersView.name_taken, threading.local()

    def after_both_looked(view, name: str, other_than: str | None = None) -> bool:
        """Both nodes found no built-in scanner before either registers one."""
        taken = name_taken(view, name, other_than)
        if not getattr(met, "done", False):
            met.done = True
            scanner_meeting.wait()
        return taken

    monkeypatch.setattr(ScannersView, "name_taken", after_both_looked)
    started, failures = [], []

    def start(node: str) -> None:
        try:
            started.append(bootstrap(Settings(data_dir=tmp_path / node, database=database, secret_key=SECRET_KEY),
                                     hasher=_MeetingHasher(admin_meeting)))
        except BaseException as error:
            failures.append(error)

    nodes = [threading.Thread(target=start, args=(node,)) for node in ("a", "b")]
    for node in nodes:
        node.start()
    for node in nodes:
        node.join(120)
    try:
        assert failures == [] and len(started) == 2
        registrations = started[0].scanner_registrations.all()
        assert len(registrations) == 1 and registrations[0].is_default
        generated = [s.generated_admin_password for s in started if s.generated_admin_password]
        assert len(generated) == 1  # the winner's only: the loser's would not open the account
        admin = started[0].registry.load(User.create_id("admin"))
        assert started[0].admin.hasher.verify(admin.password_hash, generated[0])
    finally:
        for services in started:
            services.close()
