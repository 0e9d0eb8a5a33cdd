"""First start without PORTLOG_ADMIN_PASSWORD: a password is generated, printed once, and works."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support.server import start_server

pytestmark = pytest.mark.e2e


def test_generated_admin_password_is_printed_once_and_works(tmp_path):
    server = start_server(tmp_path / "data", tmp_path / "first.log", extra_env={"PORTLOG_ADMIN_PASSWORD": ""})
    try:
        match = re.search(r"'admin' with password (\S+)", server.log_path.read_text())
        assert match, server.log_path.read_text()
        password = match.group(1)
        me = httpx.get(f"{server.url}/api/v1/users/current", auth=("admin", password))
        assert me.status_code == 200 and me.json()["system_admin"] is True
        library = httpx.get(f"{server.url}/api/v1/projects/library")
        assert library.json()["public"] is True
    finally:
        server.stop()
    again = start_server(tmp_path / "data", tmp_path / "second.log", extra_env={"PORTLOG_ADMIN_PASSWORD": ""})
    try:
        assert "with password" not in again.log_path.read_text()
        assert httpx.get(f"{again.url}/api/v1/users/current", auth=("admin", password)).status_code == 200
    finally:
        again.stop()
