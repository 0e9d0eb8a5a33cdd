from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from api.bootstrap import bootstrap
from api.settings import Settings
from tests.support.server import start_server


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def services(settings: Settings):
    services = bootstrap(settings)
    yield services
    services.close()


@pytest.fixture
def client(services):
    with TestClient(create_app(services)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """A real `portlog serve` process, shared by the tests of one module."""
    root = tmp_path_factory.mktemp("live")
    server = start_server(root / "data", root / "serve.log")
    yield server
    server.stop()
