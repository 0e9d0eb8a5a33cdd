"""Consistent online backups through the API and `portlog backup verify|restore`, on SQLite and
PostgreSQL: what a backup holds (the log up to P, the blobs in use at P, nothing else), incremental
copying, verification naming the first bad item (truncation, corruption, tampering), restore
refusing a bad backup or a non-empty target and otherwise giving the same registry (sealed
secrets open), the garbage-collection fence, and the API's refusals."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from adapters.log_store import read_all
from adapters.outbound import OutboundGuard
from background.backups import MANIFEST, blob_name
from cli.main import main
from config.bootstrap import bootstrap
from config.settings import Settings
from domain.backups import Backup
from domain.context import RequestContext
from tests.support.auth import PASSWORD, create_user
from tests.support.oci import OCI_MANIFEST, digest_of, push_blob, push_image

pytestmark = pytest.mark.both_databases

CTX = RequestContext("admin", "test")
SECRET_KEY = "a secret key of the registry, 32 characters or more"


@pytest.fixture
def settings(settings):
    """With a configured secret key (scale-out has no other): stored credentials can be sealed."""
    return replace(settings, secret_key=SECRET_KEY)


def back_up(client, destination: Path | str, incremental: bool = False) -> dict:
    response = client.post("/api/v1/backups", json={"destination": str(destination), "incremental": incremental})
    assert response.status_code == 202, response.text
    backup = response.json()
    deadline = time.monotonic() + 60
    while backup["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
        backup = client.get(f"/api/v1/backups/{backup['id']}").json()
    assert backup["status"] == "succeeded", backup
    return backup


def manifest_of(destination: Path) -> dict:
    return json.loads((destination / MANIFEST).read_text())


def in_use(services) -> set[str]:
    return set(services.references.kept()) | {d for d, _ in _links(services)}


def _links(services):
    with services.db.reader.connect() as conn:
        return conn.exec_driver_sql("SELECT digest, 1 FROM refs_digest_usage WHERE blob_links > 0").all()


def test_a_backup_holds_the_log_up_to_p_and_the_blobs_in_use_at_p_and_nothing_else(client, services, tmp_path,
                                                                                     capsys):
    push_image(client, "team/app", "1.0", seed="one")
    push_image(client, "team/app", "2.0", seed="two")
    unlinked = push_blob(client, "team/app", b"uploaded, then deleted")
    assert client.delete(f"/v2/team/app/blobs/{unlinked}").status_code == 202
    replaced, _ = services.vulnerability_imports.record("Debian", iter([b"[]"]), "old.json", {}, 0, CTX)
    current, position = services.vulnerability_imports.record("Debian", iter([b"[ ]"]), "new.json", {}, 0, CTX)
    services.projections.wait_for(position)
    destination = tmp_path / "backup"
    backup = back_up(client, destination)

    manifest = manifest_of(destination)
    assert backup["position"] == manifest["position"] and backup["log_digest"] == manifest["log_digest"]
    listed = {b["digest"] for b in manifest["blobs"]}
    assert listed == in_use(services) | {current} and unlinked not in listed and replaced not in listed
    assert backup["blob_count"] == len(listed) == backup["copied_blobs"]
    stored = {str(p.relative_to(destination)) for p in (destination / "blobs").rglob("*") if p.is_file()}
    assert stored == {blob_name(d) for d in listed}
    events = [orjson.loads(line) for segment in manifest["segments"]
              for line in (destination / segment["name"]).read_text().splitlines()]
    logged = read_all(services.log_store, up_to=backup["position"])
    assert [e["position"] for e in events] == [e.position for e in logged]
    assert backup["started_position"] <= backup["position"] < services.log_store.head()  # Completed came after P
    for path in (destination / MANIFEST, destination / "secret.key", destination / blob_name(next(iter(listed)))):
        assert path.stat().st_mode & 0o077 == 0, path
    assert main(["backup", "verify", str(destination)]) == 0
    document = manifest_of(destination)  # the vulnerability data file dropped: verify knows the log needs it
    document["blobs"] = [b for b in document["blobs"] if b["digest"] != current]
    (destination / MANIFEST).write_text(json.dumps(document))
    capsys.readouterr()
    assert main(["backup", "verify", str(destination)]) == 1
    assert f"blob {current}: referenced by the log" in capsys.readouterr().err


def test_incremental_backups_copy_only_the_blobs_the_destination_lacks(client, services, tmp_path):
    push_image(client, "team/app", "1.0", seed="one")
    destination = tmp_path / "backup"
    first = back_up(client, destination)
    digest, manifest = push_image(client, "team/app", "2.0", seed="two")  # a new config, layer and manifest
    second = back_up(client, destination, incremental=True)
    assert second["blob_count"] == first["blob_count"] + 3
    assert (second["copied_blobs"], second["copied_bytes"]) == (3, sum(
        b["size"] for b in manifest_of(destination)["blobs"]) - first["bytes"])
    full = back_up(client, destination)  # not incremental: everything written again
    assert full["copied_blobs"] == full["blob_count"]
    assert main(["backup", "verify", str(destination)]) == 0


def test_verify_names_the_first_bad_item_and_restore_refuses_it(client, services, tmp_path, capsys):
    push_image(client, "team/app", "1.0", seed="one")
    good = tmp_path / "good"
    back_up(client, good)
    assert main(["backup", "verify", str(good)]) == 0
    manifest = manifest_of(good)
    segment = manifest["segments"][0]["name"]
    layer = next(b for b in manifest["blobs"] if b["size"] > 100)["digest"]

    def truncated(d: Path):
        path = d / segment
        path.write_bytes(path.read_bytes()[:-10])

    def corrupted(d: Path):
        path = d / blob_name(layer)
        data = bytearray(path.read_bytes())
        data[0] ^= 0xFF
        path.write_bytes(bytes(data))

    def event_changed(d: Path):  # a changed event, its segment's sha256 fixed up: the hash chain tells
        path, document = d / segment, manifest_of(d)
        lines = path.read_bytes().splitlines()
        event = orjson.loads(lines[3])
        state = base64.b64decode(event["state"]).replace(b'"actor":"', b'"actor":"mallory-', 1)
        lines[3] = orjson.dumps({**event, "state": base64.b64encode(state).decode()})
        data = b"\n".join(lines) + b"\n"
        path.write_bytes(data)
        document["segments"][0].update(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
        (d / MANIFEST).write_text(json.dumps(document))

    def blob_removed(d: Path):
        (d / blob_name(layer)).unlink()

    def manifest_modified(d: Path):  # a blob dropped from the list: the log still references it
        document = manifest_of(d)
        document["blobs"] = [b for b in document["blobs"] if b["digest"] != layer]
        (d / MANIFEST).write_text(json.dumps(document))

    expected = {truncated: f"{segment}: ", corrupted: f"blob {layer}: its bytes hash",
                event_changed: "the log does not match", blob_removed: f"blob {layer} is missing",
                manifest_modified: f"blob {layer}: referenced by the log"}
    for damage, message in expected.items():
        damaged = tmp_path / damage.__name__
        _copy_tree(good, damaged)
        damage(damaged)
        capsys.readouterr()
        assert main(["backup", "verify", str(damaged)]) == 1, damage.__name__
        assert message in capsys.readouterr().err, damage.__name__
        target = tmp_path / f"restored-{damage.__name__}"
        assert main(["backup", "restore", str(damaged), "--data-dir", str(target)]) == 1
        error = capsys.readouterr().err
        assert "refusing to restore" in error and message in error, damage.__name__
        assert not target.exists() or not any(target.iterdir())


def test_restore_gives_the_same_registry_and_sealed_secrets_open(client, services, tmp_path, capsys):
    push_image(client, "team/app", "1.0", seed="one")
    digest, _ = push_image(client, "team/app", "2.0", seed="two")
    client.post("/api/v2.0/registries", json={"name": "peer", "url": "http://127.0.0.1:1", "type": "docker-registry",
                                              "credential": {"type": "basic", "access_key": "bob",
                                                             "access_secret": "Peer-Secret-1"}})
    destination = tmp_path / "backup"
    backup = back_up(client, destination)
    push_image(client, "team/app", "3.0", seed="after")  # after P: not in the backup

    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "something").write_text("x")
    assert main(["backup", "restore", str(destination), "--data-dir", str(occupied)]) == 1
    assert "not empty" in capsys.readouterr().err and (occupied / "something").read_text() == "x"

    target = tmp_path / "restored"
    assert main(["backup", "restore", str(destination), "--data-dir", str(target)]) == 0
    restored = bootstrap(Settings(data_dir=target))
    try:
        copied = list(read_all(restored.log_store))
        assert copied[:-1] == list(read_all(services.log_store, up_to=backup["position"]))
        # after P, one event only (the first start wrote nothing of its own): the backup's completion
        assert copied[-1].topic == "domain.backups:Backup.Completed" and copied[-1].position > backup["position"]
        restored_backup = restored.backups.backup(backup["id"])
        assert (restored_backup.status, restored_backup.position) == ("succeeded", backup["position"])
        assert restored.backups.earliest_running_start() is None  # no phantom backup fencing collections
        assert restored.catalog.tags("team/app", 100) == ["1.0", "2.0"]
        assert restored.catalog.manifest_by_tag("team/app", "2.0").digest == digest
        for digest_, size in restored.references.kept().items():
            with restored.blobs.open(digest_) as stream:
                assert digest_of(stream.read()) == digest_
        assert restored.endpoints.credentials("peer") == ("bob", "Peer-Secret-1")
        assert (target / "secret.key").read_text().strip() == SECRET_KEY
        assert (target / "secret.key").stat().st_mode & 0o077 == 0
    finally:
        restored.close()
    assert main(["backup", "restore", str(destination), "--data-dir", str(target)]) == 1  # never over a registry


def test_garbage_collection_spares_what_a_running_backup_may_need(client, services):
    deleted = push_image(client, "team/app", "1.0", seed="doomed")[0]
    layers = client.get(f"/v2/team/app/manifests/{deleted}", headers={"Accept": OCI_MANIFEST}).json()["layers"]
    assert client.delete(f"/v2/team/app/manifests/{deleted}").status_code == 202
    time.sleep(1.1)
    backup = Backup.start("manual", "/nowhere", False, services.log_store.head(), CTX)
    services.projections.wait_for(services.registry.save(backup)[-1].notification.id)
    services.gc_jobs.start(0, False, "cli", CTX, background=False)
    assert services.blobs.stat(layers[0]["digest"]) is not None  # linked, so in the running backup
    backup.fail("stopped by the test", CTX)
    services.projections.wait_for(services.registry.save(backup)[-1].notification.id)
    services.gc_jobs.start(0, False, "cli", CTX, background=False)
    assert services.blobs.stat(layers[0]["digest"]) is None


def test_the_api_refuses_bad_destinations_and_non_administrators(client, services, settings, tmp_path, seaweedfs):
    assert client.post("/api/v1/backups", json={}).status_code == 422
    assert client.post("/api/v1/backups", json={"destination": 5}).status_code == 422
    assert client.post("/api/v1/backups", json={"destination": "ftp://x/y"}).status_code == 422
    assert client.post("/api/v1/backups", json={"destination": "relative/dir"}).status_code == 422
    assert client.post("/api/v1/backups", json={"destination": "/" + "x" * 5000}).status_code == 422
    assert client.post("/api/v1/backups", content=b"[1, 2]").status_code == 422
    inside = client.post("/api/v1/backups", json={"destination": str(settings.data_dir / "b")})
    assert inside.status_code == 422 and "data directory" in inside.json()["detail"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert client.post("/api/v1/backups", json={"destination": str(other)}).status_code == 409
    create_user(client, "dev")
    assert client.post("/api/v1/backups", json={"destination": str(tmp_path / "b")},
                       auth=("dev", PASSWORD)).status_code == 403
    assert client.get("/api/v1/backups", auth=("dev", PASSWORD)).status_code == 403
    assert client.get("/api/v1/backups/nope").status_code == 404
    assert client.get("/api/v1/backups").json() == []  # nothing refused was recorded
    running = Backup.start("manual", str(tmp_path / "busy"), False, 1, CTX)
    services.projections.wait_for(services.registry.save(running)[-1].notification.id)
    busy = client.post("/api/v1/backups", json={"destination": str(tmp_path / "busy")})
    assert busy.status_code == 409 and "running" in busy.json()["detail"]


def test_an_s3_destination_named_through_the_api_goes_through_the_outbound_guard(client, services, settings,
                                                                                   seaweedfs, tmp_path):
    url = (f"s3://{seaweedfs.access_key}:{seaweedfs.secret_key}@{seaweedfs.endpoint}/api-backups/team"
           f"?secure=false&region={seaweedfs.region}")
    push_image(client, "team/app", "1.0", seed="one")
    backup = back_up(client, url)
    assert backup["destination"] == f"s3://{seaweedfs.endpoint}/api-backups/team?secure=false"
    assert seaweedfs.secret_key not in json.dumps(client.get("/api/v1/audit-logs?page_size=100").json())
    assert main(["backup", "verify", url]) == 0
    services.outbound = OutboundGuard()  # loopback refused again, as by default
    refused = client.post("/api/v1/backups", json={"destination": url})
    assert refused.status_code == 422 and "outbound connection" in refused.json()["detail"]
    assert seaweedfs.secret_key not in refused.text


def test_the_schedule_keeps_credentials_sealed(client, services, seaweedfs):
    url = f"s3://AKIDEXAMPLE:Very-Secret-Key-1@{seaweedfs.endpoint}/scheduled?secure=false"
    response = client.put("/api/v1/backups/schedule", json={"cron": "0 3 * * *", "destination": url,
                                                            "incremental": True})
    assert response.status_code == 200, response.text
    assert response.json()["destination"] == f"s3://{seaweedfs.endpoint}/scheduled?secure=false"
    assert client.get("/api/v1/backups/schedule").json()["cron"] == "0 3 * * *"
    assert client.put("/api/v1/backups/schedule", json={"cron": "nonsense", "destination": url}).status_code == 422
    assert client.put("/api/v1/backups/schedule", json={"cron": "0 3 * * *"}).status_code == 422
    assert all(b"Very-Secret-Key-1" not in e.state for e in read_all(services.log_store))
    from background.backups import scheduled_destination
    from domain.backups import BackupSchedule

    assert scheduled_destination(services, services.registry.load(BackupSchedule.ID)) == url


def _copy_tree(source: Path, target: Path) -> None:
    import shutil

    shutil.copytree(source, target)


def test_each_slot_of_the_schedule_runs_one_backup(client, services, tmp_path):
    from datetime import datetime, timedelta, timezone

    from background.scheduler import start_due_backup

    destination = tmp_path / "scheduled"
    assert client.put("/api/v1/backups/schedule", json={"cron": "* * * * *", "destination": str(destination),
                                                        "incremental": True}).status_code == 200
    now = datetime.now(timezone.utc)
    start_due_backup(services, now - timedelta(minutes=2), now)
    start_due_backup(services, now - timedelta(minutes=2), now)  # the same slot again: taken already
    deadline = time.monotonic() + 30
    while (backups := client.get("/api/v1/backups").json())[0]["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [(b["trigger"], b["status"], b["incremental"]) for b in backups] == [("schedule", "succeeded", True)]
    assert main(["backup", "verify", str(destination)]) == 0


def test_a_backup_missing_a_blob_it_needs_fails_naming_it(client, services, tmp_path):
    digest, manifest = push_image(client, "team/app", "1.0", seed="one")
    layer = json.loads(manifest)["layers"][0]["digest"]
    services.blobs.delete(layer)  # lost behind the registry's back (a disk error, a hand-made "cleanup")
    response = client.post("/api/v1/backups", json={"destination": str(tmp_path / "backup")})
    assert response.status_code == 202
    backup = response.json()
    while backup["status"] == "running":
        time.sleep(0.05)
        backup = client.get(f"/api/v1/backups/{backup['id']}").json()
    assert backup["status"] == "failed" and backup["reason"] == f"blob {layer} is missing from storage"
    assert not (tmp_path / "backup" / MANIFEST).exists()  # no backup.json: nothing there claims to be a backup
    push_image(client, "team/app", "1.0", seed="one")  # its bytes uploaded again
    assert back_up(client, tmp_path / "backup")["blob_count"] == 3  # the failed backup's files are no obstacle
