"""oras-py, the ORAS Python SDK, unmodified, against a live `portlog serve` through the Docker
token flow: push, pull, attach a referrer and delete with a user's credentials.

oras-py keeps the first token it gets and sends it again on every later 401, so one client
pushing and then deleting works only if that first token carries every action the account
holds on the repository (docs/access-control.md, "Tokens asked for with credentials").
"""

from __future__ import annotations

from pathlib import Path

import httpx
import oras.client
import oras.oci
import pytest

from tests.support.auth import PASSWORD, create_user, grant

pytestmark = pytest.mark.e2e

REPOSITORY = "team/orasapp"


@pytest.fixture(scope="module")
def accounts(live_server):
    with live_server.client() as client:
        for name, role in (("oras-maintainer", "maintainer"), ("oras-dev", "developer")):
            create_user(client, name)
            grant(client, "team", name, role)


def oras_as(live_server, tmp_path: Path, username: str | None) -> oras.client.OrasClient:
    """A fresh client, logged in the way the SDK documents (credentials kept in a config file)."""
    client = oras.client.OrasClient(hostname=live_server.host, insecure=True)
    if username is not None:
        client.login(username, PASSWORD, hostname=live_server.host, config_path=str(tmp_path / "auth.json"))
    return client


def file_with(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def manifest_head(live_server, reference: str) -> httpx.Response:
    with live_server.client() as admin:
        return admin.head(f"/v2/{REPOSITORY}/manifests/{reference}",
                          headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})


def test_one_client_pushes_attaches_a_referrer_and_deletes(live_server, accounts, tmp_path):
    client = oras_as(live_server, tmp_path, "oras-maintainer")
    target = f"{live_server.host}/{REPOSITORY}:v1"
    pushed = client.push(target=target, files=[file_with(tmp_path, "notes.txt", "release notes\n")],
                         disable_path_validation=True)
    assert pushed.status_code == 201, pushed.text
    subject_head = manifest_head(live_server, "v1")
    assert subject_head.status_code == 200
    subject = oras.oci.Subject(mediaType=subject_head.headers["Content-Type"],
                               digest=subject_head.headers["Docker-Content-Digest"],
                               size=int(subject_head.headers["Content-Length"]))

    attached = client.push(target=f"{live_server.host}/{REPOSITORY}:sbom", subject=subject,
                           files=[file_with(tmp_path, "sbom.json", '{"packages": []}')],
                           disable_path_validation=True)
    assert attached.status_code == 201, attached.text
    assert attached.headers["OCI-Subject"] == subject.digest
    with live_server.client() as admin:
        referrers = admin.get(f"/v2/{REPOSITORY}/referrers/{subject.digest}").json()["manifests"]
    assert [r["digest"] for r in referrers] == [manifest_head(live_server, "sbom").headers["Docker-Content-Digest"]]

    assert client.delete_tag(f"{live_server.host}/{REPOSITORY}:sbom", "sbom") is True
    assert manifest_head(live_server, "sbom").status_code == 404


def test_another_client_pulls(live_server, accounts, tmp_path):
    pusher = oras_as(live_server, tmp_path / "push", "oras-dev")
    target = f"{live_server.host}/{REPOSITORY}:pulled"
    pushed = pusher.push(target=target, files=[file_with(tmp_path, "data.txt", "pull me\n")],
                         disable_path_validation=True)
    assert pushed.status_code == 201, pushed.text
    puller = oras_as(live_server, tmp_path / "pull", "oras-dev")
    files = puller.pull(target=target, outdir=str(tmp_path / "out"))
    assert [Path(f).read_text() for f in files] == ["pull me\n"]


def test_anonymous_clients_still_only_pull_public_projects(live_server, accounts, tmp_path):
    client = oras_as(live_server, tmp_path, None)
    with pytest.raises(ValueError, match="insufficient_scope"):
        client.push(target=f"{live_server.host}/library/oras-open:v1",
                    files=[file_with(tmp_path, "open.txt", "open\n")], disable_path_validation=True)
