"""Events are forever: their topics must not change, and an event stored before a field was
added still decodes."""

from __future__ import annotations

import dataclasses

import orjson
import pytest
from eventsourcing.domain import Aggregate, Snapshot
from eventsourcing.persistence import StoredEvent

from domain.account import User
from domain.backups import Backup, BackupSchedule
from domain.blob import Blob
from domain.configuration import SystemConfiguration
from domain.context import RequestContext
from domain.cve_allowlist import SystemCveAllowlist
from domain.errors import StillReferencedError
from domain.gc import GcRun, GcSchedule
from domain.labels import Label
from domain.manifests import OCI_MANIFEST, Descriptor, ParsedManifest
from domain.project import Project
from domain.registries import RegistryEndpoint
from domain.replication import ReplicationPolicy
from domain.replication_runs import ReplicationExecution, ReplicationTask
from domain.repository import Repository
from domain.retention_runs import RetentionRun
from domain.robot import Robot
from domain.scanners import ScannerRegistration
from domain.scans import Scan, ScanAllRun, ScanAllSchedule
from domain.user_groups import UserGroup
from domain.vulndb import VulnerabilityData
from domain.webhooks import WebhookDelivery, WebhookPolicy

# Every event topic ever published. Add to this list; never remove or rename an entry.
PUBLISHED_TOPICS = {
    "domain.repository:Repository.Created", "domain.repository:Repository.BlobLinked",
    "domain.repository:Repository.BlobUnlinked", "domain.repository:Repository.ManifestPushed",
    "domain.repository:Repository.ManifestDeleted", "domain.repository:Repository.TagPointed",
    "domain.repository:Repository.TagDeleted", "domain.repository:Repository.PullsRecorded",
    "domain.project:Project.Created", "domain.project:Project.Recreated",
    "domain.project:Project.VisibilityChanged", "domain.project:Project.Deleted",
    "domain.project:Project.MemberAdded", "domain.project:Project.MemberRoleChanged",
    "domain.project:Project.MemberRemoved",
    "domain.project:Project.ImmutableRuleAdded", "domain.project:Project.ImmutableRuleChanged",
    "domain.project:Project.ImmutableRuleRemoved",
    "domain.account:User.Created", "domain.account:User.Recreated", "domain.account:User.PasswordChanged",
    "domain.account:User.AdminGranted", "domain.account:User.AdminRevoked", "domain.account:User.Deleted",
    "domain.account:User.LoginsFailed",
    "domain.robot:Robot.Created", "domain.robot:Robot.Recreated", "domain.robot:Robot.SecretRefreshed",
    "domain.robot:Robot.PermissionsChanged", "domain.robot:Robot.Disabled", "domain.robot:Robot.Enabled",
    "domain.robot:Robot.Deleted",
    "domain.webhooks:WebhookPolicy.Created", "domain.webhooks:WebhookPolicy.Updated",
    "domain.webhooks:WebhookPolicy.Deleted",
    "domain.webhooks:WebhookDelivery.Created", "domain.webhooks:WebhookDelivery.AttemptStarted",
    "domain.webhooks:WebhookDelivery.AttemptRecorded", "domain.webhooks:WebhookDelivery.Delivered",
    "domain.webhooks:WebhookDelivery.GaveUp", "domain.webhooks:WebhookDelivery.RedeliveryRequested",
    "domain.repository:Repository.Deleted", "domain.repository:Repository.Undeleted",
    "domain.repository:Repository.Recreated", "domain.project:Project.Undeleted",
    "domain.blob:Blob.Created", "domain.blob:Blob.Retained", "domain.blob:Blob.Condemned",
    "domain.blob:Blob.Collected",
    "domain.gc:GcRun.Created", "domain.gc:GcRun.Started", "domain.gc:GcRun.Swept", "domain.gc:GcRun.Completed",
    "domain.gc:GcRun.Failed",
    "domain.gc:GcSchedule.Created", "domain.gc:GcSchedule.Set",
    "domain.project:Project.QuotaSet", "domain.project:Project.QuotaWarning", "domain.project:Project.QuotaExceeded",
    "domain.project:Project.RetentionPolicySet", "domain.project:Project.RetentionPolicyRemoved",
    "domain.retention_runs:RetentionRun.Created", "domain.retention_runs:RetentionRun.Started",
    "domain.retention_runs:RetentionRun.Completed", "domain.retention_runs:RetentionRun.Failed",
    "domain.registries:RegistryEndpoint.Created", "domain.registries:RegistryEndpoint.Recreated",
    "domain.registries:RegistryEndpoint.Updated", "domain.registries:RegistryEndpoint.Deleted",
    "domain.replication:ReplicationPolicy.Created", "domain.replication:ReplicationPolicy.Updated",
    "domain.replication:ReplicationPolicy.Deleted", "domain.replication:ReplicationPolicy.Recreated",
    "domain.replication_runs:ReplicationExecution.Created", "domain.replication_runs:ReplicationExecution.Started",
    "domain.replication_runs:ReplicationExecution.StopRequested",
    "domain.replication_runs:ReplicationTask.Created", "domain.replication_runs:ReplicationTask.Claimed",
    "domain.replication_runs:ReplicationTask.LeaseExtended",
    "domain.replication_runs:ReplicationTask.Succeeded", "domain.replication_runs:ReplicationTask.Failed",
    "domain.replication_runs:ReplicationTask.Stopped", "domain.replication_runs:ReplicationTask.RetryRequested",
    "domain.repository:Repository.ArtifactLabelAdded", "domain.repository:Repository.ArtifactLabelRemoved",
    "domain.labels:Label.Created", "domain.labels:Label.Recreated", "domain.labels:Label.Updated",
    "domain.labels:Label.Deleted",
    "domain.project:Project.ScannerChosen",
    "domain.scanners:ScannerRegistration.Created", "domain.scanners:ScannerRegistration.Updated",
    "domain.scanners:ScannerRegistration.Deleted", "domain.scanners:ScannerRegistration.DefaultSet",
    "domain.scans:Scan.Created", "domain.scans:Scan.Requested", "domain.scans:Scan.Started",
    "domain.scans:Scan.Completed", "domain.scans:Scan.Failed", "domain.scans:Scan.Stopped",
    "domain.scans:Scan.SbomAttached", "domain.scans:Scan.SbomNotAttached",
    "domain.scans:ScanAllRun.Created", "domain.scans:ScanAllRun.Started", "domain.scans:ScanAllRun.Planned",
    "domain.scans:ScanAllRun.StopRequested",
    "domain.scans:ScanAllSchedule.Created", "domain.scans:ScanAllSchedule.Set",
    "domain.project:Project.ScanningSettingsChanged", "domain.project:Project.CveAllowlistSet",
    "domain.cve_allowlist:SystemCveAllowlist.Created", "domain.cve_allowlist:SystemCveAllowlist.Set",
    "domain.vulndb:VulnerabilityData.Created", "domain.vulndb:VulnerabilityData.Imported",
    "domain.account:User.GroupsObserved", "domain.account:User.CliSecretSet",
    "domain.configuration:SystemConfiguration.Created", "domain.configuration:SystemConfiguration.Changed",
    "domain.user_groups:UserGroup.Created", "domain.user_groups:UserGroup.Recreated",
    "domain.user_groups:UserGroup.Renamed", "domain.user_groups:UserGroup.Deleted",
    "domain.backups:Backup.Created", "domain.backups:Backup.Started", "domain.backups:Backup.Completed",
    "domain.backups:Backup.Failed", "domain.backups:BackupSchedule.Created", "domain.backups:BackupSchedule.Set",
    "domain.repository:Repository.Restored", "domain.project:Project.Restored",
}


def event_classes():
    for aggregate in (Repository, Project, User, Robot, WebhookPolicy, WebhookDelivery, Blob, GcRun, GcSchedule,
                      RetentionRun, RegistryEndpoint, ReplicationPolicy, ReplicationExecution, ReplicationTask,
                      Label, ScannerRegistration, Scan, ScanAllRun, ScanAllSchedule, SystemCveAllowlist,
                      VulnerabilityData, SystemConfiguration, UserGroup, Backup, BackupSchedule):
        for value in vars(aggregate).values():
            if isinstance(value, type) and issubclass(value, Aggregate.Event) and value.__name__ != "Event":
                yield value


def test_every_event_topic_is_published_and_stable():
    topics = {f"{cls.__module__}:{cls.__qualname__}" for cls in event_classes()}
    assert topics == PUBLISHED_TOPICS


def test_every_event_says_who_when_and_in_which_request():
    for cls in event_classes():
        names = {f.name for f in dataclasses.fields(cls)}
        assert {"actor", "request_id", "source", "timestamp"} <= names, cls


def test_an_event_stored_before_source_existed_still_decodes(services):
    ctx = RequestContext("alice", "req-1", "10.0.0.1")
    services.registry.update(Repository.create_id("team/old"), lambda r: None,
                             create=lambda: Repository.create("team/old", ctx))
    stored = services.registry.recorder.select_notifications(start=None, limit=1000)[-1]
    state = orjson.loads(stored.state)
    assert state.pop("source") == "10.0.0.1"
    old = StoredEvent(stored.originator_id, stored.originator_version, stored.topic, orjson.dumps(state))
    event = services.registry.mapper.to_domain_event(old)
    assert event.source == "" and event.actor == "alice" and event.repository == "team/old"


def test_a_project_snapshot_taken_before_immutability_rules_still_loads(services):
    ctx = RequestContext("alice", "req-1")
    services.admin.create_project("old", False, ctx)
    old = Snapshot.take(services.registry.load(Project.create_id("old")))
    old.state.pop("immutable_rules")
    old.state.pop("class_version")
    stored = services.registry.mapper.to_stored_event(old)
    project = services.registry.mapper.to_domain_event(stored).mutate(None)
    assert project.immutable_rules == {} and project.rule_protecting("old/app", "v1") is None


def test_a_project_snapshot_taken_before_scanning_settings_still_loads(services):
    ctx = RequestContext("alice", "req-1")
    services.admin.create_project("old", False, ctx)
    old = Snapshot.take(services.registry.load(Project.create_id("old")))
    old.state.pop("scanning")
    old.state.pop("cve_allowlist")
    old.state["class_version"] = 5
    stored = services.registry.mapper.to_stored_event(old)
    project = services.registry.mapper.to_domain_event(stored).mutate(None)
    assert (project.scanning, project.cve_allowlist) == (None, None)
    assert project.scanning_settings().severity == "Low" and project.scanning_settings().reuse_sys_cve_allowlist


def test_a_scanning_settings_event_stored_before_a_setting_existed_decodes_with_harbors_default(services):
    from domain.scanning_settings import ScanningSettings

    ctx = RequestContext("alice", "req-1")
    services.scanning_policy.set_project("team", ctx, ScanningSettings(prevent_vul=True, enable_content_trust=True))
    stored = services.registry.recorder.select_notifications(start=None, limit=1000)[-1]
    state = orjson.loads(stored.state)
    assert state.pop("enable_content_trust") is True
    old = StoredEvent(stored.originator_id, stored.originator_version, stored.topic, orjson.dumps(state))
    event = services.registry.mapper.to_domain_event(old)
    assert (event.prevent_vul, event.enable_content_trust, event.severity) == (True, False, "Low")


def test_a_repository_snapshot_taken_before_deletion_existed_still_loads(services):
    ctx = RequestContext("alice", "req-1")
    services.registry.update(Repository.create_id("team/old"), lambda r: r.link_blob("sha256:" + "a" * 64, 3, ctx),
                             create=lambda: Repository.create("team/old", ctx))
    old = Snapshot.take(services.registry.load(Repository.create_id("team/old")))
    for name in ("media_types", "deleted", "trash", "deleted_tags", "labels", "class_version"):
        old.state.pop(name)
    stored = services.registry.mapper.to_stored_event(old)
    repository = services.registry.mapper.to_domain_event(stored).mutate(None)
    assert repository.blobs == {"sha256:" + "a" * 64: 3}
    assert (repository.deleted, repository.trash, repository.deleted_tags, repository.media_types) == (
        False, None, {}, {})
    repository.delete(ctx)  # and it can be deleted
    assert repository.deleted and repository.trash["blobs"] == {"sha256:" + "a" * 64: 3}


def test_a_repository_snapshot_taken_before_labels_existed_still_loads(services):
    ctx = RequestContext("alice", "req-1")
    services.registry.update(Repository.create_id("team/old"), lambda r: r.link_blob("sha256:" + "a" * 64, 3, ctx),
                             create=lambda: Repository.create("team/old", ctx))
    old = Snapshot.take(services.registry.load(Repository.create_id("team/old")))
    old.state.pop("labels")
    old.state["class_version"] = 2
    stored = services.registry.mapper.to_stored_event(old)
    repository = services.registry.mapper.to_domain_event(stored).mutate(None)
    assert repository.labels == {} and repository.label_names("sha256:" + "b" * 64) == frozenset()


def test_a_repository_snapshot_taken_before_manifest_references_existed_is_replayed(services):
    """Its state cannot say which blobs its manifests use: the registry replays the events, so a
    blob delete is still refused while a manifest uses the blob."""
    ctx = RequestContext("alice", "req-1")
    config = Descriptor("application/vnd.oci.image.config.v1+json", "sha256:" + "1" * 64, 10)
    layer = Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", "sha256:" + "2" * 64, 20)
    image = ParsedManifest(digest="sha256:" + "a" * 64, media_type=OCI_MANIFEST, size=300,
                           config=config, layers=(layer,))

    def push(repository: Repository) -> None:
        for blob in (config, layer):
            repository.link_blob(blob.digest, blob.size, ctx)
        repository.push_manifest(image, "v1", ctx)

    registry, repository_id = services.registry, Repository.create_id("team/old")
    registry.update(repository_id, push, create=lambda: Repository.create("team/old", ctx))
    old = Snapshot.take(registry.load(repository_id))
    old.state.pop("manifest_references")
    old.state["class_version"] = 3
    registry.snapshots.put([old])
    registry.repository.cache.get(repository_id, evict=True)
    assert registry.repository.get(repository_id).lacks_references()  # as an upgraded node finds it

    assert registry.load(repository_id).manifest_references == {image.digest: [config.digest, layer.digest]}
    with pytest.raises(StillReferencedError):
        services.uploads.unlink_blob("team/old", layer.digest, ctx)
    assert not registry.repository.get(repository_id).lacks_references()  # replayed once, then cached


def test_a_user_created_before_directory_accounts_existed_decodes_as_a_local_account(services):
    services.admin.create_user("olduser", "Passw0rd!", "o@example.org", False, RequestContext("admin", "r"))
    stored = next(n for n in services.registry.recorder.select_notifications(start=None, limit=1000)
                  if n.topic == "domain.account:User.Created" and b"olduser" in n.state)
    state = orjson.loads(stored.state)
    assert state.pop("auth_source") == "db" and state.pop("external_id") == "" and state.pop("realname") == ""
    old = StoredEvent(stored.originator_id, stored.originator_version, stored.topic, orjson.dumps(state))
    event = services.registry.mapper.to_domain_event(old)
    assert (event.auth_source, event.external_id, event.realname) == ("db", "", "")


def test_a_user_snapshot_taken_before_directory_accounts_still_loads(services):
    services.admin.create_user("snapuser", "Passw0rd!", "", False, RequestContext("admin", "r"))
    old = Snapshot.take(services.registry.load(User.create_id("snapuser")))
    for field in ("auth_source", "external_id", "groups"):
        old.state.pop(field)
    old.state["class_version"] = 1
    stored = services.registry.mapper.to_stored_event(old)
    user = services.registry.mapper.to_domain_event(stored).mutate(None)
    assert (user.auth_source, user.external_id, list(user.groups)) == ("db", "", [])
