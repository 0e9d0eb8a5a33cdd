"""Helpers for testing the Harbor API v2.0 surface with the unmodified `harborapi` client."""

from __future__ import annotations

import httpx
from harborapi import HarborAsyncClient

from tests.support.server import ADMIN_PASSWORD, LiveServer


def harbor_client(server: LiveServer, username: str = "admin", secret: str = ADMIN_PASSWORD) -> HarborAsyncClient:
    return HarborAsyncClient(url=f"{server.url}/api/v2.0", username=username, secret=secret, timeout=30)


def id_of(location: str) -> int:
    """The numeric id at the end of a Location such as /api/v2.0/users/17."""
    return int(location.rstrip("/").rsplit("/", 1)[1])


def harbor_errors(response) -> list[tuple[str, str]]:
    """(code, message) pairs of a Harbor error body; asserts its shape."""
    assert response.headers["Content-Type"].startswith("application/json"), response.text
    errors = response.json()["errors"]
    assert errors and all(e["message"] for e in errors), response.text
    return [(e["code"], e["message"]) for e in errors]


def docker_token(server: LiveServer, auth: tuple[str, str], scope: str) -> httpx.Response:
    """GET /service/token with Basic credentials, as docker login does."""
    return httpx.get(f"{server.url}/service/token", auth=auth, params={"service": "portlog", "scope": scope})
