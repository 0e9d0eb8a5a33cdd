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

from dataclasses import dataclass
from datetime import datetime

from adapters.cloudevents import cloudevent
from domain.event_catalog import PublicEvent

CONTENT_TYPES = {"Default": "application/json", "CloudEvents": "application/cloudevents+json"}


@dataclass(frozen=True)
class EventFacts:
    """One event, with what its payloads need beyond the event itself."""

    position: int
    public: PublicEvent
    tags: tuple[str, ...] = ()  # the tag pushed with a manifest, the tags deleted with it
    repository_created_at: datetime | None = None
    repository_public: bool = False


def payload(payload_format: str, webhook_type: str, facts: EventFacts, registry: str, source: str) -> dict:
    if payload_format == "CloudEvents":
        return cloudevent(facts.position, facts.public, source)
    return harbor_payload(webhook_type, facts, registry)


def harbor_payload(webhook_type: str, facts: EventFacts, registry: str) -> dict:
    public = facts.public
    if webhook_type.startswith("QUOTA_"):
        event_data = quota_data(facts)
    elif webhook_type == "TAG_RETENTION":
        event_data = retention_data(facts, registry)
    else:
        event_data = {"resources": resources(facts, registry), "repository": repository(facts)}
    return {
        "type": webhook_type,
        "occur_at": int(public.occurred_at.timestamp()),
        "operator": operator(public),
        "event_data": event_data,
    }


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
    when several pulled."""
    pulls = public.data.get("pulls") if public.type == "artifact.pulled" else None
    return pulls[0]["actor"] if pulls else public.actor


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
