"""Real skopeo pulls a repository as of a past moment through the reserved `as-of` project,
with its own name grammar and token flow unchanged, and is told why once garbage collection took
the bytes: embedded, and PostgreSQL + S3."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import datetime, timezone

import pytest

from tests.support.images import build_image_layout
from tests.support.oci import digest_of
from tests.support.server import collect_garbage

pytestmark = [pytest.mark.e2e,
              pytest.mark.parametrize("live_server", ["embedded", "scale-out"], indirect=True, scope="module")]

TIMEOUT = 120


def skopeo(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=TIMEOUT, env=env)
    if check:
        assert result.returncode == 0, f"skopeo {' '.join(args)}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def env(live_server, tmp_path_factory) -> dict:
    auth_file = tmp_path_factory.mktemp("auth") / "auth.json"
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(auth_file.parent), "REGISTRY_AUTH_FILE": str(auth_file)}
    skopeo(env, "login", "--tls-verify=false", "-u", "admin", "-p", live_server.admin_creds.split(":", 1)[1],
           live_server.host)
    return env


def test_skopeo_pulls_the_digest_a_tag_had_at_a_moment(live_server, env, tmp_path):
    v1 = build_image_layout(tmp_path / "v1", "1.0", text="as of v1")
    v2 = build_image_layout(tmp_path / "v2", "1.0", text="as of v2")
    target = f"docker://{live_server.host}/team/asof:1.0"
    skopeo(env, "copy", "--dest-tls-verify=false", f"oci:{v1.layout}:1.0", target)
    time.sleep(1.1)
    moment = datetime.now(timezone.utc).strftime("%Y%m%dt%H%M%Sz")  # after v1's push, to the second
    time.sleep(1.1)
    skopeo(env, "copy", "--dest-tls-verify=false", f"oci:{v2.layout}:1.0", target)
    assert json.loads(skopeo(env, "inspect", "--tls-verify=false", target).stdout)["Digest"] \
        == digest_of(v2.manifest_bytes)

    past = f"docker://{live_server.host}/as-of/{moment}/team/asof"
    info = json.loads(skopeo(env, "inspect", "--tls-verify=false", f"{past}:1.0").stdout)
    assert info["Digest"] == digest_of(v1.manifest_bytes)
    assert info["Layers"] == v1.layer_digests
    assert json.loads(skopeo(env, "list-tags", "--tls-verify=false", past).stdout)["Tags"] == ["1.0"]

    out = tmp_path / "out"
    skopeo(env, "copy", "--src-tls-verify=false", f"{past}:1.0", f"oci:{out}:pulled")
    index = json.loads((out / "index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [digest_of(v1.manifest_bytes)]
    for digest in (v1.config_digest, *v1.layer_digests):  # every blob arrived, checked by skopeo too
        assert (out / "blobs" / "sha256" / digest.removeprefix("sha256:")).is_file()

    refused = skopeo(env, "copy", "--dest-tls-verify=false", f"oci:{v2.layout}:1.0", f"{past}:new", check=False)
    assert refused.returncode != 0
    assert "read-only" in refused.stderr or "unsupported" in refused.stderr.lower(), refused.stderr

    # v1 deleted and garbage-collected: the client is told why the past no longer pulls.
    with live_server.client() as client:
        assert client.delete(f"/v2/team/asof/manifests/{digest_of(v1.manifest_bytes)}").status_code == 202
        time.sleep(1.1)  # nothing younger than a second is collected
        run = collect_garbage(client)
        assert run["blobs"] >= 3, run
    gone = skopeo(env, "inspect", "--tls-verify=false", f"{past}:1.0", check=False)
    assert gone.returncode != 0 and "garbage-collected since" in gone.stderr, gone.stderr
