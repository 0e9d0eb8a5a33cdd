"""Replication policies: what to copy between this registry and a remote endpoint, which way,
when. Topic `domain.replication:ReplicationPolicy.<Event>`; events are a public schema (fields
only added, with defaults).

A policy is push-based (`source` is this registry, None; `destination` an endpoint) or pull-based
(`source` an endpoint, `destination` None). Filters select repositories by name and artifacts
by tag (doublestar, `matches` or `excludes`) and, push-based only, by the labels they carry
(domain/labels.py); `destination_namespace` replaces the project part of the name, `flatten`
levels of the path are dropped first (Harbor's dest_namespace_replace_count: -1 flattens nothing,
0 keeps every level, 1 the last one, ...). Triggers: manual, scheduled (cron), event-based
(pushes, tags, labels put on artifacts and — with `deletion` — deletes, followed from the log).
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Collection
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.context import RequestContext
from domain.errors import ConflictError, InvalidInputError, NotFoundError
from domain.immutability import Selector, check_pattern
from domain.names import NAME_RE

TRIGGERS = ("manual", "scheduled", "event_based")
FILTER_TYPES = ("name", "tag", "label")
MAX_NAME_LENGTH = 255


@dataclass(frozen=True)
class Filter:
    type: str  # name (repository, with its project), tag or label
    pattern: str  # name and tag filters
    excluding: bool = False
    labels: tuple[str, ...] = ()  # label filters: label names

    def checked(self) -> Filter:
        if self.type not in FILTER_TYPES:
            raise InvalidInputError(f"unknown filter type {self.type!r}; one of {', '.join(FILTER_TYPES)}",
                                    {"type": self.type})
        if self.type == "label":
            if not isinstance(self.labels, tuple) or not all(isinstance(n, str) and n for n in self.labels):
                raise InvalidInputError("a label filter names labels", {"labels": self.labels})
        else:
            check_pattern(self.pattern, self.type)
        if not isinstance(self.excluding, bool):
            raise InvalidInputError("a filter's decoration is matches or excludes")
        return self

    def selects(self, value: str) -> bool:
        return Selector(self.pattern, self.excluding).selects(value)

    def selects_labels(self, carried: Collection[str]) -> bool:
        """Harbor's label filter: `matches` when the artifact carries every label named (no name:
        every artifact), `excludes` otherwise."""
        carries_all = set(self.labels) <= set(carried)
        return carries_all != self.excluding

    def fields(self) -> dict:
        fields = {"type": self.type, "pattern": self.pattern, "excluding": self.excluding}
        return {**fields, "labels": list(self.labels)} if self.type == "label" else fields

    @classmethod
    def from_fields(cls, fields: dict) -> Filter:
        return cls(fields["type"], fields["pattern"], fields.get("excluding", False), tuple(fields.get("labels", ())))


@dataclass(frozen=True)
class PolicySettings:
    source: str | None  # endpoint name; None: this registry
    destination: str | None
    destination_namespace: str = ""
    flatten: int = -1
    filters: tuple[Filter, ...] = ()
    trigger: str = "manual"
    cron: str | None = None
    deletion: bool = False
    override: bool = True
    enabled: bool = True
    description: str = ""
    bandwidth_kib: int = -1  # per task, KiB/s; -1: unlimited (Harbor's `speed`)

    def checked(self) -> PolicySettings:
        if (self.source is None) == (self.destination is None):
            raise InvalidInputError("a policy copies from a remote registry to this one or from this one to a "
                                    "remote registry: give exactly one of source and destination")
        if self.trigger not in TRIGGERS:
            raise InvalidInputError(f"unknown trigger {self.trigger!r}; one of {', '.join(TRIGGERS)}")
        if self.trigger == "scheduled" and not self.cron:
            raise InvalidInputError("a scheduled trigger needs a cron")
        if self.trigger == "event_based" and self.source is not None:
            raise InvalidInputError("event-based triggers follow this registry's events: push-based policies only")
        if self.filters_on_labels and self.source is not None:
            raise InvalidInputError("label filters select this registry's artifacts by the labels they carry: "
                                    "push-based policies only (a remote registry's labels are not read)")
        for name in ("deletion", "override", "enabled"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidInputError(f"{name} must be true or false")
        for name in ("flatten", "bandwidth_kib"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < -1:
                raise InvalidInputError(f"{name} must be a whole number, -1 or more")
        if self.destination_namespace and not _valid_namespace(self.destination_namespace):
            raise InvalidInputError("destination namespace must be a repository path (lowercase, / separated)",
                                    {"destination_namespace": self.destination_namespace})
        for item in self.filters:
            item.checked()
        return self

    def selects_repository(self, name: str) -> bool:
        return all(f.selects(name) for f in self.filters if f.type == "name")

    def selects_tag(self, tag: str) -> bool:
        return all(f.selects(tag) for f in self.filters if f.type == "tag")

    def selects_labels(self, carried: Collection[str]) -> bool:
        """Whether an artifact carrying the labels named `carried` is selected."""
        return all(f.selects_labels(carried) for f in self.filters if f.type == "label")

    @property
    def filters_on_labels(self) -> bool:
        return any(f.type == "label" for f in self.filters)

    def destination_name(self, name: str) -> str:
        """Where `name` (project/path/repo) lands: levels flattened, then the project replaced."""
        project, _, path = name.partition("/")
        parts = path.split("/")
        if self.flatten == 0:
            parts = parts[-1:]
        elif self.flatten > 0:
            parts = parts[min(self.flatten, len(parts) - 1):]
        return "/".join([self.destination_namespace or project, *parts])

    def fields(self) -> dict:
        return {"source": self.source, "destination": self.destination,
                "destination_namespace": self.destination_namespace, "flatten": self.flatten,
                "filters": [f.fields() for f in self.filters],
                "trigger": self.trigger, "cron": self.cron, "deletion": self.deletion, "override": self.override,
                "enabled": self.enabled, "description": self.description, "bandwidth_kib": self.bandwidth_kib}

    @classmethod
    def from_fields(cls, fields: dict) -> PolicySettings:
        values = dict(fields)
        values["filters"] = tuple(Filter.from_fields(f) for f in values.get("filters", ()))
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})


class ReplicationPolicy(Aggregate):
    class Event(Aggregate.Event):
        policy: str  # its name
        actor: str
        request_id: str
        _: KW_ONLY
        source: str = ""

        def apply(self, aggregate: ReplicationPolicy) -> None:
            pass

    class Created(Event, Aggregate.Created):
        settings: dict  # PolicySettings.fields()

    class Updated(Event):
        settings: dict

        def apply(self, policy: ReplicationPolicy) -> None:
            policy.settings = self.settings

    class Deleted(Event):
        def apply(self, policy: ReplicationPolicy) -> None:
            policy.deleted = True

    class Recreated(Event):
        settings: dict

        def apply(self, policy: ReplicationPolicy) -> None:
            policy.settings, policy.deleted = self.settings, False

    def __init__(self, policy: str, settings: dict) -> None:
        self.name = policy
        self.settings = settings
        self.deleted = False

    @staticmethod
    def create_id(name: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/replication/policies/{name}")

    @classmethod
    def create(cls, name: str, settings: PolicySettings, ctx: RequestContext) -> ReplicationPolicy:
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
            raise InvalidInputError(f"a policy needs a name of 1 to {MAX_NAME_LENGTH} characters", {"name": name})
        return cls._create(cls.Created, id=cls.create_id(name), policy=name, settings=settings.checked().fields(),
                           **ctx.event_fields())

    def recreate(self, settings: PolicySettings, ctx: RequestContext) -> None:
        if not self.deleted:
            raise ConflictError("a replication policy with this name exists already", {"name": self.name})
        self._trigger(self.Recreated, settings=settings.checked().fields(), ctx=ctx)

    def update(self, settings: PolicySettings, ctx: RequestContext) -> None:
        self.check_exists()
        fields = settings.checked().fields()
        if fields != self.settings:
            self._trigger(self.Updated, settings=fields, ctx=ctx)

    def delete(self, ctx: RequestContext) -> None:
        self.check_exists()
        self._trigger(self.Deleted, ctx=ctx)

    def check_exists(self) -> None:
        if self.deleted:
            raise NotFoundError("replication policy not found", {"name": self.name})

    @property
    def current(self) -> PolicySettings:
        return PolicySettings.from_fields(self.settings)

    def _trigger(self, event_class, ctx: RequestContext, **fields) -> None:
        self.trigger_event(event_class, policy=self.name, **ctx.event_fields(), **fields)


def _valid_namespace(namespace: str) -> bool:
    return isinstance(namespace, str) and NAME_RE.fullmatch(namespace) is not None


class Policies:
    """Commands on replication policies; the endpoints they name must exist."""

    def __init__(self, app, endpoints) -> None:
        self.app = app
        self.endpoints = endpoints

    def add(self, name: str, settings: PolicySettings, ctx: RequestContext) -> int | None:
        self._check_endpoints(settings)

        def change(policy: ReplicationPolicy) -> None:
            if not policy.pending_events:  # not created by this command: a name used before
                policy.recreate(settings, ctx)

        return self.app.update(ReplicationPolicy.create_id(name), change,
                               create=lambda: ReplicationPolicy.create(name, settings, ctx))

    def update(self, name: str, settings: PolicySettings, ctx: RequestContext) -> int | None:
        self._check_endpoints(settings)
        return self.app.update(ReplicationPolicy.create_id(name), lambda p: p.update(settings, ctx),
                               missing=lambda: NotFoundError("replication policy not found", {"name": name}))

    def delete(self, name: str, ctx: RequestContext) -> int | None:
        return self.app.update(ReplicationPolicy.create_id(name), lambda p: p.delete(ctx),
                               missing=lambda: NotFoundError("replication policy not found", {"name": name}))

    def get(self, name: str) -> ReplicationPolicy:
        policy = self.app.load(ReplicationPolicy.create_id(name))
        if policy is None or policy.deleted:
            raise NotFoundError("replication policy not found", {"name": name})
        return policy

    def _check_endpoints(self, settings: PolicySettings) -> None:
        for endpoint in (settings.source, settings.destination):
            if endpoint is not None:
                self.endpoints.get(endpoint)
