"""Test helpers: users, roles and tokens, created through the real management API."""

from __future__ import annotations

import base64

import orjson

PASSWORD = "Secret-Pass-1"


def create_user(client, username: str, password: str = PASSWORD, admin: bool = False) -> None:
    response = client.post("/api/v1/users", json={"username": username, "password": password,
                                                  "system_admin": admin})
    assert response.status_code == 201, response.text


def grant(client, project: str, username: str, role: str, repository: str | None = None) -> None:
    body = {"role": role, **({"repository": repository} if repository else {})}
    response = client.put(f"/api/v1/projects/{project}/members/{username}", json=body)
    assert response.status_code == 200, response.text


def token(client, scopes: list[str], auth: tuple[str, str] | None) -> str:
    response = client.get("/service/token", params={"service": "portlog", "scope": scopes}, auth=auth)
    assert response.status_code == 200, response.text
    return response.json()["token"]


def token_access(jwt_token: str) -> list[dict]:
    payload = jwt_token.split(".")[1]
    return orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["access"]


def bearer(jwt_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {jwt_token}"}
