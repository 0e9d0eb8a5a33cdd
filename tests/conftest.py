from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from adapters.passwords import Argon2SecretHasher
from api.app import create_app
from background import replication_worker
from config.bootstrap import bootstrap
from config.settings import Settings
from domain.context import RequestContext
from infra.services import distribution as distribution_registry
from infra.services import postgres
from tests.support.outbound import LOOPBACK
from tests.support.seaweed import s3_bucket, seaweedfs  # noqa: F401  (fixtures: an S3 server)
from tests.support.server import ADMIN_PASSWORD, start_server
from tests.support.slapd import _slapd_memberof_server, _slapd_server, slapd, slapd_memberof  # noqa: F401  (fixtures: an LDAP directory)

# The projects the tests push into (the first component of every repository name they use).
TEST_PROJECTS = ("team", "race", "a", "m", "z", "mirror", "trunc")
REPLICATION_POLL_SECONDS = 0.05


@pytest.fixture(scope="session")
def postgres_server():
    server = postgres.server()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _shared_postgres_database(postgres_server):
    dsn = postgres_server.create_database(durable=False)
    yield dsn
    postgres_server.drop_database(dsn)


@pytest.fixture
def postgres_database(postgres_server, _shared_postgres_database):
    """An empty PostgreSQL database (its DSN): one per session, emptied for every test."""
    postgres_server.empty_database(_shared_postgres_database)
    return _shared_postgres_database


# Directories whose modules start servers, browsers and benchmarks, and take tens of seconds.
SLOW_FIRST = ("tests/e2e/", "tests/bench/", "tests/ui/")


def pytest_collection_modifyitems(items):
    """The slow modules go out to the workers first (`--dist loadfile` hands out modules in
    collection order): started last, one of them would keep the run going while the other
    workers idle."""
    items.sort(key=lambda item: not item.nodeid.startswith(SLOW_FIRST))


def pytest_generate_tests(metafunc):
    """Tests marked `both_databases` run once on SQLite (embedded) and once on PostgreSQL
    (scale-out). PORTLOG_TEST_DATABASE=postgres runs every test on PostgreSQL."""
    if "database" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_databases"):
        metafunc.parametrize("database", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def database(request) -> str:
    return getattr(request, "param", None) or os.environ.get("PORTLOG_TEST_DATABASE", "sqlite")


@pytest.fixture(scope="session")
def _embedded_first_start(tmp_path_factory) -> Path:
    """A data directory right after an embedded registry's first start (event log, read-model
    tables, admin, keys), made once per worker: each test starts from a copy, the same state
    a bootstrap of its own would make, without creating some sixty tables again."""
    data_dir = tmp_path_factory.mktemp("first-start") / "data"
    bootstrap(Settings(data_dir=data_dir, admin_password=ADMIN_PASSWORD), hasher=Argon2SecretHasher(fast=True)).close()
    return data_dir


@pytest.fixture
def settings(tmp_path: Path, database: str, request) -> Settings:
    # The peers of these tests (webhook receivers, registries) listen on loopback, which
    # outbound connections may not reach by default.
    settings = Settings(data_dir=tmp_path / "data", admin_password=ADMIN_PASSWORD, outbound_allow=LOOPBACK)
    if database == "sqlite" and not request.node.get_closest_marker("first_start"):
        shutil.copytree(request.getfixturevalue("_embedded_first_start"), settings.data_dir)
    if database == "postgres":
        dsn = request.getfixturevalue("postgres_database")
        settings = replace(settings, database=Settings.from_env({"PORTLOG_DATABASE_URL": dsn}).database)
    return settings


@pytest.fixture
def services(settings: Settings):
    services = bootstrap(settings, hasher=Argon2SecretHasher(fast=True))
    for project in TEST_PROJECTS:
        services.admin.create_project(project, False, RequestContext("admin", "test-setup"))
    services.projections.catch_up()
    yield services
    services.close()


@pytest.fixture
def client(services, monkeypatch):
    """The administrator, with Basic credentials on every request (`auth=None` per request
    for an anonymous one)."""
    # The replication pool picks up new tasks every poll interval: the tests that wait for a
    # replication need not wait out the service's 1 s.
    monkeypatch.setattr(replication_worker, "POLL_SECONDS", REPLICATION_POLL_SECONDS)
    with TestClient(create_app(services)) as test_client:
        test_client.auth = ("admin", ADMIN_PASSWORD)
        yield test_client


@pytest.fixture(scope="module")
def live_server(request, tmp_path_factory):
    """A real `portlog serve` process, shared by the tests of one module, with the test projects:
    embedded (SQLite, filesystem), or with `scale-out` as the fixture's parameter on a fresh
    PostgreSQL database and S3 bucket (modules parametrize it indirectly)."""
    root = tmp_path_factory.mktemp("live")
    env, cleanup = {}, []
    if getattr(request, "param", "embedded") == "scale-out":
        env, cleanup = scale_out_environment(request)
    server = start_server(root / "data", root / "serve.log", extra_env=env, projects=TEST_PROJECTS)
    yield server
    server.stop()
    for step in cleanup:
        step()


def scale_out_environment(request) -> tuple[dict[str, str], list]:
    """PORTLOG_DATABASE_URL and PORTLOG_STORAGE_URL of a new database and bucket."""
    pg, s3 = request.getfixturevalue("postgres_server"), request.getfixturevalue("seaweedfs")
    dsn = pg.create_database(durable=False)
    bucket = f"live-{secrets.token_hex(6)}"
    env = {"PORTLOG_DATABASE_URL": dsn,
           "PORTLOG_STORAGE_URL": f"s3://{s3.access_key}:{s3.secret_key}@{s3.endpoint}/{bucket}"
                                  f"?secure=false&region={s3.region}"}
    return env, [lambda: pg.drop_database(dsn)]


# The account of `distribution_with_auth` (htpasswd, Basic authentication).
DISTRIBUTION_CREDENTIALS = ("peer-user", "Peer-Pass-1")


@pytest.fixture(scope="module")
def distribution(tmp_path_factory):
    """A private CNCF Distribution (`docker-registry`) without authentication, shared by the
    tests of one module: a peer registry to replicate to and from. Tests that stop it start it
    again (`start()`, same port and data)."""
    with distribution_registry.running(tmp_path_factory.mktemp("distribution")) as server:
        yield server


@pytest.fixture(scope="module")
def distribution_with_auth(tmp_path_factory):
    """The same behind htpasswd: `server.credentials` is the one account it accepts."""
    directory = tmp_path_factory.mktemp("distribution-auth")
    with distribution_registry.running(directory, auth=DISTRIBUTION_CREDENTIALS) as server:
        yield server
