from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from adapters.passwords import Argon2SecretHasher
from api.app import create_app
from api.bootstrap import bootstrap
from api.settings import Settings
from domain.context import RequestContext
from tests.support.server import ADMIN_PASSWORD, start_server

# The projects the tests push into (the first component of every repository name they use).
TEST_PROJECTS = ("team", "race", "a", "m", "z", "mirror", "trunc")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", admin_password=ADMIN_PASSWORD)


@pytest.fixture
def services(settings: Settings):
    services = bootstrap(settings, hasher=Argon2SecretHasher(fast=True))
    for project in TEST_PROJECTS:
        services.admin.create_project(project, False, RequestContext("admin", "test-setup"))
    services.projections.catch_up()
    yield services
    services.close()


@pytest.fixture
def client(services):
    """The administrator, with Basic credentials on every request (`auth=None` per request
    for an anonymous one)."""
    with TestClient(create_app(services)) as test_client:
        test_client.auth = ("admin", ADMIN_PASSWORD)
        yield test_client


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """A real `portlog serve` process, shared by the tests of one module, with the test projects."""
    root = tmp_path_factory.mktemp("live")
    server = start_server(root / "data", root / "serve.log", projects=TEST_PROJECTS)
    yield server
    server.stop()
