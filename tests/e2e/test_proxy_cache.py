"""A proxy-cache project over a real upstream, pulled by a real client: skopeo copies an image
through a `portlog serve` process whose project `cachehub` proxies a Debian `docker-registry`;
the image is cached as it streams, is still served with the upstream down, and a tag moved
upstream is followed."""

from __future__ import annotations

import json
import subprocess
import time

import httpx
import pytest

from tests.support.images import build_image_layout
from tests.support.oci import digest_of

pytestmark = pytest.mark.e2e

SKOPEO_TIMEOUT = 120


def skopeo(*args: str) -> str:
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=SKOPEO_TIMEOUT)
    assert result.returncode == 0, f"skopeo {' '.join(args)}:\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    root = tmp_path_factory.mktemp("layouts")
    return build_image_layout(root / "one", "1.0"), build_image_layout(root / "two", "2.0", text="moved on")


@pytest.fixture(scope="module")
def mirror(live_server, distribution) -> str:
    """The proxy-cache project `cachehub` over the upstream; its name."""
    api = httpx.Client(base_url=live_server.url, auth=live_server.admin_auth, timeout=30)
    response = api.post("/api/v2.0/registries", json={"name": "upstream", "url": distribution.url,
                                                      "type": "docker-registry"})
    assert response.status_code == 201, response.text
    registry_id = int(response.headers["Location"].rsplit("/", 1)[1])
    response = api.post("/api/v2.0/projects", json={"project_name": "cachehub", "registry_id": registry_id,
                                                    "metadata": {"public": "true"}})
    assert response.status_code == 201, response.text
    return "cachehub"


def push_upstream(distribution, layout, tag: str) -> None:
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout.layout}:{layout.tag}",
           f"docker://{distribution.url.removeprefix('http://')}/library/tool:{tag}")


def pull_through(live_server, tag: str, destination) -> str:
    """Copies cachehub/library/tool:<tag> to a directory anonymously; the manifest's digest."""
    skopeo("copy", "--src-tls-verify=false", f"docker://{live_server.host}/cachehub/library/tool:{tag}",
           f"dir:{destination}")
    return digest_of((destination / "manifest.json").read_bytes())


def cached_digest(live_server, tag: str, timeout: float = 30) -> str | None:
    """The digest the cache holds under the tag, once the background caching has stored it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = httpx.head(f"{live_server.url}/api/v2.0/projects/cachehub/repositories/library%252Ftool"
                              f"/artifacts/{tag}", auth=live_server.admin_auth)
        if response.status_code == 200:
            artifact = httpx.get(f"{live_server.url}/api/v2.0/projects/cachehub/repositories/library%252Ftool"
                                 f"/artifacts/{tag}", auth=live_server.admin_auth).json()
            return artifact["digest"]
        time.sleep(0.1)
    return None


def test_an_image_pulled_through_the_cache_is_served_with_the_upstream_down(
        live_server, distribution, mirror, layouts, tmp_path):
    one, two = layouts
    push_upstream(distribution, one, "stable")
    first = pull_through(live_server, "stable", tmp_path / "first")
    assert first == one.manifest_digest
    assert cached_digest(live_server, "stable") == first
    distribution.kill()
    try:
        assert pull_through(live_server, "stable", tmp_path / "offline") == first
        offline = sorted(p.name for p in (tmp_path / "offline").iterdir())
        assert offline == sorted(p.name for p in (tmp_path / "first").iterdir())
        for name in offline:
            assert (tmp_path / "offline" / name).read_bytes() == (tmp_path / "first" / name).read_bytes()
    finally:
        distribution.start()
    push_upstream(distribution, two, "stable")
    assert pull_through(live_server, "stable", tmp_path / "moved") == two.manifest_digest
    assert cached_digest(live_server, "stable") == two.manifest_digest
    inspected = json.loads(skopeo("inspect", "--tls-verify=false",
                                  f"docker://{live_server.host}/cachehub/library/tool:stable"))
    assert inspected["Digest"] == two.manifest_digest
