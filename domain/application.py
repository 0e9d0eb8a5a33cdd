"""The registry application: the event log and how commands write to it.

`Registry` is the eventsourcing Application: it loads and saves aggregates, groups the writers
of this process into one save (domain/group_commit.py), snapshots and caches. The commands live
with their capability, each a small service over it, as domain/administration.py's are:

* domain/uploads.py: blob uploads, mounts, the proxy cache's blobs;
* domain/artifacts.py: manifests and tags (push, point, delete, pulls);
* domain/trash.py: deleting a repository, undeleting a repository or a tag;
* domain/project_rules.py: quotas, immutability rules, retention settings;
* domain/push_checks.py: the checks every push passes (proxy project, immutable tags, complete
  references, quota, garbage collection's fence), in one list.

Commands return the notification id that read models must reach before the caller
answers, so clients read their own writes.
"""

from __future__ import annotations

import threading
from copy import deepcopy
from typing import Callable, ContextManager
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, project_aggregate
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain.account import User
from domain.context import RequestContext
from domain.errors import ConcurrentUpdateError, NameUnknownError, NotFoundError, RegistryError
from domain.group_commit import MAX_ATTEMPTS, Command, GroupCommitter
from domain.ports import BlobStore, LogPositions
from domain.project import Project
from domain.repository import Repository

# eventsourcing fast-forwards a cached aggregate in place under its own lock, then copies it
# after releasing that lock: a copy taken while another thread fast-forwards the same aggregate
# fails ("dictionary changed size during iteration"; seen with two workers on PostgreSQL, where
# the other worker's writes make fast-forwards common). Loads of one aggregate take one of these.
_LOAD_STRIPES = 64


class Registry(Application):
    name = "portlog"
    snapshotting_intervals = {Repository: 100, Project: 100, User: 100}

    def __init__(self, blobs: BlobStore, env: dict[str, str] | None = None) -> None:
        super().__init__(env=env)
        self.blobs = blobs
        self.log_positions: LogPositions | None = None  # set by the composition root
        # Raises when this registry may not record anything (a follower: its log is the leader's).
        self.write_guard: Callable[[], None] | None = None
        # Wraps each commit, given the aggregates saved: the composition root's span when tracing is on.
        self.around_commit: Callable[[tuple], ContextManager] | None = None
        self._committer = GroupCommitter(self, self.load)
        self._load_locks = tuple(threading.Lock() for _ in range(_LOAD_STRIPES))

    def save(self, *objects, **kwargs):
        """Every write goes through here: the guard first, so that no path, a read path's
        bookkeeping included, records anything on a follower."""
        if self.write_guard is not None:
            self.write_guard()
        if self.around_commit is None:
            return super().save(*objects, **kwargs)
        with self.around_commit(objects):
            return super().save(*objects, **kwargs)

    # Writers in this process are grouped into one save (domain/group_commit.py); a version
    # conflict with another process is retried against the new state.

    def update(self, aggregate_id: UUID, change: Callable[[Aggregate], None],
               create: Callable[[], Aggregate] | None = None,
               missing: Callable[[], RegistryError] | None = None) -> int | None:
        """Loads (or creates) an aggregate, applies `change`, saves; returns the log position."""
        return self._committer.run(Command(aggregate_id, change, create, missing))

    def change_repository(self, name: str, ctx: RequestContext, change: Callable[[Repository], None]) -> int | None:
        """Applies `change` to the repository, created if it does not exist."""
        return self.update(Repository.create_id(name), change, create=lambda: Repository.create(name, ctx))

    def change_existing_repository(self, name: str, change: Callable[[Repository], None]) -> int | None:
        return self.update(Repository.create_id(name), change, missing=lambda: NameUnknownError(
            "repository name not known to registry", {"name": name}))

    def change_project(self, name: str, change: Callable[[Project], None]) -> int | None:
        return self.update(Project.create_id(name), change, missing=lambda: NotFoundError(
            "project not found", {"project": name}))

    def save_together(self, change: Callable[[], list[Aggregate]]) -> int | None:
        """Saves what `change` loaded and changed in one transaction, again on a conflict
        (outside the group commit: for a change of several aggregates)."""
        for _ in range(MAX_ATTEMPTS):
            try:
                recordings = self.save(*change())
            except IntegrityError:
                continue
            return recordings[-1].notification.id if recordings else None
        raise ConcurrentUpdateError("too many concurrent writers", {})

    # Reading

    def get_repository(self, name: str) -> Repository | None:
        return self.load(Repository.create_id(name))

    def peek_repository(self, name: str) -> Repository | None:
        """The repository as cached, not copied: only to read, for a check made again when saving."""
        try:
            return self._cached(Repository.create_id(name), deepcopy_from_cache=False)
        except AggregateNotFoundError:
            return None

    def load(self, aggregate_id: UUID) -> Aggregate | None:
        try:
            aggregate = self._cached(aggregate_id)
        except AggregateNotFoundError:
            return None
        if isinstance(aggregate, Repository) and aggregate.lacks_references():
            aggregate = self._replay(aggregate_id)
        return aggregate

    def _cached(self, aggregate_id: UUID, **options) -> Aggregate:
        """The cached aggregate fast-forwarded, and (unless asked not to) copied, by one thread at a time."""
        with self._load_locks[aggregate_id.int % _LOAD_STRIPES]:
            return self.repository.get(aggregate_id, **options)

    def aggregate_at(self, aggregate_id: UUID, position: int) -> Aggregate | None:
        """The aggregate as it was right after the log's event at `position` (None: it did not
        exist yet). Time travel, point-in-time restore and pulls as of a moment read this."""
        version = self.log_positions.version_at(aggregate_id, position)
        if version is None:
            return None
        aggregate = self.repository.get(aggregate_id, version=version)
        if isinstance(aggregate, Repository) and aggregate.lacks_references():
            aggregate = project_aggregate(None, self.events.get(aggregate_id, lte=version))
        return aggregate

    def _replay(self, aggregate_id: UUID) -> Aggregate:
        """The aggregate from all its events, not from its snapshot (one taken before the state
        had what the decisions now need); cached, so once per process until the next snapshot."""
        aggregate = project_aggregate(None, self.events.get(aggregate_id))
        if self.repository.cache is not None:
            self.repository.cache.put(aggregate_id, deepcopy(aggregate))
        return aggregate
