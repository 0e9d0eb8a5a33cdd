"""POST /service/token against a real `portlog serve`, with httpx's form post, as containerd
asks: the password grant with access_type=offline, then the refresh-token grant, then a pull."""

from __future__ import annotations

import httpx
import pytest

from tests.support.oci import push_image

pytestmark = pytest.mark.e2e


def test_password_then_refresh_grant_then_pull(live_server):
    with live_server.client() as admin:
        push_image(admin, "team/oauth", "1", seed="oauth-e2e")
    with httpx.Client(base_url=live_server.url, timeout=60) as client:
        challenge = client.get("/v2/team/oauth/manifests/1")
        assert challenge.status_code == 401 and 'service="portlog"' in challenge.headers["www-authenticate"]
        user, password = live_server.admin_auth
        first = client.post("/service/token", data={
            "grant_type": "password", "service": "portlog", "client_id": "containerd-client",
            "username": user, "password": password, "access_type": "offline"})
        assert first.status_code == 200, first.text
        refresh = first.json()["refresh_token"]
        second = client.post("/service/token", data={
            "grant_type": "refresh_token", "service": "portlog", "client_id": "containerd-client",
            "refresh_token": refresh, "scope": "repository:team/oauth:pull"})
        assert second.status_code == 200, second.text
        assert second.json()["scope"] == "repository:team/oauth:pull"
        pulled = client.get("/v2/team/oauth/manifests/1",
                            headers={"Authorization": f"Bearer {second.json()['access_token']}",
                                     "Accept": "application/vnd.oci.image.manifest.v1+json"})
        assert pulled.status_code == 200
        as_bearer = client.get("/v2/team/oauth/manifests/1", headers={"Authorization": f"Bearer {refresh}"})
        assert as_bearer.status_code == 401
