"""Retention runs: a project's policy applied to its artifacts, now or — for a dry run — as
they were at a past moment, read back from the event log. Topic
`domain.retention_runs:RetentionRun.<Event>`; events are a public schema (fields only added,
with defaults).

A real run computes its plan exactly as a dry run would (domain/retention.py), then deletes each
planned artifact with a conditional command: only if its tags are still those the plan saw (a tag
pushed meanwhile keeps it). Its deletions are ordinary `ManifestDeleted` events whose actor names
the policy (`retention:<project>`) and whose request id is the run's id.
"""

from __future__ import annotations

from dataclasses import KW_ONLY
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate

from domain.context import RequestContext
from domain.errors import (
    ConflictError,
    InvalidInputError,
    ManifestUnknownError,
    NameUnknownError,
    NotFoundError,
    StillReferencedError,
    TagImmutableError,
)
from domain.project import Project
from domain.repository import Repository
from domain.retention import Artifact, Deletion, Plan, plan

if TYPE_CHECKING:
    from domain.artifacts import Artifacts

TRIGGERS = ("manual", "schedule", "cli")


class RetentionRun(Aggregate):
    class Event(Aggregate.Event):
        project: str
        actor: str
        request_id: str
        _: KW_ONLY
        source: str = ""

        def apply(self, aggregate: RetentionRun) -> None:
            pass

    class Started(Event, Aggregate.Created):
        dry_run: bool
        as_of: str | None  # ISO 8601: the moment a dry run judged (None: the run's own)
        trigger: str
        rules: list

    class Completed(Event):
        """`deleted` (or, in a dry run, to be deleted) and `skipped` ({repository, digest,
        tags, reason}): what changed since the plan, or an immutable tag."""

        retained: int
        deleted: list
        skipped: list

    class Failed(Event):
        error: str

    def __init__(self, project: str, dry_run: bool, as_of: str | None, trigger: str, rules: list) -> None:
        self.project, self.dry_run, self.as_of, self.rules = project, dry_run, as_of, rules

    @staticmethod
    def scheduled_id(project: str, slot: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/retention/{project}/runs/scheduled/{slot}")

    @classmethod
    def start(cls, project: str, dry_run: bool, as_of: datetime | None, trigger: str, rules: list,
              ctx: RequestContext, run_id: UUID | None = None) -> RetentionRun:
        if trigger not in TRIGGERS:
            raise InvalidInputError("unknown retention trigger", {"trigger": trigger})
        return cls._create(cls.Started, id=run_id or uuid4(), project=project, dry_run=dry_run,
                           as_of=as_of.isoformat() if as_of else None, trigger=trigger, rules=rules,
                           **ctx.event_fields())

    def complete(self, planned: Plan, deleted: list[Deletion], skipped: list[dict], ctx: RequestContext) -> None:
        """`retained` counts what the plan kept and what it could not delete (skipped)."""
        self._trigger(self.Completed, retained=planned.retained + len(skipped), deleted=[d.fields() for d in deleted],
                      skipped=skipped, ctx=ctx)

    def fail(self, error: str, ctx: RequestContext) -> None:
        self._trigger(self.Failed, error=error[:2000], ctx=ctx)

    def _trigger(self, event_class, ctx: RequestContext, **fields) -> None:
        self.trigger_event(event_class, project=self.project, **ctx.event_fields(), **fields)


class RetentionRunner:
    def __init__(self, registry, repositories_as_of: Callable[[int, str], list[str]],
                 artifacts: Artifacts | None = None) -> None:
        """`artifacts` deletes what a run plans (a runner without it only reads the log)."""
        self.registry = registry
        self.artifacts = artifacts
        self.repositories_as_of = repositories_as_of

    def run(self, project: str, dry_run: bool, trigger: str, ctx: RequestContext,
            as_of_position: int | None = None, run_id: UUID | None = None,
            as_of_time: datetime | None = None) -> tuple[UUID, int]:
        """Runs the project's policy; returns (run id, log position of its last event). A dry run
        as of a past time gets that time (`as_of_time`) and the position of the log then."""
        policy: Project | None = self.registry.load(Project.create_id(project))
        if policy is None or policy.deleted:
            raise NotFoundError("project not found", {"project": project})
        if policy.retention is None:
            raise NotFoundError("the project has no retention policy", {"project": project})
        if as_of_position is not None and not dry_run:
            raise ConflictError("only a dry run can be evaluated as of a past time")
        head = self.registry.recorder.max_notification_id() or 0
        position = min(as_of_position, head) if as_of_position is not None else head
        moment = self._as_of_moment(as_of_position, position, as_of_time)
        run = RetentionRun.start(project, dry_run, moment if as_of_position is not None else None, trigger,
                                 policy.retention["rules"], ctx, run_id)
        self.registry.save(run)
        deleted: list[Deletion] = []
        try:
            planned = plan(policy.retention_rules(), self.artifacts_as_of(project, position, moment), moment)
            if dry_run:
                deleted, skipped = planned.deletions, []
            else:
                skipped = self._execute(planned, str(run.id), project, deleted)
            run.complete(planned, deleted, skipped, ctx)
        except Exception as error:
            done = f" after deleting {len(deleted)} artifacts (their events carry the run's id)" if deleted else ""
            run.fail(f"{type(error).__name__}: {error}{done}", ctx)
            self.registry.save(run)
            raise
        return run.id, self.registry.save(run)[-1].notification.id

    def artifacts_as_of(self, project: str, position: int, moment: datetime) -> dict[str, list[Artifact]]:
        """The project's artifacts at `moment`, folded from each repository's events."""
        return {name: _fold(self.registry.events.get(Repository.create_id(name)), moment)
                for name in self.repositories_as_of(position, project)}

    def _execute(self, planned: Plan, run: str, project: str, deleted: list[Deletion]) -> list[dict]:
        """Deletes what the plan says, appending each deletion to `deleted` as it is done;
        returns what it skipped, and why."""
        ctx = RequestContext(f"retention:{project}", run)
        skipped, pending = [], list(planned.deletions)
        while pending:
            listed = []  # children of an index deleted later in the pass: again after it
            for deletion in pending:
                try:
                    self.artifacts.delete_manifest_if_tags(deletion.repository, deletion.digest, deletion.tags, ctx)
                    deleted.append(deletion)
                except StillReferencedError as reason:
                    listed.append((deletion, reason))
                except (TagImmutableError, ConflictError, ManifestUnknownError, NameUnknownError) as reason:
                    skipped.append(deletion.fields() | {"reason": reason.message})
            if len(listed) == len(pending):  # no index of theirs went: they stay
                skipped += [deletion.fields() | {"reason": reason.message} for deletion, reason in listed]
                break
            pending = [deletion for deletion, _ in listed]
        return skipped

    def _as_of_moment(self, as_of_position: int | None, position: int, as_of_time: datetime | None) -> datetime:
        """The moment the plan judges: the time asked for (not later than now), else the time of
        the position asked for, else now."""
        now = datetime.now(timezone.utc)
        if as_of_time is not None:
            return min(as_of_time, now)
        return self._moment_of(position) if as_of_position is not None else now

    def log_start(self) -> datetime | None:
        """When the first event was recorded (None: the log is empty)."""
        return self._moment_of(1) if self.registry.recorder.max_notification_id() else None

    def _moment_of(self, position: int) -> datetime:
        """When the event at `position` was recorded."""
        notifications = self.registry.recorder.select_notifications(start=max(position, 1), limit=1)
        if notifications:
            return self.registry.mapper.to_domain_event(notifications[0]).timestamp
        return datetime.now(timezone.utc)


def _fold(stored_events, moment: datetime) -> list[Artifact]:
    """Artifacts (pushed, tagged, pulled) of one repository as its events had made them at `moment`."""
    pushed: dict[str, Repository.ManifestPushed] = {}
    tags: dict[str, str] = {}
    pulled: dict[str, datetime] = {}
    for event in stored_events:
        if event.timestamp > moment:
            break
        match event:
            case Repository.ManifestPushed():
                pushed[event.digest] = event
            case Repository.ManifestDeleted(digest=digest):
                pushed.pop(digest, None)
            case Repository.TagPointed(tag=tag, digest=digest):
                tags[tag] = digest
            case Repository.TagDeleted(tag=tag):
                tags.pop(tag, None)
            case Repository.PullsRecorded(pulls=pulls):
                for pull in pulls:
                    when = datetime.fromisoformat(pull["last_pulled_at"])
                    pulled[pull["digest"]] = max(when, pulled.get(pull["digest"], when))
    return [Artifact(digest, event.timestamp, tuple(sorted(t for t, d in tags.items() if d == digest)),
                     pulled.get(digest), event.subject,
                     tuple(r["digest"] for r in event.references if r["role"] == "manifest"))
            for digest, event in pushed.items()]
