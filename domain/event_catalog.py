"""The public face of events: what subscribers, webhooks and the audit trail see of each one.

Event classes are a versioned schema (fields only ever added, with defaults); this module
names them for the outside world. `describe(event)` gives every event a type such as
`artifact.pushed` or `project.member_added` (and the audit trail's operation name), the
resource it is about, its project and
repository, and its fields minus secrets. Types are as stable as the classes: a rename would
break subscribers, so a new event gets a new type and an old type keeps its meaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from domain.account import User
from domain.backups import Backup, BackupSchedule
from domain.configuration import KEYS as CONFIGURATION_KEYS
from domain.configuration import SystemConfiguration
from domain.cve_allowlist import SystemCveAllowlist
from domain.gc import GcRun, GcSchedule
from domain.labels import Label
from domain.project import Project
from domain.registries import RegistryEndpoint
from domain.replication import ReplicationPolicy
from domain.replication_runs import ReplicationExecution, ReplicationTask
from domain.repository import Repository
from domain.retention_runs import RetentionRun
from domain.robot import Robot, robot_project
from domain.scanners import ScannerRegistration
from domain.scans import Scan
from domain.user_groups import UserGroup
from domain.vulndb import VulnerabilityData

# Aggregate → the kind of resource its events are about.
KINDS = {Repository: "repository", Project: "project", User: "user", Robot: "robot", GcRun: "gc",
         GcSchedule: "gc_schedule", RetentionRun: "retention", RegistryEndpoint: "registry",
         ReplicationPolicy: "replication_policy", ReplicationExecution: "replication_execution",
         ReplicationTask: "replication_task", Label: "label", Scan: "scan", ScannerRegistration: "scanner",
         SystemCveAllowlist: "cve_allowlist", VulnerabilityData: "vulnerability_data",
         SystemConfiguration: "configuration", UserGroup: "user_group", Backup: "backup",
         BackupSchedule: "backup_schedule"}
# The event field naming the resource, where it is not the kind itself.
_SUBJECT_FIELDS = {"user": "username", "gc": "run", "retention": "project", "replication_policy": "policy",
                   "replication_execution": "policy", "replication_task": "policy", "scan": "repository",
                   "vulnerability_data": "name", "user_group": "key"}
# Kinds whose subject is a repository: its project is the repository's, and `repository` is envelope.
_OF_REPOSITORY = ("repository", "scan")

# Aggregates of which there is one, without a field naming it: their resource name.
_SINGLETONS = {"gc_schedule": "schedule", "backup_schedule": "schedule", "cve_allowlist": "system",
               "configuration": "system"}

# Types that read better than "<kind>.<event in snake case>", the rule for every other event.
_NAMED = {
    Repository.ManifestPushed: "artifact.pushed",
    Repository.ManifestDeleted: "artifact.deleted",
    Repository.BlobLinked: "blob.linked",
    Repository.BlobUnlinked: "blob.unlinked",
    Repository.TagDeleted: "tag.deleted",
    Repository.PullsRecorded: "artifact.pulled",
    Repository.ArtifactLabelAdded: "artifact.label_added",
    Repository.ArtifactLabelRemoved: "artifact.label_removed",
}
SECRET_FIELDS = frozenset({"password_hash", "secret_hash", "auth_header", "access_secret", "access_credential",
                           "sealed_secret"})
_ENVELOPE_FIELDS = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic", "actor",
                              "request_id", "source", "repository", "project", "username", "robot", "run",
                              "registry", "policy", "backup"})


@dataclass(frozen=True)
class PublicEvent:
    type: str  # for subscribers: "artifact.pushed"
    operation: str  # the audit trail's name, "<kind>.<event in snake case>": "repository.manifest_pushed"
    kind: str  # repository | project | user | robot
    occurred_at: datetime
    actor: str
    source: str
    request_id: str
    resource: str  # "team/app:v1", "team/app@sha256:…", "team/members/alice", "alice"
    project: str | None
    repository: str | None
    data: dict  # the event's own fields, secrets left out
    failed: bool = False  # an event that records a failure (failed logins)


def is_public(event: object) -> bool:
    return any(isinstance(event, aggregate.Event) for aggregate in KINDS)


def describe(event) -> PublicEvent:
    aggregate = next(a for a in KINDS if isinstance(event, a.Event))
    kind = KINDS[aggregate]
    subject = getattr(event, _SUBJECT_FIELDS.get(kind, kind), _SINGLETONS.get(kind))
    return PublicEvent(
        type=event_type(event, kind),
        operation=f"{kind}.{_snake(type(event).__name__)}",
        kind=kind,
        occurred_at=event.timestamp,
        actor=event.actor,
        source=event.source,
        request_id=event.request_id,
        resource=_resource(subject, event),
        project=event.project if kind == "label" else _project(kind, subject),
        repository=subject if kind in _OF_REPOSITORY else None,
        data=_data(event, kind),
        failed=isinstance(event, User.LoginsFailed),
    )


def _data(event, kind: str) -> dict:
    data = {k: v for k, v in vars(event).items() if k not in _hidden(kind)}
    if isinstance(event, SystemConfiguration.Changed):  # which secret changed, not its (sealed) value
        data["values"] = {key: "***" if CONFIGURATION_KEYS.get(key) and CONFIGURATION_KEYS[key].secret else value
                          for key, value in event.values.items()}
    return data


def _hidden(kind: str) -> frozenset[str]:
    """Fields that are not the event's data: the envelope (a project event's `repository`, a
    member grant's or a quota refusal's, is data) and secrets."""
    envelope = _ENVELOPE_FIELDS if kind in _OF_REPOSITORY else _ENVELOPE_FIELDS - {"repository"}
    if kind == "scanner":  # elsewhere (a scan, a project's choice) `scanner` is data
        envelope = envelope | {"scanner"}
    return envelope | SECRET_FIELDS


def event_type(event, kind: str) -> str:
    if isinstance(event, Repository.TagPointed):
        return "tag.created" if event.previous_digest is None else "tag.moved"
    return _NAMED.get(type(event)) or f"{kind}.{_snake(type(event).__name__)}"


def _project(kind: str, subject: str) -> str | None:
    if kind in _OF_REPOSITORY:
        return subject.split("/", 1)[0]
    if kind in ("project", "retention"):
        return subject
    if kind == "robot":
        return robot_project(subject)
    return None


def _resource(subject: str, event) -> str:
    if getattr(event, "tag", None):
        return f"{subject}:{event.tag}"
    if getattr(event, "digest", None):
        return f"{subject}@{event.digest}"
    if getattr(event, "principal", None):
        return f"{subject}/members/{event.principal}"
    return subject


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
