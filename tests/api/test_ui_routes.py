"""The web UI's files as Portlog serves them: the shell for every /ui/ path, with its security
headers; scripts compressed; nothing else compressed by the way."""

from __future__ import annotations

from tests.support.oci import digest_of, push_image


def test_every_ui_path_serves_the_shell_with_a_strict_content_security_policy(client):
    assert client.get("/", follow_redirects=False).headers["location"] == "/ui/projects"
    for path in ("/ui/projects", "/ui/repository?name=team/app", "/ui/no/such/page"):
        response = client.get(path, auth=None)
        assert response.status_code == 200
        assert '<script type="module" src="/ui/static/js/app.js">' in response.text
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "unsafe-inline" not in policy
        assert response.headers["x-content-type-options"] == "nosniff"


def test_scripts_are_compressed_and_blobs_are_not(client):
    script = client.get("/ui/static/js/dom.js", headers={"Accept-Encoding": "gzip"}, auth=None)
    assert script.status_code == 200 and script.headers["content-encoding"] == "gzip"
    assert "export function h(" in script.text
    assert client.get("/ui/static/js/missing.js", auth=None).status_code == 404
    seed = "x" * 4096  # a layer well over the compression threshold
    push_image(client, "team/app", "v1", seed=seed)
    blob = client.get(f"/v2/team/app/blobs/{digest_of(f'layer-{seed}'.encode())}", headers={"Accept-Encoding": "gzip"})
    assert blob.status_code == 200 and "content-encoding" not in blob.headers
