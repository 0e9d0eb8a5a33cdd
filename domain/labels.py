"""Labels: global ones (scope "g", managed by system administrators) and project ones (scope "p",
managed by a project's admins and maintainers), each a name with a colour and a description. They
are put on artifacts, to find them and to select what replication copies. Topic
`domain.labels:Label.<Event>`; events are a public schema (fields only added, with defaults).

A label is found by its scope, project and name (id `uuid5("/labels/<scope>/<project>/<name>")`),
so a deleted name can be taken again (`Recreated`); its public id is the log position of its
creation (projections/labels.py). A label cannot be renamed: its name is what the artifacts'
events refer to. Which artifacts carry a label is recorded on their repository
(`Repository.ArtifactLabelAdded` / `ArtifactLabelRemoved`): an artifact's labels are part of its
repository's history, and a project label is only ever on artifacts of its project.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Callable
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain.context import RequestContext
from domain.errors import ConcurrentUpdateError, ConflictError, InvalidInputError, NameUnknownError, NotFoundError
from domain.group_commit import MAX_ATTEMPTS
from domain.permissions import project_of
from domain.repository import Repository

GLOBAL, PROJECT = "g", "p"
SCOPES = (GLOBAL, PROJECT)
MAX_NAME_LENGTH = 128  # Harbor's
MAX_COLOR_LENGTH = 16  # Harbor's column; its UI writes "#RRGGBB"


@dataclass(frozen=True)
class LabelKey:
    """What identifies a label: its scope, its project (project labels only) and its name."""

    scope: str
    project: str | None
    name: str

    def checked(self) -> LabelKey:
        if self.scope not in SCOPES:
            raise InvalidInputError(f"invalid label scope {self.scope!r}: g (global) or p (project)",
                                    {"scope": self.scope})
        if (self.scope == PROJECT) != bool(self.project):
            raise InvalidInputError("a project label names its project, a global label none")
        if not isinstance(self.name, str) or not self.name.strip() or len(self.name) > MAX_NAME_LENGTH:
            raise InvalidInputError(f"a label needs a name of 1 to {MAX_NAME_LENGTH} characters",
                                    {"name": self.name})
        return self

    @property
    def path(self) -> str:
        return f"{self.scope}/{self.project or ''}/{self.name}"

    def applies_to(self, repository: str) -> bool:
        return self.scope == GLOBAL or self.project == project_of(repository)


class Label(Aggregate):
    class Event(Aggregate.Event):
        label: str  # its name
        scope: str
        project: str | None
        actor: str
        request_id: str
        _: KW_ONLY
        source: str = ""

        def apply(self, aggregate: Label) -> None:
            pass

    class Created(Event, Aggregate.Created):
        color: str
        description: str

    class Recreated(Event):
        """A deleted label's name taken again: a new label, on no artifact."""

        color: str
        description: str

        def apply(self, label: Label) -> None:
            label.color, label.description, label.deleted = self.color, self.description, False

    class Updated(Event):
        """The label's colour and description as they are now."""

        color: str
        description: str

        def apply(self, label: Label) -> None:
            label.color, label.description = self.color, self.description

    class Deleted(Event):
        """Recorded after the `ArtifactLabelRemoved` events that took it off every artifact."""

        def apply(self, label: Label) -> None:
            label.deleted = True

    def __init__(self, label: str, scope: str, project: str | None, color: str, description: str) -> None:
        self.name, self.scope, self.project = label, scope, project
        self.color, self.description = color, description
        self.deleted = False

    @property
    def key(self) -> LabelKey:
        return LabelKey(self.scope, self.project, self.name)

    @staticmethod
    def create_id(key: LabelKey) -> UUID:
        return uuid5(NAMESPACE_URL, f"/labels/{key.path}")

    @classmethod
    def create(cls, key: LabelKey, color: str, description: str, ctx: RequestContext) -> Label:
        key = key.checked()
        return cls._create(cls.Created, id=cls.create_id(key), label=key.name, scope=key.scope, project=key.project,
                           **_checked_looks(color, description), **ctx.event_fields())

    def recreate(self, color: str, description: str, ctx: RequestContext) -> None:
        if not self.deleted:
            raise ConflictError(f"the label {self.name} exists already", {"name": self.name, "scope": self.scope})
        self._trigger(self.Recreated, **_checked_looks(color, description), ctx=ctx)

    def update(self, color: str, description: str, ctx: RequestContext) -> None:
        self.check_exists()
        looks = _checked_looks(color, description)
        if looks != {"color": self.color, "description": self.description}:
            self._trigger(self.Updated, **looks, ctx=ctx)

    def delete(self, ctx: RequestContext) -> None:
        self.check_exists()
        self._trigger(self.Deleted, ctx=ctx)

    def check_exists(self) -> None:
        if self.deleted:
            raise NotFoundError("label not found", {"name": self.name, "scope": self.scope})

    def _trigger(self, event_class, ctx: RequestContext, **fields) -> None:
        self.trigger_event(event_class, label=self.name, scope=self.scope, project=self.project,
                           **ctx.event_fields(), **fields)


def _checked_looks(color: object, description: object) -> dict:
    if not isinstance(color, str) or len(color) > MAX_COLOR_LENGTH:
        raise InvalidInputError(f"a label's color is a string of at most {MAX_COLOR_LENGTH} characters",
                                {"color": color})
    if not isinstance(description, str):
        raise InvalidInputError("a label's description is a string")
    return {"color": color, "description": description}


class Labelling:
    """Commands on labels and on the labels of artifacts. `labelled_repositories(key)` names the
    repositories where some artifact carries the label (a read-model lookup): deleting a label
    takes it off their artifacts, in the same transaction."""

    def __init__(self, app, labelled_repositories: Callable[[LabelKey], list[str]]) -> None:
        self.app = app
        self.labelled_repositories = labelled_repositories

    def create(self, key: LabelKey, color: str, description: str, ctx: RequestContext) -> int | None:
        key = key.checked()

        def change(label: Label) -> None:
            if not label.pending_events:  # not created by this command: a name used before
                label.recreate(color, description, ctx)

        return self.app.update(Label.create_id(key), change, create=lambda: Label.create(key, color, description, ctx))

    def update(self, key: LabelKey, color: str, description: str, ctx: RequestContext) -> int | None:
        return self.app.update(Label.create_id(key), lambda label: label.update(color, description, ctx),
                               missing=lambda: _not_found(key))

    def delete(self, key: LabelKey, ctx: RequestContext) -> int | None:
        for _ in range(MAX_ATTEMPTS):
            label = self.get(key)
            holders = self._holders(key)
            for repository in holders:
                repository.drop_label(key.scope, key.name, ctx)
            label.delete(ctx)
            try:
                return self.app.save(*holders, label)[-1].notification.id
            except IntegrityError:
                continue  # a holder changed meanwhile (a push, a label): again with the new state
        raise ConcurrentUpdateError("too many concurrent writers", {"label": key.name})

    def add_to_artifact(self, repository: str, digest: str, key: LabelKey, ctx: RequestContext) -> int | None:
        label = self.get(key)
        if not label.key.applies_to(repository):
            raise InvalidInputError(f"the label {key.name} belongs to the project {key.project}: only its "
                                    "artifacts can carry it", {"label": key.name, "repository": repository})
        return self._change_repository(repository, lambda r: r.add_label(digest, key.scope, key.name, ctx))

    def remove_from_artifact(self, repository: str, digest: str, key: LabelKey, ctx: RequestContext) -> int | None:
        return self._change_repository(repository, lambda r: r.remove_label(digest, key.scope, key.name, ctx))

    def get(self, key: LabelKey) -> Label:
        label = self.app.load(Label.create_id(key))
        if label is None or label.deleted:
            raise _not_found(key)
        return label

    def _holders(self, key: LabelKey) -> list[Repository]:
        """The repositories whose artifacts carry the label, by their own state (the read model
        only says where to look)."""
        loaded = (self.app.load(Repository.create_id(name)) for name in self.labelled_repositories(key))
        return [repo for repo in loaded if repo is not None and repo.carries(key.scope, key.name)]

    def _change_repository(self, name: str, change: Callable[[Repository], None]) -> int | None:
        return self.app.update(Repository.create_id(name), change, missing=lambda: NameUnknownError(
            "repository name not known to registry", {"name": name}))


def _not_found(key: LabelKey) -> NotFoundError:
    return NotFoundError(f"label {key.name} not found", {"name": key.name, "scope": key.scope})
