"""The Project aggregate: visibility and members. Topic `domain.project:Project.<Event>`.

Events are a public schema: add fields only with defaults, never rename or repurpose one.
A member is keyed by (kind, principal, repository); repository is None for a project-wide grant.
"""

from __future__ import annotations

from dataclasses import KW_ONLY
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.context import RequestContext
from domain.errors import ConflictError, NotFoundError
from domain.permissions import Role


def member_key(kind: str, principal: str, repository: str | None) -> str:
    return f"{kind}:{principal}@{repository or ''}"


class Project(Aggregate):
    class Event(Aggregate.Event):
        project: str
        actor: str
        request_id: str
        _: KW_ONLY
        source: str = ""  # added compatibly: events from before it decode with ""

        def apply(self, aggregate: Project) -> None:
            pass

    class Created(Event, Aggregate.Created):
        public: bool

    class Recreated(Event):
        """A deleted project's name taken again: a fresh project, no members."""

        public: bool

        def apply(self, project: Project) -> None:
            project.public, project.deleted, project.members = self.public, False, {}

    class VisibilityChanged(Event):
        public: bool

        def apply(self, project: Project) -> None:
            project.public = self.public

    class Deleted(Event):
        def apply(self, project: Project) -> None:
            project.deleted = True

    class MemberAdded(Event):
        kind: str
        principal: str
        role: str
        repository: str | None

        def apply(self, project: Project) -> None:
            project.members[member_key(self.kind, self.principal, self.repository)] = self.role

    class MemberRoleChanged(Event):
        kind: str
        principal: str
        role: str
        previous_role: str
        repository: str | None

        def apply(self, project: Project) -> None:
            project.members[member_key(self.kind, self.principal, self.repository)] = self.role

    class MemberRemoved(Event):
        kind: str
        principal: str
        role: str
        repository: str | None

        def apply(self, project: Project) -> None:
            project.members.pop(member_key(self.kind, self.principal, self.repository), None)

    def __init__(self, project: str, public: bool) -> None:
        self.name = project
        self.public = public
        self.deleted = False
        self.members: dict[str, str] = {}

    @staticmethod
    def create_id(name: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/projects/{name}")

    @classmethod
    def create(cls, name: str, public: bool, ctx: RequestContext) -> Project:
        return cls._create(cls.Created, id=cls.create_id(name), project=name, public=public, **ctx.event_fields())

    def recreate(self, public: bool, ctx: RequestContext) -> None:
        if not self.deleted:
            raise ConflictError("project already exists", {"project": self.name})
        self._trigger(self.Recreated, public=public, ctx=ctx)

    def set_public(self, public: bool, ctx: RequestContext) -> None:
        self.check_exists()
        if public != self.public:
            self._trigger(self.VisibilityChanged, public=public, ctx=ctx)

    def delete(self, ctx: RequestContext) -> None:
        self.check_exists()
        self._trigger(self.Deleted, ctx=ctx)

    def set_member(self, kind: str, principal: str, role: Role, repository: str | None,
                   ctx: RequestContext) -> None:
        """Adds the member, or changes the role of an existing one."""
        self.check_exists()
        previous = self.members.get(member_key(kind, principal, repository))
        fields = dict(kind=kind, principal=principal, role=role.value, repository=repository, ctx=ctx)
        if previous is None:
            self._trigger(self.MemberAdded, **fields)
        elif previous != role.value:
            self._trigger(self.MemberRoleChanged, previous_role=previous, **fields)

    def remove_member(self, kind: str, principal: str, repository: str | None, ctx: RequestContext) -> None:
        self.check_exists()
        role = self.members.get(member_key(kind, principal, repository))
        if role is None:
            raise NotFoundError("no such member", {"project": self.name, "principal": principal,
                                                   "repository": repository})
        self._trigger(self.MemberRemoved, kind=kind, principal=principal, role=role,
                      repository=repository, ctx=ctx)

    def check_exists(self) -> None:
        if self.deleted:
            raise NotFoundError("project not found", {"project": self.name})

    def _trigger(self, event_class: type[Project.Event], ctx: RequestContext, **fields) -> None:
        self.trigger_event(event_class, project=self.name, **ctx.event_fields(), **fields)
