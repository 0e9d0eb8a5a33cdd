"""The bodies webhooks send: Harbor's webhook JSON (payload format "Default") or a CloudEvent
(adapters/cloudevents.py, payload format "CloudEvents").

Harbor's shape:

    {"type": "PUSH_ARTIFACT", "occur_at": 1700000000, "operator": "alice",
     "event_data": {"resources": [{"digest": "sha256:…", "tag": "1.0",
                                   "resource_url": "registry.example:5000/team/app:1.0"}],
                    "repository": {"date_created": 1690000000, "name": "app", "namespace": "team",
                                   "repo_full_name": "team/app", "repo_type": "private"}}}
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone
from urllib.parse import urlsplit

from adapters.cloudevents import TYPE_PREFIX, cloudevent
from domain.event_catalog import PublicEvent

CONTENT_TYPES = {"Default": "application/json", "CloudEvents": "application/cloudevents+json"}
JOB_STATUS = {"succeeded": "Success", "failed": "Failed", "stopped": "Stopped"}
VULNERABILITY_REPORT = "application/vnd.security.vulnerability.report; version=1.1"


@dataclass(frozen=True)
class ReplicationFacts:
    """The end of a replication execution (REPLICATION): every task's outcome then, and its
    policy as it is now (Harbor reads it when it sends, too)."""

    status: str  # succeeded | failed | stopped
    tasks: tuple[dict, ...]  # {operation, source_repository, reference, destination_repository, status, error}
    push: bool  # this registry is the source
    local: dict  # this registry: {registry_type, endpoint}
    remote: dict  # the policy's endpoint: {registry_name, registry_type, endpoint}
    started_by: str
    started_at: datetime
    trigger: str
    description: str = ""
    creator: str = ""
    override: bool = True
    execution: str = ""  # its id in the log

    def local_repository(self, task: dict) -> str:
        return task["source_repository"] if self.push else task["destination_repository"]

    def project_of(self, task: dict) -> str:
        return self.local_repository(task).split("/", 1)[0]

    @property
    def projects(self) -> tuple[str, ...]:
        """This registry's projects the tasks read (push-based) or wrote (pull-based)."""
        return tuple(sorted({self.project_of(task) for task in self.tasks}))

    def of_project(self, project: str) -> ReplicationFacts:
        """Only the artifacts of `project`: what its webhooks may see of an execution that
        spans several."""
        return replace(self, tasks=tuple(task for task in self.tasks if self.project_of(task) == project))


@dataclass(frozen=True)
class EventFacts:
    """One event, with what its payloads need beyond the event itself."""

    position: int
    public: PublicEvent
    tags: tuple[str, ...] = ()  # the tag pushed with a manifest, the tags deleted with it
    repository_created_at: datetime | None = None
    repository_public: bool = False
    replication: ReplicationFacts | None = None  # the execution the event ended

    def for_policy_of(self, project: str | None) -> EventFacts:
        """What a policy of `project` (None: instance-wide) is told."""
        if self.replication is None or project is None:
            return self
        return replace(self, replication=self.replication.of_project(project))


def payload(payload_format: str, webhook_type: str, facts: EventFacts, registry: str, source: str) -> dict:
    if payload_format == "CloudEvents" and webhook_type == "REPLICATION":
        return replication_cloudevent(facts, registry, source)
    if payload_format == "CloudEvents":
        return cloudevent(facts.position, facts.public, source)
    return harbor_payload(webhook_type, facts, registry)


def replication_cloudevent(facts: EventFacts, registry: str, source: str) -> dict:
    """An execution's end as a CloudEvent whose data is the REPLICATION summary, filtered like
    the Default payload: the task event that ended it may name another project's repository."""
    event = cloudevent(facts.position, facts.public, source)
    event.pop("subject", None)
    return {**event, "type": TYPE_PREFIX + "replication.execution_ended",
            "data": {"execution": facts.replication.execution, "operator": facts.replication.started_by,
                     **replication_data(facts.replication, registry)["replication"]}}


def harbor_payload(webhook_type: str, facts: EventFacts, registry: str) -> dict:
    public = facts.public
    if webhook_type.startswith("QUOTA_"):
        event_data = quota_data(facts)
    elif webhook_type == "TAG_RETENTION":
        event_data = retention_data(facts, registry)
    elif webhook_type == "REPLICATION":
        event_data = replication_data(facts.replication, registry)
    elif webhook_type.startswith("SCANNING_"):
        event_data = scanning_data(facts, registry)
    else:
        event_data = {"resources": resources(facts, registry), "repository": repository(facts)}
    return {
        "type": webhook_type,
        "occur_at": int(public.occurred_at.timestamp()),
        "operator": facts.replication.started_by if webhook_type == "REPLICATION" else operator(public),
        "event_data": event_data,
    }


def replication_data(end: ReplicationFacts, registry: str) -> dict:
    """Harbor's REPLICATION, for a whole execution: its artifacts named as this registry holds
    them; `failed_artifact` lists the stopped ones too (status "Stopped"), as not copied."""
    source, destination = (end.local, end.remote) if end.push else (end.remote, end.local)
    artifacts = [_artifact(end, task) for task in end.tasks]
    return {"replication": {
        "harbor_hostname": urlsplit(f"//{registry}").hostname, "job_status": JOB_STATUS[end.status],
        "description": end.description, "artifact_type": "artifact", "override_mode": end.override,
        "trigger_type": end.trigger, "policy_creator": end.creator,
        "execution_timestamp": int(end.started_at.timestamp()),
        "src_resource": {**source, "namespace": _namespaces(t["source_repository"] for t in end.tasks)},
        "dest_resource": {**destination, "namespace": _namespaces(t["destination_repository"] for t in end.tasks)},
        "successful_artifact": [a for a in artifacts if a["status"] == "Success"],
        "failed_artifact": [a for a in artifacts if a["status"] != "Success"]}}


def _artifact(end: ReplicationFacts, task: dict) -> dict:
    name = end.local_repository(task).split("/", 1)[-1]
    separator = "@" if task["reference"].startswith("sha256:") else ":"
    artifact = {"type": "artifact", "status": JOB_STATUS[task["status"]],
                "name_tag": f"{name}{separator}{task['reference']}"}
    if task["status"] != "succeeded" and task["error"]:
        artifact["fail_reason"] = task["error"]
    return artifact


def _namespaces(repositories) -> str:
    """The projects (first path components) of the repositories, comma-separated when several."""
    return ",".join(sorted({name.split("/", 1)[0] for name in repositories if "/" in name}))


def retention_data(facts: EventFacts, registry: str) -> dict:
    """Harbor's TAG_RETENTION: a run's totals and what it deleted (or, dry, would delete)."""
    data = facts.public.data
    deleted = [{"type": "image", "status": "SUCCESS", "name_space": item["repository"].split("/", 1)[0],
                "repository": item["repository"].split("/", 1)[-1], "tag": ",".join(item["tags"]),
                "digest": item["digest"]} for item in data["deleted"]]
    # `retained` counts the artifacts a run kept, skipped ones included.
    return {"retention": {"total": data["retained"] + len(data["deleted"]), "retained": data["retained"],
                          "hostname": registry, "project_name": facts.public.project, "result": "SUCCESS",
                          "deleted_artifacts": deleted}}


def quota_data(facts: EventFacts) -> dict:
    """Harbor's QUOTA_EXCEED and QUOTA_WARNING: what happened, in words, under `Details`."""
    data = facts.public.data
    if facts.public.type == "project.quota_exceeded":
        details = (f"adding {data['adding']} of {data['resource']} to {data['used']} would exceed the "
                   f"configured limit of {data['limit']} (pushing to {data['repository']})")
        full_name = data["repository"]
    else:
        details = f"{data['resource']} usage {data['used']} reached the warning threshold of its limit {data['limit']}"
        full_name = f"{facts.public.project}/"
    namespace, _, name = full_name.partition("/")
    return {"resources": [], "custom_attributes": {"Details": details},
            "repository": {"name": name, "namespace": namespace, "repo_full_name": full_name.rstrip("/"),
                           "repo_type": "public" if facts.repository_public else "private"}}


def operator(public: PublicEvent) -> str:
    """Who caused the event; for recorded pulls (actor "system") the puller, the first one
    when several pulled; for a scan's outcome, who asked for the scan."""
    pulls = public.data.get("pulls") if public.type == "artifact.pulled" else None
    if public.type.startswith("scan.") and public.data.get("requested_by"):
        return public.data["requested_by"]
    return pulls[0]["actor"] if pulls else public.actor


def scanning_data(facts: EventFacts, registry: str) -> dict:
    """Harbor's SCANNING_COMPLETED, _FAILED and _STOPPED: the artifact with its scan overview
    (the vulnerability summary, keyed by the report's media type) or SBOM overview, the
    repository, and the scan type."""
    public, data = facts.public, facts.public.data
    scan_type = data["scan_type"]
    found = resource(registry, public.repository, data["digest"], data.get("tag"))
    overview = scan_overview_of_event(public)
    if scan_type == "sbom":
        found["sbom_overview"] = {key: overview[key] for key in
                                  ("start_time", "end_time", "scan_status", "report_id", "duration", "scanner")}
    else:
        found["scan_overview"] = {data.get("report_media_type") or VULNERABILITY_REPORT: overview}
    namespace, _, name = public.repository.partition("/")
    return {"resources": [found],
            "repository": {"name": name, "namespace": namespace, "repo_full_name": public.repository,
                           "repo_type": "public" if facts.repository_public else "private"},
            "scan": {"scan_type": scan_type}}


def scan_overview_of_event(public: PublicEvent) -> dict:
    """Harbor's NativeReportSummary of a scan's outcome, from the outcome event alone."""
    data = public.data
    status = {"scan.completed": "Success", "scan.failed": "Error", "scan.stopped": "Stopped"}[public.type]
    started = _moment(data.get("started_at")) or public.occurred_at
    ended = public.occurred_at
    overview = {"report_id": data["report_id"], "scan_status": status, "severity": data.get("severity", ""),
                "duration": max(int(ended.timestamp() - started.timestamp()), 0),
                "summary": None, "start_time": _time_text(started), "end_time": _time_text(ended),
                "complete_percent": 100 if status == "Success" else 0,
                "scanner": {"name": data.get("scanner_name", ""), "vendor": data.get("scanner_vendor", ""),
                            "version": data.get("scanner_version", "")}}
    if status == "Success":
        overview["summary"] = {"total": data.get("total", 0), "fixable": data.get("fixable", 0),
                               "summary": data.get("summary") or {}}
    return overview


def _moment(value) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _time_text(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def resources(facts: EventFacts, registry: str) -> list[dict]:
    public, data = facts.public, facts.public.data
    if public.type == "artifact.pulled":
        return [resource(registry, public.repository, pull["digest"], pull["tag"])
                | {"actor": pull["actor"], "count": pull["count"], "last_pulled_at": pull["last_pulled_at"]}
                for pull in data["pulls"]]
    tags = (data["tag"],) if data.get("tag") else facts.tags
    return [resource(registry, public.repository, data["digest"], tag) for tag in tags or (None,)]


def resource(registry: str, repository: str, digest: str, tag: str | None) -> dict:
    if tag is None:
        return {"digest": digest, "resource_url": f"{registry}/{repository}@{digest}"}
    return {"digest": digest, "tag": tag, "resource_url": f"{registry}/{repository}:{tag}"}


def repository(facts: EventFacts) -> dict:
    full_name = facts.public.repository
    namespace, _, name = full_name.partition("/")
    created = facts.repository_created_at
    return {"date_created": int(created.timestamp()) if created else None, "name": name,
            "namespace": namespace, "repo_full_name": full_name,
            "repo_type": "public" if facts.repository_public else "private"}
