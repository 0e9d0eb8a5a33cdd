"""Scanning policies through the APIs: Harbor's project metadata keys and `cve_allowlist`, the
system CVE allowlist, the management API's project settings, and the pull checks on /v2/
(412 for vulnerable, unscanned and unsigned artifacts; scanners, signing tools and signatures
let through).

Scan results reach the vulnerability policy through its port (domain/pull_checks.py
ScanResults): until the scans read model is connected, `Scans` below implements it."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import pytest
from harborapi.models import CVEAllowlist, CVEAllowlistItem, ProjectMetadata, ProjectReq

from api.tokens import Scope
from domain.pull_checks import COSIGN_SIGNATURE, COSIGN_SIMPLE_SIGNING, NOTATION_SIGNATURE, SCANNER_PULL, PullChecks
from tests.support.auth import PASSWORD, bearer, create_user, grant, token, token_access
from tests.support.harbor import harbor_errors
from tests.support.oci import OCI_INDEX, OCI_MANIFEST, descriptor, digest_of, push_blob, push_image
from tests.support.server import ADMIN_PASSWORD

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:harborapi")

P = "/api/v2.0/projects"
NAME = "team/app"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
HARBOR_DEFAULTS = {"public": "false", "auto_scan": "false", "prevent_vul": "false", "severity": "low",
                   "reuse_sys_cve_allowlist": "true", "enable_content_trust_cosign": "false",
                   "enable_content_trust": "false"}
POLICY = "'Prevent images with vulnerability severity of \"{}\" or higher from running.'"


@dataclass(frozen=True)
class Overview:
    status: str = "Success"
    severity: str = "None"
    summary: dict = field(default_factory=dict)
    cve_ids: tuple[str, ...] = ()


class Scans:
    """The scan results port: digest -> the overview of its last vulnerability scan."""

    def __init__(self) -> None:
        self.overviews: dict[str, Overview] = {}

    def overview(self, repository: str, digest: str, scan_type: str = "vulnerability") -> Overview | None:
        return self.overviews.get(digest) if scan_type == "vulnerability" else None


@pytest.fixture
def scans(services) -> Scans:
    """The pull checks of the app, reading scan results from `Scans`."""
    scans = Scans()
    services.pull_checks = PullChecks(services.scanning_policies.settings, services.catalog, scans,
                                      allowlist_of=services.scanning_policies.effective_allowlist)
    return scans


def set_metadata(client, project: str, **metadata) -> None:
    response = client.put(f"{P}/{project}", json={"metadata": metadata})
    assert response.status_code == 200, response.text


def set_allowlist(client, project: str, ids: list[str], expires_at: int | None = None) -> None:
    body = {"cve_allowlist": {"items": [{"cve_id": cve} for cve in ids], "expires_at": expires_at}}
    response = client.put(f"{P}/{project}", json=body)
    assert response.status_code == 200, response.text


def set_system_allowlist(client, ids: list[str], expires_at: int | None = None) -> None:
    body = {"items": [{"cve_id": cve} for cve in ids], "expires_at": expires_at}
    response = client.put("/api/v2.0/system/CVEAllowlist", json=body)
    assert response.status_code == 200, response.text


def refused(response, message: str) -> None:
    assert response.status_code == 412, response.text
    assert response.json() == {"errors": [{**response.json()["errors"][0], "code": "DENIED", "message": message}]}


# Project metadata (Harbor)


@pytest.mark.anyio
async def test_scanning_metadata_round_trips_in_harbors_strings(harbor):
    metadata = ProjectMetadata(auto_scan="true", prevent_vul="true", severity="High", reuse_sys_cve_allowlist="false",
                               enable_content_trust_cosign="true", enable_content_trust="false")
    await harbor.create_project(ProjectReq(project_name="sp-meta", metadata=metadata))
    project = await harbor.get_project("sp-meta")
    assert project.metadata.model_dump(exclude_none=True) == {
        "public": "false", "auto_scan": "true", "prevent_vul": "true", "severity": "high",
        "reuse_sys_cve_allowlist": "false", "enable_content_trust_cosign": "true", "enable_content_trust": "false"}
    await harbor.update_project("sp-meta", ProjectReq(metadata=ProjectMetadata(severity="critical", auto_scan="false")))
    changed = (await harbor.get_project("sp-meta")).metadata
    assert (changed.severity, changed.auto_scan, changed.prevent_vul, changed.reuse_sys_cve_allowlist) == (
        "critical", "false", "true", "false")
    assert [p.metadata.prevent_vul for p in await harbor.get_projects(query="name=sp-meta")] == ["true"]


def test_a_project_that_never_set_them_has_harbors_defaults(client):
    project = client.get(f"{P}/team").json()
    assert project["metadata"] == HARBOR_DEFAULTS
    assert project["cve_allowlist"] == {"id": 0, "project_id": project["project_id"], "expires_at": None,
                                        "items": [], "creation_time": None, "update_time": None}


def test_settings_are_events_and_unchanged_settings_record_none(client, services):
    set_metadata(client, "team", prevent_vul="true", severity="medium")
    set_metadata(client, "team", prevent_vul="true", severity="MEDIUM", public="false")
    events = client.get("/api/v1/events", params={"type": "project.scanning_settings_changed"}).json()
    assert [(e["type"], e["data"]["severity"], e["data"]["prevent_vul"]) for e in events] == [
        ("io.portlog.project.scanning_settings_changed", "Medium", True)]
    set_system_allowlist(client, ["CVE-2021-44228"])
    events = client.get("/api/v1/events", params={"type": "cve_allowlist.*"}).json()
    assert [e["type"] for e in events] == ["io.portlog.cve_allowlist.created", "io.portlog.cve_allowlist.set"]
    assert events[1]["data"]["items"] == ["CVE-2021-44228"]


@pytest.mark.parametrize("body, message", [
    ({"metadata": {"severity": "severe"}}, "unknown severity 'severe'"),
    ({"metadata": {"auto_scan": "yes"}}, "metadata.auto_scan must be \"true\" or \"false\""),
    ({"metadata": {"prevent_vul": 1}}, "metadata.prevent_vul must be"),
    ({"metadata": "prevent_vul"}, "metadata must be an object"),
    ({"cve_allowlist": {"items": [{"cve_id": "not a cve"}]}}, "invalid CVE ID 'not a cve'"),
    ({"cve_allowlist": {"items": [{"cve_id": "CVE-2024-1"}, {"cve_id": "CVE-2024-1"}]}},
     "duplicate CVE ID in allowlist: CVE-2024-1"),
    ({"cve_allowlist": {"items": "CVE-2024-1"}}, "must be a list of objects with a cve_id"),
    ({"cve_allowlist": {"items": [{"id": "CVE-2024-1"}]}}, "must be a list of objects with a cve_id"),
    ({"cve_allowlist": {"items": [], "expires_at": "tomorrow"}}, "expires_at must be"),
    ({"cve_allowlist": {"items": [], "project_id": 999999}}, "project_id in cve_allowlist must be"),
    ({"cve_allowlist": []}, "cve_allowlist must be an object"),
])
def test_bad_settings_are_refused_in_harbors_shape_and_change_nothing(client, body, message):
    before = client.get(f"{P}/team").json()
    response = client.put(f"{P}/team", json=body)
    assert response.status_code == 400, response.text
    assert [code for code, _ in harbor_errors(response)] == ["BAD_REQUEST"]
    assert message in harbor_errors(response)[0][1]
    after = client.get(f"{P}/team").json()
    assert (after["metadata"], after["cve_allowlist"]) == (before["metadata"], before["cve_allowlist"])


def test_a_project_created_with_bad_settings_is_not_created(client):
    response = client.post(P, json={"project_name": "sp-bad", "metadata": {"severity": "dire"}})
    assert response.status_code == 400 and "unknown severity" in harbor_errors(response)[0][1]
    assert client.head(P, params={"project_name": "sp-bad"}).status_code == 404


def test_project_allowlist_in_create_update_and_get(client):
    response = client.post(P, json={"project_name": "sp-list", "metadata": {"reuse_sys_cve_allowlist": "false"},
                                    "cve_allowlist": {"items": [{"cve_id": "CVE-2023-44487"}], "expires_at": None}})
    assert response.status_code == 201, response.text
    project = client.get(f"{P}/sp-list").json()
    allowlist = project["cve_allowlist"]
    assert allowlist["items"] == [{"cve_id": "CVE-2023-44487"}] and allowlist["expires_at"] is None
    assert allowlist["project_id"] == project["project_id"] and allowlist["id"] > 0 and allowlist["creation_time"]
    expires = int(time.time()) + 3600
    body = {"cve_allowlist": {"project_id": project["project_id"], "expires_at": expires,
                              "items": [{"cve_id": "GHSA-8r8j-xvfj-36f9"}, {"cve_id": " CVE-2024-3094 "}]}}
    assert client.put(f"{P}/{project['project_id']}", json=body).status_code == 200
    changed = client.get(f"{P}/sp-list").json()["cve_allowlist"]
    assert changed["items"] == [{"cve_id": "GHSA-8r8j-xvfj-36f9"}, {"cve_id": "CVE-2024-3094"}]
    assert (changed["expires_at"], changed["id"]) == (expires, allowlist["id"])
    assert client.get(f"{P}/sp-list").json()["metadata"]["reuse_sys_cve_allowlist"] == "false"


def test_only_project_admins_change_the_settings(client):
    create_user(client, "maint")
    grant(client, "team", "maint", "maintainer")
    response = client.put(f"{P}/team", json={"metadata": {"prevent_vul": "false"}}, auth=("maint", PASSWORD))
    assert response.status_code == 403 and harbor_errors(response)[0][0] == "FORBIDDEN"
    assert client.get(f"{P}/team", auth=("maint", PASSWORD)).json()["metadata"]["prevent_vul"] == "false"


# The management API


def test_management_api_shows_and_sets_the_settings(client):
    project = client.get("/api/v1/projects/team").json()
    assert project["scanning"] == {"auto_scan": False, "prevent_vul": False, "severity": "Low",
                                   "reuse_sys_cve_allowlist": True, "enable_content_trust_cosign": False,
                                   "enable_content_trust": False}
    assert project["cve_allowlist"] == {"items": [], "expires_at": None}
    response = client.patch("/api/v1/projects/team", json={
        "scanning": {"prevent_vul": True, "severity": "HIGH"}, "cve_allowlist": {"items": ["CVE-2024-3094"]}})
    assert response.status_code == 200, response.text
    assert response.json()["scanning"]["severity"] == "High" and response.json()["scanning"]["prevent_vul"]
    assert response.json()["cve_allowlist"] == {"items": ["CVE-2024-3094"], "expires_at": None}
    assert client.get(f"{P}/team").json()["metadata"]["severity"] == "high"
    assert client.patch("/api/v1/projects/team", json={"public": True}).json()["scanning"]["prevent_vul"]
    created = client.post("/api/v1/projects", json={"name": "sp-v1", "scanning": {"auto_scan": True}})
    assert created.status_code == 201 and created.json()["scanning"]["auto_scan"] is True


@pytest.mark.parametrize("body, message", [
    ({}, "nothing to change"),
    ({"scanning": {"bogus": True}}, "unknown scanning setting 'bogus'"),
    ({"scanning": {"auto_scan": "true"}}, "auto_scan must be true or false"),
    ({"scanning": {"severity": "dire"}}, "unknown severity"),
    ({"scanning": "on"}, "field 'scanning' has the wrong type"),
    ({"cve_allowlist": {"items": ["nope nope"]}}, "invalid CVE ID"),
    ({"cve_allowlist": {"items": [], "expires": 3}}, "unknown cve_allowlist field 'expires'"),
])
def test_management_api_refuses_bad_settings_as_problems(client, body, message):
    response = client.patch("/api/v1/projects/team", json=body)
    assert response.status_code == 422 and response.headers["Content-Type"] == "application/problem+json"
    assert message in response.json()["detail"]


# The system CVE allowlist


def test_system_allowlist_is_read_by_anyone_signed_in_and_set_by_administrators(client):
    url = "/api/v2.0/system/CVEAllowlist"
    assert client.get(url, auth=None).status_code == 401
    create_user(client, "reader")
    empty = client.get(url, auth=("reader", PASSWORD))
    assert empty.status_code == 200 and empty.json() == {"id": 0, "project_id": 0, "expires_at": None, "items": [],
                                                          "creation_time": None, "update_time": None}
    body = {"items": [{"cve_id": "CVE-2021-44228"}], "expires_at": 4102444800}
    forbidden = client.put(url, json=body, auth=("reader", PASSWORD))
    assert forbidden.status_code == 403 and harbor_errors(forbidden)[0][0] == "FORBIDDEN"
    assert client.put(url, json=body, auth=None).status_code == 401
    assert client.put(url, json=body).status_code == 200
    allowlist = client.get(url, auth=("reader", PASSWORD)).json()
    assert allowlist["items"] == [{"cve_id": "CVE-2021-44228"}] and allowlist["expires_at"] == 4102444800
    assert allowlist["id"] > 0 and allowlist["project_id"] == 0 and allowlist["update_time"]


@pytest.mark.anyio
async def test_harborapi_reads_and_writes_the_system_allowlist(harbor):
    await harbor.update_cve_allowlist(CVEAllowlist(items=[CVEAllowlistItem(cve_id="CVE-2014-0160")], expires_at=None))
    allowlist = await harbor.get_cve_allowlist()
    assert [item.cve_id for item in allowlist.items] == ["CVE-2014-0160"] and allowlist.project_id == 0
    await harbor.update_cve_allowlist(CVEAllowlist(items=[]))
    assert (await harbor.get_cve_allowlist()).items == []


@pytest.mark.parametrize("body, message", [
    ({"items": [{"cve_id": "x"}]}, "invalid CVE ID"),
    ({"items": [{"cve_id": ""}]}, "invalid CVE ID"),
    ({"items": [{"cve_id": None}]}, "invalid CVE ID"),
    ({"items": [{"cve_id": "CVE-1-1"}, {"cve_id": "CVE-1-1"}]}, "duplicate CVE ID"),
    ({"items": [{"cve_id": f"CVE-2024-{i}"} for i in range(1001)]}, "at most 1000"),
    ({"items": [], "expires_at": -5}, "expires_at must be"),
    ({"items": [], "expires_at": 1.5}, "expires_at must be"),
    ({"items": [], "expires_at": 10 ** 15}, "expires_at must be"),
    ({"items": {"cve_id": "CVE-1-1"}}, "must be a list"),
    ({"items": [], "project_id": 3}, "project_id 0"),
    (["CVE-1-1"], "request body must be a JSON object"),
])
def test_system_allowlist_validation(client, body, message):
    response = client.put("/api/v2.0/system/CVEAllowlist", json=body)
    assert response.status_code == 400, response.text
    assert harbor_errors(response)[0][0] == "BAD_REQUEST" and message in harbor_errors(response)[0][1]
    assert client.get("/api/v2.0/system/CVEAllowlist").json()["items"] == []


def test_malformed_system_allowlist_json_is_a_400(client):
    response = client.put("/api/v2.0/system/CVEAllowlist", content=b"{not json",
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and harbor_errors(response)[0][0] == "BAD_REQUEST"


# Pulls refused: vulnerabilities


def test_a_vulnerable_image_is_refused_until_its_cve_is_allowlisted(client, scans):
    digest, _ = push_image(client, NAME, "v1", seed="vulnerable")
    set_metadata(client, "team", prevent_vul="true", severity="high")
    never = client.get(f"/v2/{NAME}/manifests/v1")
    refused(never, "current image without vulnerability scanning cannot be pulled due to configured policy in "
            f"{POLICY.format('High')} To continue with pull, please contact your project administrator for help.")

    scans.overviews[digest] = Overview(severity="Critical", summary={"Critical": 1, "High": 1, "Low": 1},
                                       cve_ids=("CVE-2024-3094", "CVE-2023-44487", "CVE-2022-0001"))
    vulnerable = ("current image with 3 vulnerabilities cannot be pulled due to configured policy in "
                  f"{POLICY.format('High')} To continue with pull, please contact your project administrator to "
                  "exempt matched vulnerabilities through configuring the CVE allowlist.")
    refused(client.get(f"/v2/{NAME}/manifests/v1"), vulnerable)
    refused(client.get(f"/v2/{NAME}/manifests/{digest}"), vulnerable)  # by digest too
    head = client.head(f"/v2/{NAME}/manifests/v1")
    assert head.status_code == 412 and head.content == b""
    assert client.get(f"/v2/{NAME}/blobs/{digest_of(b'layer-vulnerable')}").status_code == 200  # blobs unchecked

    ids = ["CVE-2024-3094", "CVE-2023-44487", "CVE-2022-0001"]
    set_system_allowlist(client, ids)  # the project reuses the system's list (Harbor's default)
    assert client.get(f"/v2/{NAME}/manifests/v1").status_code == 200
    set_metadata(client, "team", reuse_sys_cve_allowlist="false")  # now its own, empty list counts
    assert client.get(f"/v2/{NAME}/manifests/v1").status_code == 412
    set_allowlist(client, "team", ids)
    assert client.get(f"/v2/{NAME}/manifests/v1").status_code == 200
    set_allowlist(client, "team", ids, expires_at=int(time.time()) - 60)  # expired: exempts nothing
    assert client.get(f"/v2/{NAME}/manifests/v1").status_code == 412
    set_metadata(client, "team", prevent_vul="false")
    assert client.get(f"/v2/{NAME}/manifests/v1").status_code == 200


def test_findings_below_the_severity_and_failed_scans(client, scans):
    digest, _ = push_image(client, NAME, "v1", seed="medium")
    set_metadata(client, "team", prevent_vul="true", severity="high")
    scans.overviews[digest] = Overview(severity="Medium", summary={"Medium": 4}, cve_ids=("CVE-2024-1",))
    assert client.get(f"/v2/{NAME}/manifests/v1").status_code == 200
    scans.overviews[digest] = Overview(status="Error")
    refused(client.get(f"/v2/{NAME}/manifests/v1"),
            "current image with \"Error\" status of vulnerability scanning cannot be pulled due to configured policy "
            f"in {POLICY.format('High')} To continue with pull, please contact your project administrator for help.")


def test_system_administrators_are_not_exempt_and_other_projects_are_untouched(client, services, scans):
    push_image(client, NAME, "v1", seed="admin")
    push_image(client, "z/app", "v1", seed="admin")
    set_metadata(client, "team", prevent_vul="true")
    assert services.access.user("admin").system_admin
    assert client.get(f"/v2/{NAME}/manifests/v1").status_code == 412
    assert client.get("/v2/z/app/manifests/v1").status_code == 200


def test_scanner_pulls_pass_and_no_client_gets_a_scanner_token(client, services, scans):
    digest, _ = push_image(client, NAME, "v1", seed="scanned")
    set_metadata(client, "team", prevent_vul="true", enable_content_trust_cosign="true")
    scanner, _ = services.tokens.issue("scanner:Portlog", [Scope("repository", NAME, ("pull", SCANNER_PULL))])
    assert client.get(f"/v2/{NAME}/manifests/{digest}", headers=bearer(scanner), auth=None).status_code == 200
    asked = token(client, [f"repository:{NAME}:pull,{SCANNER_PULL}"], ("admin", ADMIN_PASSWORD))
    assert all(SCANNER_PULL not in entry["actions"] for entry in token_access(asked))
    assert client.get(f"/v2/{NAME}/manifests/{digest}", headers=bearer(asked), auth=None).status_code == 412


def test_the_scanner_action_alone_does_not_pull(client, services, scans):
    push_image(client, NAME, "v1", seed="alone")
    only, _ = services.tokens.issue("scanner:Portlog", [Scope("repository", NAME, (SCANNER_PULL,))])
    assert client.get(f"/v2/{NAME}/manifests/v1", headers=bearer(only), auth=None).status_code == 401


# Pulls refused: signatures


def push_signature(client, name: str, subject: bytes, artifact_type: str = COSIGN_SIGNATURE) -> str:
    """A signature referrer as cosign (OCI 1.1 referrers mode) and notation push them."""
    layer_type = COSIGN_SIMPLE_SIGNING if artifact_type == COSIGN_SIGNATURE else "application/jose+json"
    payload = json.dumps({"critical": {"image": {"docker-manifest-digest": digest_of(subject)},
                                       "type": "cosign container image signature"}}).encode()
    push_blob(client, name, b"{}")
    push_blob(client, name, payload)
    signature = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
        "config": descriptor(EMPTY_CONFIG, b"{}"),
        "layers": [descriptor(layer_type, payload, annotations={"dev.cosignproject.cosign/signature": "MEUCIQ=="})],
        "subject": descriptor(OCI_MANIFEST, subject)}).encode()
    response = client.put(f"/v2/{name}/manifests/{digest_of(signature)}", content=signature,
                          headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text
    return digest_of(signature)


def push_tag_scheme_signature(client, name: str, subject_digest: str) -> str:
    """cosign's older scheme: an image manifest of simple-signing layers, tagged sha256-<hex>.sig."""
    config = json.dumps({"architecture": "", "os": "", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    payload = json.dumps({"critical": {"image": {"docker-manifest-digest": subject_digest}}}).encode()
    push_blob(client, name, config)
    push_blob(client, name, payload)
    signature = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.oci.image.config.v1+json", config),
        "layers": [descriptor(COSIGN_SIMPLE_SIGNING, payload)]}).encode()
    tag = subject_digest.replace(":", "-") + ".sig"
    response = client.put(f"/v2/{name}/manifests/{tag}", content=signature, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text
    return tag


def test_signed_only_refuses_unsigned_images_until_a_cosign_signature_is_pushed(client):
    digest, image = push_image(client, NAME, "v1", seed="unsigned")
    set_metadata(client, "team", enable_content_trust_cosign="true")
    refused(client.get(f"/v2/{NAME}/manifests/v1"), "The image is not signed by cosign.")
    assert client.head(f"/v2/{NAME}/manifests/{digest}").status_code == 412
    signature = push_signature(client, NAME, image)
    assert client.get(f"/v2/{NAME}/manifests/v1").status_code == 200
    assert client.get(f"/v2/{NAME}/manifests/{signature}").status_code == 200  # the signature itself

    set_metadata(client, "team", enable_content_trust="true")  # notation too (Harbor 2.9's meaning)
    refused(client.get(f"/v2/{NAME}/manifests/v1"), "The image is not signed by notation.")
    push_signature(client, NAME, image, NOTATION_SIGNATURE)
    assert client.get(f"/v2/{NAME}/manifests/v1").status_code == 200
    client.delete(f"/v2/{NAME}/manifests/{signature}")
    refused(client.get(f"/v2/{NAME}/manifests/v1"), "The image is not signed by cosign.")


def test_a_signature_in_another_repository_signs_nothing_here(client):
    _, image = push_image(client, NAME, "v1", seed="elsewhere")
    push_image(client, "team/other", "v1", seed="elsewhere")
    push_signature(client, "team/other", image)
    set_metadata(client, "team", enable_content_trust_cosign="true")
    assert client.get("/v2/team/other/manifests/v1").status_code == 200
    assert client.get(f"/v2/{NAME}/manifests/v1").status_code == 412


def test_cosign_tag_scheme_signature(client):
    digest, _ = push_image(client, NAME, "v1", seed="tagged")
    set_metadata(client, "team", enable_content_trust_cosign="true")
    assert client.get(f"/v2/{NAME}/manifests/v1").status_code == 412
    tag = push_tag_scheme_signature(client, NAME, digest)
    assert client.get(f"/v2/{NAME}/manifests/v1").status_code == 200
    assert client.get(f"/v2/{NAME}/manifests/{tag}").status_code == 200  # `cosign verify` reads it


def test_children_of_a_signed_index_count_as_signed(client):
    amd64, listed = push_image(client, NAME, "amd64", seed="amd64")
    arm64, _ = push_image(client, NAME, "arm64", seed="arm64")
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        descriptor(OCI_MANIFEST, listed, platform={"os": "linux", "architecture": "amd64"})]}).encode()
    assert client.put(f"/v2/{NAME}/manifests/multi", content=index,
                      headers={"Content-Type": OCI_INDEX}).status_code == 201
    set_metadata(client, "team", enable_content_trust_cosign="true")
    assert client.get(f"/v2/{NAME}/manifests/multi").status_code == 412
    push_signature(client, NAME, index)
    assert client.get(f"/v2/{NAME}/manifests/multi").status_code == 200
    assert client.get(f"/v2/{NAME}/manifests/{amd64}").status_code == 200  # listed by the signed index
    assert client.get(f"/v2/{NAME}/manifests/{arm64}").status_code == 412  # listed by none


def test_signing_tools_that_may_push_read_unsigned_manifests(client):
    push_image(client, NAME, "v1", seed="to-sign")
    set_metadata(client, "team", enable_content_trust_cosign="true", prevent_vul="true")
    create_user(client, "dev")
    grant(client, "team", "dev", "developer")
    create_user(client, "viewer")
    grant(client, "team", "viewer", "guest")
    cosign = {"User-Agent": "cosign/v2.4.1 (linux; amd64) go-containerregistry/v0.20.2"}
    push_token = token(client, [f"repository:{NAME}:pull,push"], ("dev", PASSWORD))
    assert client.get(f"/v2/{NAME}/manifests/v1", headers={**cosign, **bearer(push_token)},
                      auth=None).status_code == 200
    assert client.get(f"/v2/{NAME}/manifests/v1", headers=cosign, auth=("dev", PASSWORD)).status_code == 200
    notation = {"User-Agent": "notation/v1.2.0"}
    assert client.head(f"/v2/{NAME}/manifests/v1", headers=notation, auth=("dev", PASSWORD)).status_code == 200
    assert client.get(f"/v2/{NAME}/manifests/v1", auth=("dev", PASSWORD)).status_code == 412  # docker, say
    pull_token = token(client, [f"repository:{NAME}:pull"], ("viewer", PASSWORD))
    assert client.get(f"/v2/{NAME}/manifests/v1", headers={**cosign, **bearer(pull_token)},
                      auth=None).status_code == 412


def test_rebuilt_read_model_gives_the_same_settings_and_allowlists(client, services):
    set_metadata(client, "team", auto_scan="true", prevent_vul="true", severity="critical")
    set_allowlist(client, "team", ["CVE-2024-3094"], expires_at=4102444800)
    set_system_allowlist(client, ["CVE-2021-44228"])
    client.post(P, json={"project_name": "sp-gone", "metadata": {"auto_scan": "true"}})
    set_allowlist(client, "sp-gone", ["CVE-2020-1"])
    assert client.delete(f"{P}/sp-gone").status_code == 200
    before = client.get(f"{P}/team").json(), client.get("/api/v2.0/system/CVEAllowlist").json()
    policies = services.scanning_policies
    assert policies.auto_scan_enabled("team") and not policies.auto_scan_enabled("z")
    assert policies.settings("sp-gone").auto_scan is False and policies.allowlist("sp-gone") is None
    services.projections.rebuild()
    assert (client.get(f"{P}/team").json(), client.get("/api/v2.0/system/CVEAllowlist").json()) == before
    assert policies.auto_scan_enabled("team")


def test_an_undeleted_project_gets_its_settings_back_and_a_recreated_one_starts_afresh(client):
    client.post(P, json={"project_name": "sp-back", "metadata": {"prevent_vul": "true", "severity": "critical"},
                         "cve_allowlist": {"items": [{"cve_id": "CVE-2024-3094"}]}})
    before = client.get(f"{P}/sp-back").json()
    assert client.delete(f"{P}/sp-back").status_code == 200
    assert client.post("/api/v1/projects/sp-back/undelete").status_code == 200
    back = client.get(f"{P}/sp-back").json()
    assert back["metadata"] == before["metadata"]
    assert back["cve_allowlist"]["items"] == [{"cve_id": "CVE-2024-3094"}]
    assert client.delete(f"{P}/sp-back").status_code == 200
    assert client.post(P, json={"project_name": "sp-back"}).status_code == 201
    again = client.get(f"{P}/sp-back").json()
    assert again["metadata"] == HARBOR_DEFAULTS and again["cve_allowlist"]["items"] == []


def test_the_web_interface_shows_artifacts_the_policy_refuses(client):
    digest, _ = push_image(client, NAME, "v1", seed="shown")
    set_metadata(client, "team", prevent_vul="true", enable_content_trust_cosign="true")
    assert client.get(f"/v2/{NAME}/manifests/{digest}").status_code == 412
    signed_in = client.post("/c/login", data={"principal": "admin", "password": ADMIN_PASSWORD}, auth=None)
    assert signed_in.status_code == 200
    assert client.get(f"/v2/{NAME}/manifests/{digest}", auth=None).status_code == 200  # the session: no pull
    assert client.get(f"/v2/{NAME}/manifests/{digest}", auth=("admin", ADMIN_PASSWORD)).status_code == 412
