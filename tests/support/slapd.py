"""OpenLDAP for the tests: one slapd per pytest-xdist worker (ports of its own), started when a
test first needs it; every test gets it with the entries as they were at the start."""

from __future__ import annotations

from typing import Iterator

import pytest

from infra.services import slapd as slapd_service
from infra.services.slapd import SlapdServer


@pytest.fixture(scope="session")
def _slapd_server(tmp_path_factory) -> Iterator[SlapdServer]:
    server = slapd_service.start(tmp_path_factory.mktemp("slapd"))
    yield server
    server.stop(kill=True)


@pytest.fixture
def slapd(_slapd_server) -> SlapdServer:
    """The directory (url, ldaps_url, ca_file, admin_dn, admin_password, set_password,
    remove_member, ...), running and reset: a test may change it or stop it."""
    if _slapd_server.process is None or _slapd_server.process.poll() is not None:
        _slapd_server.start()
    _slapd_server.reset()
    return _slapd_server


@pytest.fixture(scope="session")
def _slapd_memberof_server(tmp_path_factory) -> Iterator[SlapdServer]:
    server = slapd_service.start(tmp_path_factory.mktemp("slapd-memberof"), memberof=True)
    yield server
    server.stop(kill=True)


@pytest.fixture
def slapd_memberof(_slapd_memberof_server) -> SlapdServer:
    """As `slapd`, with the memberOf overlay: user entries list their groups (as in AD)."""
    _slapd_memberof_server.reset()
    return _slapd_memberof_server
