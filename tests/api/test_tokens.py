"""The Docker token service and the attacks on it."""

from __future__ import annotations

import base64
import time

import jwt
import orjson

from api.tokens import ALGORITHM, ISSUER, SERVICE, Scope, TokenIssuer
from config.bootstrap import signing_keys_for
from tests.support.auth import PASSWORD, bearer, create_user, grant, token, token_access
from tests.support.oci import push_image


def setup_guest(client) -> None:
    push_image(client, "team/app", "1", seed="t")
    create_user(client, "guest")
    grant(client, "team", "guest", "guest")


def test_token_holds_only_what_the_principal_has(client):
    setup_guest(client)
    issued = token(client, ["repository:team/app:pull,push"], ("guest", PASSWORD))
    assert token_access(issued) == [{"type": "repository", "name": "team/app", "actions": ["pull"]}]
    assert client.get("/v2/team/app/manifests/1", headers=bearer(issued), auth=None).status_code == 200
    push = client.post("/v2/team/app/blobs/uploads/", headers=bearer(issued), auth=None)
    assert push.status_code == 403  # escalation refused: the guest really lacks push
    assert push.json()["errors"][0]["code"] == "DENIED"


def test_token_asked_with_credentials_carries_every_action_held_on_the_repository(client):
    """oras-py keeps its first token (asked for the first request's scope, often `pull`) for a
    whole push and delete: with credentials, a repository scope gets all that is held there."""
    push_image(client, "team/app", "1", seed="held")
    for name, role, held in (("keeper", "maintainer", ["delete", "pull", "push"]),
                             ("builder", "developer", ["pull", "push"]),
                             ("looker", "guest", ["pull"])):
        create_user(client, name)
        grant(client, "team", name, role)
        issued = token(client, ["repository:team/app:pull"], (name, PASSWORD))
        assert token_access(issued) == [{"type": "repository", "name": "team/app", "actions": held}]
    assert token_access(token(client, ["repository:race/app:pull"], ("keeper", PASSWORD))) == []
    deleted = client.delete("/v2/team/app/manifests/1", headers=bearer(token(
        client, ["repository:team/app:pull"], ("builder", PASSWORD))), auth=None)
    assert deleted.status_code == 403  # a developer holds no delete, whatever the token


def test_anonymous_token_gets_only_what_it_asks(client):
    push_image(client, "library/app", "1", seed="asked")
    assert token_access(token(client, ["repository:library/app:push"], None)) == []


def test_token_response_shape(client):
    response = client.get("/service/token", params={"service": "portlog"}, auth=None)
    body = response.json()
    assert body["token"] == body["access_token"] and body["expires_in"] > 0 and body["issued_at"]


def test_token_for_one_project_never_works_on_another(client):
    push_image(client, "team/app", "1", seed="a")
    push_image(client, "race/app", "1", seed="b")
    create_user(client, "dev")
    grant(client, "team", "dev", "developer")
    issued = token(client, ["repository:team/app:pull,push", "repository:race/app:pull"], ("dev", PASSWORD))
    assert [a["name"] for a in token_access(issued)] == ["team/app"]
    other = client.get("/v2/race/app/manifests/1", headers=bearer(issued), auth=None)
    assert other.status_code == 403


def test_token_without_the_scope_gets_a_challenge_for_it(client):
    push_image(client, "team/app", "1", seed="c")
    push_image(client, "team/two", "1", seed="d")
    issued = token(client, ["repository:team/app:pull"], ("admin", "Portlog-Test-1"))
    response = client.get("/v2/team/two/manifests/1", headers=bearer(issued), auth=None)
    assert response.status_code == 401
    assert 'scope="repository:team/two:pull"' in response.headers["WWW-Authenticate"]
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


def test_anonymous_token_for_public_pull_only(client):
    push_image(client, "library/app", "1", seed="pub")
    issued = token(client, ["repository:library/app:pull,push", "repository:team/app:pull"], None)
    assert token_access(issued) == [{"type": "repository", "name": "library/app", "actions": ["pull"]}]


def test_catalog_scope_only_for_administrators(client):
    create_user(client, "plain")
    assert token_access(token(client, ["registry:catalog:*"], ("plain", PASSWORD))) == []
    admin = token(client, ["registry:catalog:*"], ("admin", "Portlog-Test-1"))
    assert token_access(admin) == [{"type": "registry", "name": "catalog", "actions": ["*"]}]
    assert client.get("/v2/_catalog", headers=bearer(admin), auth=None).status_code == 200


def test_bad_credentials_are_refused(client):
    response = client.get("/service/token", auth=("admin", "wrong"))
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"


def forge(client, claims: dict, key: bytes, algorithm: str = ALGORITHM, kid: str | None = None) -> str:
    services = client.app.state.services
    kid = kid or services.tokens.current.kid
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})


def claims_for(name: str, **extra) -> dict:
    now = int(time.time())
    return {"iss": ISSUER, "aud": SERVICE, "sub": "admin", "iat": now, "exp": now + 60,
            "access": [{"type": "repository", "name": name, "actions": ["pull", "push"]}], **extra}


def test_expired_tampered_foreign_and_unsigned_tokens_are_rejected(client):
    push_image(client, "team/app", "1", seed="e")
    key = client.app.state.services.tokens.current.secret
    url = "/v2/team/app/manifests/1"
    assert client.get(url, headers=bearer(forge(client, claims_for("team/app"), key)), auth=None).status_code == 200

    expired = forge(client, claims_for("team/app", exp=int(time.time()) - 10), key)
    wrong_key = forge(client, claims_for("team/app"), b"x" * 32)
    unknown_kid = forge(client, claims_for("team/app"), key, kid="nope")
    header, payload, signature = forge(client, claims_for("team/app"), key).split(".")
    widened = orjson.loads(base64.urlsafe_b64decode(payload + "=="))
    widened["access"][0]["name"] = "race/app"
    tampered = ".".join([header, base64.urlsafe_b64encode(orjson.dumps(widened)).decode().rstrip("="), signature])
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=")
    unsigned = f"{none_header}.{payload}."
    for bad in (expired, wrong_key, unknown_kid, tampered, unsigned, "not-a-jwt"):
        response = client.get(url, headers=bearer(bad), auth=None)
        assert response.status_code == 401, bad
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_token_that_verified_is_refused_once_it_expires(client):
    """Verified tokens are remembered per process; their expiry is checked again at each use."""
    push_image(client, "team/app", "1", seed="x")
    key = client.app.state.services.tokens.current.secret
    expires = int(time.time()) + 2
    short = forge(client, claims_for("team/app", exp=expires), key)
    url = "/v2/team/app/manifests/1"
    assert client.get(url, headers=bearer(short), auth=None).status_code == 200
    time.sleep(max(0.0, expires - time.time()) + 0.05)
    response = client.get(url, headers=bearer(short), auth=None)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_keys_rotated_since_the_process_started_are_read_again(client, services, settings):
    """After `portlog keys rotate`, a worker started since signs with a key this one never
    loaded: an unknown key id makes it read the keys again; after `--retire`, the retired key's
    tokens (even ones it verified before) are refused."""
    push_image(client, "team/app", "1", seed="r")
    url = "/v2/team/app/manifests/1"
    pull = [Scope("repository", "team/app", ("pull",))]
    old, _ = services.tokens.issue("admin", pull)
    assert client.get(url, headers=bearer(old), auth=None).status_code == 200
    keys = signing_keys_for(settings, services.db)
    keys.rotate(retire_old=True)
    newcomer, _ = TokenIssuer(keys.load()).issue("admin", pull)
    assert client.get(url, headers=bearer(newcomer), auth=None).status_code == 200
    assert services.tokens.current.kid == keys.load()[0].kid  # it signs with the new key too
    refused = client.get(url, headers=bearer(old), auth=None)
    assert refused.status_code == 401 and 'error="invalid_token"' in refused.headers["WWW-Authenticate"]


def test_removed_member_gets_no_scope_in_the_next_token(client):
    setup_guest(client)
    assert token_access(token(client, ["repository:team/app:pull"], ("guest", PASSWORD)))
    assert client.delete("/api/v1/projects/team/members/guest").status_code == 204
    assert token_access(token(client, ["repository:team/app:pull"], ("guest", PASSWORD))) == []


def test_repeated_failed_logins_lock_the_account(client):
    create_user(client, "victim")
    for _ in range(5):
        assert client.get("/service/token", auth=("victim", "wrong")).status_code == 401
    locked = client.get("/service/token", auth=("victim", PASSWORD))
    assert locked.status_code == 429
    assert locked.json()["errors"][0]["code"] == "TOOMANYREQUESTS"


def test_failed_logins_are_recorded_aggregated(client, services):
    from domain.account import User
    create_user(client, "target")
    for _ in range(4):
        client.get("/service/token", auth=("target", "wrong"))
    events = [e for e in services.registry.events.get(User.create_id("target"))
              if isinstance(e, User.LoginsFailed)]
    assert len(events) == 1 and events[0].count == 1  # the rest wait for the window to close
    services.authenticator.flush_failed_logins(force=True)
    events = [e for e in services.registry.events.get(User.create_id("target"))
              if isinstance(e, User.LoginsFailed)]
    assert [e.count for e in events] == [1, 3]


def test_path_tricks_cannot_reach_another_project(client):
    push_image(client, "race/app", "1", seed="f")
    create_user(client, "dev")
    grant(client, "team", "dev", "developer")
    auth = ("dev", PASSWORD)
    for path in ("/v2/team/../race/app/manifests/1", "/v2/team/%2e%2e/race/app/manifests/1",
                 "/v2/team//race/app/manifests/1", "/v2//race/app/manifests/1"):
        response = client.get(path, auth=auth)
        assert response.status_code in (400, 403, 404), path
        assert response.status_code != 200
    scoped = token(client, ["repository:team/../race/app:pull"], auth)
    assert token_access(scoped) == []


def test_names_tried_once_are_forgotten_after_their_window(client, services, monkeypatch):
    """Every name anyone tries was kept for ever (memory an attacker could grow at will)."""
    import api.authn as authn
    for n in range(20):
        client.get("/service/token", auth=(f"nobody{n}", "wrong"))
    assert len(services.authenticator._unrecorded) >= 20
    later = authn.time.monotonic() + authn.FAILED_LOGIN_EVENT_WINDOW + 1
    monkeypatch.setattr(authn.time, "monotonic", lambda: later)
    services.authenticator.flush_failed_logins()
    assert not any(name.startswith("nobody") for name in services.authenticator._unrecorded)
