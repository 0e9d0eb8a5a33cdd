"""Failed logins: locked per (account, source address) with backoff, counted in the database
so every worker and node sees them, forgotten after a while; and unknown accounts cost as much
to refuse as known ones (no user enumeration by timing)."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from adapters.passwords import Argon2SecretHasher
from api.app import create_app
from config.bootstrap import bootstrap
from tests.support.auth import PASSWORD, create_user
from tests.support.server import ADMIN_PASSWORD

ATTACKER, OWNER = ("203.0.113.7", 40000), ("198.51.100.2", 40000)


def client_at(services, address) -> TestClient:
    return TestClient(create_app(services), client=address)


def fail_five_times(client, username="admin") -> None:
    for _ in range(5):
        assert client.get("/service/token", auth=(username, "wrong")).status_code == 401


def test_lockout_from_one_address_does_not_lock_another(services):
    with client_at(services, ATTACKER) as attacker, client_at(services, OWNER) as owner:
        fail_five_times(attacker)
        assert attacker.get("/service/token", auth=("admin", ADMIN_PASSWORD)).status_code == 429
        assert owner.get("/service/token", auth=("admin", ADMIN_PASSWORD)).status_code == 200
        assert owner.get("/api/v1/users/current", auth=("admin", ADMIN_PASSWORD)).status_code == 200


@pytest.mark.parametrize("method, path, shape", [
    ("GET", "/service/token", "oci"), ("GET", "/v2/", "oci"), ("GET", "/api/v1/users/current", "problem"),
    ("GET", "/api/v2.0/users/current", "harbor"), ("POST", "/c/login", "problem")])
def test_every_login_path_answers_429_with_retry_after(services, method, path, shape):
    with client_at(services, ATTACKER) as attacker:
        fail_five_times(attacker)
        if path == "/c/login":
            response = attacker.post(path, data={"principal": "admin", "password": ADMIN_PASSWORD})
        else:
            response = attacker.request(method, path, auth=("admin", ADMIN_PASSWORD))
    assert response.status_code == 429, response.text
    assert 0 < int(response.headers["retry-after"]) <= 60
    if shape == "problem":
        assert response.headers["content-type"] == "application/problem+json"
    else:
        assert response.json()["errors"][0]["code"] in ("TOOMANYREQUESTS", "TOO_MANY_REQUESTS")


@pytest.mark.both_databases
def test_counters_are_shared_by_two_app_instances_on_one_database(services, settings):
    other = bootstrap(settings, hasher=Argon2SecretHasher(fast=True))
    try:
        with client_at(services, ATTACKER) as first, client_at(other, ATTACKER) as second:
            for attempt in range(5):
                chosen = first if attempt % 2 else second
                assert chosen.get("/service/token", auth=("admin", "wrong")).status_code == 401
            assert second.get("/service/token", auth=("admin", ADMIN_PASSWORD)).status_code == 429
            assert first.get("/service/token", auth=("admin", ADMIN_PASSWORD)).status_code == 429
    finally:
        other.close()


@pytest.mark.both_databases
def test_locks_back_off_and_expire(services):
    failures = services.authenticator.failures
    now = [1_000_000.0]
    failures.clock = lambda: now[0]
    with client_at(services, ATTACKER) as attacker:
        fail_five_times(attacker)
        first = int(attacker.get("/service/token", auth=("admin", "wrong")).headers["retry-after"])
        now[0] += first + 1  # the lock has passed: one more failure locks for twice as long
        assert attacker.get("/service/token", auth=("admin", "wrong")).status_code == 401
        second = int(attacker.get("/service/token", auth=("admin", ADMIN_PASSWORD)).headers["retry-after"])
        assert second >= 2 * first - 1
        now[0] += 3600  # long quiet: everything is forgotten, and purged
        assert failures.purge() == 1
        assert attacker.get("/service/token", auth=("admin", ADMIN_PASSWORD)).status_code == 200


def test_a_success_clears_the_count_of_its_address(services):
    with client_at(services, ATTACKER) as client:
        for _ in range(4):
            client.get("/service/token", auth=("admin", "wrong"))
        assert client.get("/service/token", auth=("admin", ADMIN_PASSWORD)).status_code == 200
        for _ in range(4):
            client.get("/service/token", auth=("admin", "wrong"))
        assert client.get("/service/token", auth=("admin", ADMIN_PASSWORD)).status_code == 200


class CountingHasher(Argon2SecretHasher):
    """The real hasher, counting verifications."""

    def __init__(self) -> None:
        super().__init__(fast=True)
        self.verifications = 0

    def verify(self, hashed: str, secret: str) -> bool:
        self.verifications += 1
        return super().verify(hashed, secret)


@pytest.fixture
def counted(settings):
    hasher = CountingHasher()
    services = bootstrap(settings, hasher=hasher)
    with TestClient(create_app(services)) as client:
        client.auth = ("admin", ADMIN_PASSWORD)
        yield client, hasher
    services.close()


def test_unknown_accounts_take_a_hash_verification_like_known_ones(counted):
    client, hasher = counted
    create_user(client, "known")
    robot = client.post("/api/v1/robots", json={"name": "ci", "project": None, "permissions": [
        {"project": "*", "resource": "repository", "action": "pull"}]}).json()["name"]
    attempts = [("/service/token", "known"), ("/service/token", "nobody"), ("/service/token", robot),
                ("/service/token", "robot$nobody"), ("/api/v1/users/current", "nobody"),
                ("/v2/", "nobody")]
    for path, username in attempts:
        before = hasher.verifications
        assert client.get(path, auth=(username, "wrong-" + PASSWORD)).status_code == 401
        assert hasher.verifications - before == 1, (path, username)
    before = hasher.verifications
    assert client.post("/c/login", data={"principal": "nobody", "password": "x"}, auth=None).status_code == 401
    assert hasher.verifications - before == 1
