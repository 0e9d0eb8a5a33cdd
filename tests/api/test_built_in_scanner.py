"""The built-in scanner's registration: Portlog reaches its own adapter at `<url>/scanner` through
the same client as any adapter, and the outbound guard lets that one URL through, no other."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from adapters.passwords import Argon2SecretHasher
from adapters.scanner_client import ScannerError
from api.app import create_app
from config.bootstrap import bootstrap
from config.settings import Settings
from domain.scanners import API_KEY_HEADER
from tests.support.scanner_adapter import ScannerAdapter
from tests.support.server import ADMIN_PASSWORD


@pytest.fixture
def own_adapter():
    server = ScannerAdapter(api_key=None, prefix="/scanner")  # the key is set once Portlog derived it
    yield server
    server.close()


def test_the_built_in_scanner_is_registered_default_and_reachable_only_at_its_url(tmp_path, own_adapter):
    port = own_adapter.server.server_address[1]
    # No loopback allowance: only the guard's exception for Portlog's own adapter lets this through.
    settings = Settings(data_dir=tmp_path / "data", admin_password=ADMIN_PASSWORD, port=port)
    services = bootstrap(settings, hasher=Argon2SecretHasher(fast=True))
    try:
        row = services.scanner_registrations.default()
        assert (row.name, row.url, row.auth, row.immutable) == (
            "Portlog", f"http://127.0.0.1:{port}/scanner", API_KEY_HEADER, True)
        assert not row.has_credential  # derived from the signing key, never stored
        own_adapter.api_key = services.built_in_scanner_key
        registration = services.scanners.get(row.uuid)
        assert services.scanners.credential(row.uuid) == services.built_in_scanner_key

        with services.scanner_client(row.url, row.auth, services.built_in_scanner_key, False) as client:
            assert client.metadata()["scanner"]["name"] == "Fixture"
        assert registration.settings.url == row.url
        # The same host and port under any other URL is Portlog's own address: refused.
        assert services.outbound.refusal_of(row.url) is not None
        with services.scanner_client(f"http://127.0.0.1:{port}/elsewhere", "", None, False) as client:
            with pytest.raises(ScannerError, match="refused"):
                client.metadata()
    finally:
        services.close()

    # A command line process beside the server (its settings need not name the served port)
    # leaves the registration alone; a later serving start on another port moves it with it, and
    # it stays the one default.
    beside = bootstrap(Settings(data_dir=tmp_path / "data", admin_password=ADMIN_PASSWORD, port=port + 7),
                       hasher=Argon2SecretHasher(fast=True))
    try:
        assert [r.url for r in beside.scanner_registrations.all()] == [f"http://127.0.0.1:{port}/scanner"]
    finally:
        beside.close()
    moved = bootstrap(Settings(data_dir=tmp_path / "data", admin_password=ADMIN_PASSWORD, port=port + 1),
                      hasher=Argon2SecretHasher(fast=True))
    try:
        with TestClient(create_app(moved)):
            rows = moved.scanner_registrations.all()
        assert [(r.name, r.url, r.is_default) for r in rows] == [
            ("Portlog", f"http://127.0.0.1:{port + 1}/scanner", True)]
    finally:
        moved.close()
