"""Pulls as of a moment: the reserved virtual project `as-of`, the moment's grammar, and a
repository as it was at a log position (docs/time-travel.md).

`<host>/as-of/<moment>/<repository>:<tag>` names the repository as it was at the moment, in the
repository-name grammar docker, podman and skopeo accept unchanged: the moment is
`20261207t201500z` (UTC, basic ISO 8601, lower case; fractional seconds `20261207t201500.250z`)
or `p<position>` (a log position). The state is the Repository aggregate replayed to the
position (`Registry.aggregate_at`); the manifests' details (artifact type, subject, annotations,
what they reference, when they were pushed) come from its `ManifestPushed` events up to there.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable

from domain.blob import Blob
from domain.errors import NameInvalidError
from domain.project import Project
from domain.quotas import QuotaLimits, QuotaUsage
from domain.repository import Repository

if TYPE_CHECKING:
    from domain.application import Registry

AS_OF_PROJECT = "as-of"
_MOMENT_RE = re.compile(r"(\d{8})t(\d{6})(?:\.(\d{1,6}))?z|p(\d{1,19})", re.ASCII)
MOMENT_GRAMMAR = "a UTC time like 20261207t201500z (fractional seconds allowed: 20261207t201500.250z) " \
                 "or a log position like p1234"


@dataclass(frozen=True)
class Moment:
    """A moment as written in a name: a log position or a UTC time (one of the two)."""

    text: str
    position: int | None = None
    time: datetime | None = None


def parse_moment(text: str) -> Moment:
    """The moment `text` names; NameInvalidError when it is none."""
    match = _MOMENT_RE.fullmatch(text)
    if match is None:
        raise NameInvalidError(f"invalid moment {text[:40]!r}: expected {MOMENT_GRAMMAR}", {"moment": text[:40]})
    day, clock, fraction, position = match.groups()
    if position is not None:
        return Moment(text, position=int(position))
    try:
        moment = datetime.strptime(day + clock, "%Y%m%d%H%M%S").replace(
            microsecond=int((fraction or "0").ljust(6, "0")), tzinfo=timezone.utc)
    except ValueError:
        raise NameInvalidError(f"invalid moment {text!r}: no such date or time", {"moment": text}) from None
    return Moment(text, time=moment)


def is_as_of_name(name: str) -> bool:
    return name == AS_OF_PROJECT or name.startswith(AS_OF_PROJECT + "/")


def split_as_of_name(name: str) -> tuple[Moment, str] | None:
    """`as-of/<moment>/<repository>` → (moment, repository); None for any other name.
    NameInvalidError for a name in the virtual project without a moment and a repository."""
    if not is_as_of_name(name):
        return None
    parts = name.split("/", 2)
    if len(parts) < 3 or not parts[2]:
        raise NameInvalidError(f"a name in the {AS_OF_PROJECT} view is {AS_OF_PROJECT}/<moment>/<repository>",
                               {"name": name[:160]})
    return parse_moment(parts[1]), parts[2]


def as_of_name(moment: str, repository: str) -> str:
    return f"{AS_OF_PROJECT}/{moment}/{repository}"


@dataclass(frozen=True)
class ManifestAt:
    """A manifest of a repository at a moment, as its last push before the moment recorded it."""

    digest: str
    media_type: str
    size: int
    artifact_type: str | None
    subject: str | None
    annotations: dict
    references: tuple[dict, ...]
    pushed_at: datetime

    def referenced_size(self) -> int:
        return sum(int(reference.get("size") or 0) for reference in self.references)


@dataclass
class RepositoryAt:
    """A repository as it was right after the log's event at `position`: its tags, manifests
    (digest → size), linked blobs (digest → size) and artifact labels ("<scope>:<name>")."""

    name: str
    position: int
    tags: dict[str, str]
    manifests: dict[str, int]
    blobs: dict[str, int]
    labels: dict[str, list[str]]
    version: int
    updated_at: datetime
    _details: dict[str, ManifestAt] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, aggregate: Repository, position: int) -> RepositoryAt:
        return cls(aggregate.name, position, dict(aggregate.tags), dict(aggregate.manifests), dict(aggregate.blobs),
                   {digest: list(labels) for digest, labels in aggregate.labels.items()}, aggregate.version,
                   aggregate.modified_on)

    def listed(self, details: dict[str, ManifestAt]) -> list[ManifestAt]:
        """The artifacts a listing shows (as projections/catalog.py LISTED_ARTIFACT): every
        manifest but an untagged referrer of a subject the repository held."""
        tagged = set(self.tags.values())
        return [m for m in details.values() if m.subject is None or m.digest in tagged or m.subject not in details]


class AsOfReads:
    """Repositories as of a moment, for the `as-of` view and the `as_of` of the read APIs.
    A pull asks many times at one moment (manifest, config, layers): states are kept in a small
    LRU by (repository, position); they never change, as the log before a position does not."""

    def __init__(self, registry: Registry, position_at: Callable[[datetime], int], head: Callable[[], int],
                 size: int = 64) -> None:
        self.registry = registry
        self.position_at = position_at  # the audit read model's time index
        self.head = head
        self.size = size
        self._states: OrderedDict[tuple[str, int], RepositoryAt | None] = OrderedDict()
        self._lock = threading.Lock()

    def position(self, moment: Moment) -> int:
        """The moment's log position; NameInvalidError for a moment in the future."""
        if moment.position is not None:
            if moment.position > self.head():
                raise NameInvalidError(f"the moment {moment.text} is in the future: the log ends at "
                                       f"p{self.head()}", {"moment": moment.text})
            return moment.position
        if moment.time > datetime.now(timezone.utc):
            raise NameInvalidError(f"the moment {moment.text} is in the future", {"moment": moment.text})
        return self.position_at(moment.time)

    def repository(self, name: str, position: int) -> RepositoryAt | None:
        """The repository at `position`; None when it did not exist then (or was deleted)."""
        key = (name, position)
        with self._lock:
            if key in self._states:
                self._states.move_to_end(key)
                return self._states[key]
        aggregate = self.registry.aggregate_at(Repository.create_id(name), position)
        state = None if aggregate is None or aggregate.deleted else RepositoryAt.of(aggregate, position)
        with self._lock:
            self._states[key] = state
            while len(self._states) > self.size:
                self._states.popitem(last=False)
        return state

    def manifests(self, state: RepositoryAt) -> dict[str, ManifestAt]:
        """The details of every manifest the repository held at its position (one pass over its
        events up to there, kept with the state)."""
        if state._details is None:
            pushed: dict[str, ManifestAt] = {}
            for event in self.registry.events.get(Repository.create_id(state.name), lte=state.version):
                if isinstance(event, Repository.ManifestPushed):
                    pushed[event.digest] = ManifestAt(
                        event.digest, event.media_type, event.size, event.artifact_type, event.subject,
                        dict(event.annotations or {}), tuple(event.references), event.timestamp)
            state._details = {digest: pushed[digest] for digest in state.manifests if digest in pushed}
        return state._details

    def quota_usage(self, project: str, repositories: list[str], position: int) -> QuotaUsage:
        """The project's quota at `position`: its limits then, and what its `repositories`
        (those that existed then) held, each digest counted once (as projections/quotas.py)."""
        aggregate = self.registry.aggregate_at(Project.create_id(project), position)
        limits = QuotaLimits(**aggregate.quota) if aggregate is not None and aggregate.quota else QuotaLimits()
        held: dict[str, int] = {}
        artifacts = 0
        for name in repositories:
            state = self.repository(name, position)
            if state is not None:
                held.update(state.blobs)
                held.update(state.manifests)
                artifacts += len(state.manifests)
        return QuotaUsage(project, limits, sum(held.values()), artifacts)

    def collected(self, digest: str) -> bool:
        """Whether garbage collection took the bytes (and nothing stored them again since)."""
        blob = self.registry.load(Blob.create_id(digest))
        return blob is not None and (blob.collected or blob.condemned)
