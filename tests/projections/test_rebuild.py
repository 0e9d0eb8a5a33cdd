from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from config.bootstrap import bootstrap
from domain.backups import Backup
from domain.context import RequestContext
from domain.identity import ExternalIdentity
from domain.permissions import Role
from projections import (
    access,
    audit,
    backups,
    catalog,
    configurations,
    gc,
    history,
    immutability,
    labels,
    pulls,
    quotas,
    references,
    registries,
    replication,
    replication_runs,
    retention,
    scanned_packages,
    scanners,
    scanning_policies,
    scans,
    vulndb,
    webhooks,
)
from projections.runner import ProjectionRunner, positions, schemas
from tests.support.oci import digest_of, push_blob, push_image
from tests.support.server import REPO_ROOT

pytestmark = pytest.mark.both_databases

MODULES = (catalog, references, access, audit, history, pulls, webhooks, immutability, gc, quotas, retention,
           registries, replication, replication_runs, labels, scanners, scans, scanning_policies, vulndb,
           scanned_packages, configurations, backups)
TABLES = [table for module in MODULES for table in module.metadata.sorted_tables]


def dump(services) -> dict[str, list[tuple]]:
    with services.db.reader.connect() as conn:
        return {table.name: sorted((tuple(row) for row in conn.execute(select(table))), key=repr)
                for table in TABLES}


def make_history(client, services=None) -> None:
    client.post("/api/v1/users", json={"username": "dev", "password": "Dev-Pass-1"})
    client.put("/api/v1/projects/team/members/dev", json={"role": "developer"})
    client.post("/api/v1/robots", json={"name": "ci", "project": "team", "permissions": [
        {"project": "team", "resource": "repository", "action": "pull"}]})
    for i in range(3):
        push_image(client, f"team/app{i}", "1.0", seed=str(i))
        push_image(client, f"team/app{i}", "latest", seed=f"{i}-latest")
    push_image(client, "team/app0", "1.0", seed="moved")
    digest, _ = push_image(client, "team/app1", "gone", seed="gone")
    client.delete(f"/v2/team/app1/manifests/{digest}")
    client.delete("/v2/team/app2/manifests/latest")
    client.delete("/api/v1/projects/team/members/dev")
    blob = push_blob(client, "team/blobs", b"unlinked later")
    client.delete(f"/v2/team/blobs/blobs/{blob}")
    push_image(client, "team/back", "1.0", seed="back")
    client.delete("/api/v1/repositories/team/back")
    client.post("/api/v1/repositories/team/back/undelete")
    push_image(client, "team/gone", "1.0", seed="gone")
    client.delete("/api/v1/repositories/team/gone")
    push_image(client, "team/restored", "1.0", seed="restored")  # a point-in-time restore: markers, undelete
    moment = client.get("/api/v1/audit-logs", params={"order": "desc", "limit": 1}).json()[0]["position"]
    push_image(client, "team/restored", "1.0", seed="restored-later")
    client.delete("/api/v1/repositories/team/restored")
    client.post("/api/v1/projects/team/restore", json={"as_of": moment})
    client.put("/api/v1/projects/team/retention", json={"rules": [{"template": "latestPushedK", "param": 1}]})
    client.post("/api/v1/projects/team/retention/runs", json={"dry_run": True})
    client.put("/api/v1/projects/team/quota", json={"storage_bytes": 10 ** 9})
    client.post("/api/v2.0/registries", json={"name": "peer", "url": "http://127.0.0.1:1", "type": "docker-registry"})
    peer = client.get("/api/v2.0/registries").json()[0]["id"]
    client.post("/api/v2.0/replication/policies", json={"name": "out", "dest_registry": {"id": peer}})
    label = client.post("/api/v2.0/labels", json={"name": "release", "scope": "g"}).headers["Location"].rsplit("/")[-1]
    client.post("/api/v2.0/projects/team/repositories/app0/artifacts/1.0/labels", json={"id": int(label)})
    client.put("/api/v2.0/projects/team", json={"metadata": {"prevent_vul": "true", "severity": "high"},
                                                "cve_allowlist": {"items": [{"cve_id": "CVE-2024-3094"}]}})
    client.put("/api/v2.0/system/CVEAllowlist", json={"items": [{"cve_id": "CVE-2021-44228"}], "expires_at": 1})
    client.put("/api/v2.0/configurations", json={"oidc_name": "Corp", "ldap_url": "ldap://dir.example.org"})
    if services is not None:  # a directory account seen in a group that is a member
        ctx = RequestContext("admin", "t")
        key, _ = services.admin.create_group(1, "devs", "cn=devs,dc=example,dc=org", ctx)
        services.admin.set_group_member("team", 1, key, Role.DEVELOPER, ctx)
        services.admin.onboard_user(ExternalIdentity("erin", "ldap", "uid=erin,dc=example,dc=org"), ctx)
        services.admin.observe_groups("erin", [key], ctx)
        services.admin.observe_groups("erin", [key, "cn=ops,dc=example,dc=org"], ctx)
    client.put("/api/v1/backups/schedule", json={"cron": "0 3 * * *", "destination": "/var/backups/portlog"})
    if services is not None:  # pulls, as the pull recorder writes them
        digest, _ = push_image(client, "team/pulled", "1.0", seed="pulled")
        for _ in range(2):
            services.artifacts.record_pulls("team/pulled", [
                {"digest": digest, "tag": "1.0", "actor": "admin", "count": 3,
                 "last_pulled_at": "2026-01-01T00:00:00+00:00"}], RequestContext("system", "t"))
    if services is not None:  # a backup, and one that failed
        import tempfile
        services.backup_jobs.start(tempfile.mkdtemp(), True, "cli", RequestContext("admin", "t"), background=False)
        backup = Backup.start("manual", "/elsewhere", False, 1, RequestContext("admin", "t"))
        backup.fail("disk full", RequestContext("admin", "t"))
        services.registry.save(backup)
    if services is not None:  # a GC run: Blob and GcRun events, links released
        import time
        time.sleep(1.1)
        services.gc_jobs.start(0, False, "cli", RequestContext("admin", "t"), background=False)
        services.projections.catch_up()


def test_rebuild_gives_identical_read_models(client, services):
    make_history(client, services)
    before = dump(services)
    assert len(before["catalog_tags"]) == 8 and before["refs_digest_usage"] and before["gc_runs"]
    assert before["history_members"] and before["audit_log"] and before["access_robots"]
    assert before["labels"] and before["artifact_labels"]
    assert before["scanning_settings"] and len(before["scanning_cve_allowlists"]) == 2
    assert len(before["config_values"]) == 2 and before["access_groups"] and len(before["access_user_groups"]) == 2
    assert len(before["history_user_groups"]) == 3
    assert len(before["backups"]) == 2 and before["backup_schedule"]
    assert before["pulls_artifacts"] and before["pulls_tags"]
    services.projections.rebuild()
    assert dump(services) == before


def test_cli_rebuild_matches(client, services, settings):
    make_history(client)
    before = dump(services)
    services.close()
    on_postgres = {"PORTLOG_DATABASE_URL": settings.event_database.url()} \
        if settings.event_database.kind == "postgres" else {}
    result = subprocess.run(
        [sys.executable, "-m", "cli", "projections", "rebuild", "--data-dir", str(settings.data_dir)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, env={**os.environ, **on_postgres})
    assert result.returncode == 0, result.stderr
    assert "catalog: rebuilt to position" in result.stdout
    reopened = bootstrap(settings)
    try:
        assert dump(reopened) == before
    finally:
        reopened.close()


def test_two_followers_apply_each_event_once(client, services):
    make_history(client)
    expected = dump(services)
    with services.db.writer.begin() as conn:
        for table in reversed(TABLES):
            conn.execute(table.delete())
        conn.execute(positions.update().values(position=0))
    runners = [ProjectionRunner(services.db, services.registry, services.projections.projections)
               for _ in range(2)]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda runner: runner.catch_up(), runners))
    assert dump(services) == expected


def test_reference_counts(client, services):
    digest, _ = push_image(client, "team/a", "1", seed="shared")
    push_image(client, "team/b", "1", seed="shared")
    layer = digest_of(b"layer-shared")
    with services.db.reader.connect() as conn:
        row = conn.execute(select(references.usage).where(references.usage.c.digest == layer)).one()
    assert (row.blob_links, row.referenced_by, row.unreferenced_since) == (2, 2, None)
    client.delete(f"/v2/team/a/manifests/{digest}")
    client.delete(f"/v2/team/b/manifests/{digest}")
    client.delete(f"/v2/team/a/blobs/{layer}")
    client.delete(f"/v2/team/b/blobs/{layer}")
    with services.db.reader.connect() as conn:
        row = conn.execute(select(references.usage).where(references.usage.c.digest == layer)).one()
        manifest = conn.execute(select(references.usage).where(references.usage.c.digest == digest)).one()
    assert (row.blob_links, row.referenced_by) == (0, 0)
    assert row.unreferenced_since is not None
    assert manifest.manifest_entries == 0 and manifest.unreferenced_since is not None


def test_a_read_model_whose_tables_changed_is_rebuilt_at_start(client, services, settings):
    make_history(client)
    before = dump(services)
    with services.db.writer.begin() as conn:  # as if the catalog's tables were from an older version
        conn.execute(schemas.update().where(schemas.c.name == "catalog").values(fingerprint="older"))
        conn.execute(catalog.tags.insert().values(repository="team/stale", tag="x", digest="sha256:0",
                                                  updated_at=before["catalog_repositories"][0][2]))
    services.close()
    reopened = bootstrap(settings)
    try:
        assert dump(reopened) == before  # the stale row went with the old tables
        with reopened.db.reader.connect() as conn:
            fingerprints = dict(conn.execute(select(schemas.c.name, schemas.c.fingerprint)).all())
        assert fingerprints["catalog"] != "older" and set(fingerprints) >= {"catalog", "references", "gc"}
    finally:
        reopened.close()
