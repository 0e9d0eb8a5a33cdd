"""Point-in-time restore of a repository or a project: the state at a log position P (the
aggregates replayed to P, `Registry.aggregate_at`) compared with the state now gives a plan — the
changes that bring it back — which is then recorded as new events, never a rewrite of history.

The plan is a pure function of the two states (`plan_repository`, `plan_project`), so a dry run
lists exactly what the real run records: both compute it the same way, and the real run applies it
to the aggregates it saves in one transaction. What a restore does not do:

* manifests pushed after P stay (untagged when their tags are removed): nothing is deleted;
* robots deleted since P stay deleted (their secrets were revoked), as a project undelete leaves
  them: they are listed in `blocked`;
* a tag an immutability rule protects (now, or in the rules the restore puts back) is never moved
  or removed: `blocked` names the rule;
* blob links nothing at P referenced, artifact labels, webhooks and robots' enabled state are not
  restored.
A restore that needs bytes garbage collection has taken is refused, naming the digests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from eventsourcing.domain import Aggregate

from domain.account import User
from domain.application import Registry
from domain.context import RequestContext
from domain.cve_allowlist import CveAllowlist
from domain.errors import ConflictError, NameUnknownError, NotFoundError
from domain.immutability import ImmutableRule
from domain.manifests import ParsedManifest, parse_manifest
from domain.permissions import Role, project_of
from domain.project import Project
from domain.push_checks import PushChecks
from domain.quotas import QuotaLimits
from domain.repository import Repository
from domain.retention import RetentionRule
from domain.robot import Robot

MISSING = "the moment needs bytes that garbage collection has taken since: it cannot be restored"
# What protects a tag: (repository, tag) -> why ("immutable tag rule 12 protects team/app:v1"), or None.
Protection = Callable[[str, str], "str | None"]


@dataclass
class Change:
    """One change of a plan, as the API shows it: `kind` and the fields that say what it does."""

    kind: str
    fields: dict = field(default_factory=dict)

    def public(self) -> dict:
        return {"kind": self.kind, **self.fields}


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    blocked: list[tuple[Change, str]] = field(default_factory=list)  # the change, what blocked it
    # Per repository: bytes to bring back (manifest digest -> media type; blob digest -> size),
    # and tags to point (digest) or delete (None).
    manifests: dict[str, dict[str, str | None]] = field(default_factory=dict)
    blobs: dict[str, dict[str, int]] = field(default_factory=dict)
    tags: dict[str, dict[str, str | None]] = field(default_factory=dict)
    changed_repositories: set[str] = field(default_factory=set)

    def add(self, change: Change, blocked_by: str | None = None) -> bool:
        if blocked_by:
            self.blocked.append((change, blocked_by))
            return False
        self.changes.append(change)
        return True

    def needed_digests(self) -> list[str]:
        """Every digest whose stored bytes the plan uses again."""
        return sorted({d for found in self.manifests.values() for d in found}
                      | {d for found in self.blobs.values() for d in found})

    def public(self) -> dict:
        return {"changes": [c.public() for c in self.changes],
                "blocked": [{**c.public(), "reason": reason} for c, reason in self.blocked]}


def plan_repository(name: str, then: Repository | None, now: Repository | None, protecting: Protection,
                    plan: Plan | None = None) -> Plan:
    """Changes that bring `now` back to `then` (None, or deleted: the repository did not exist,
    so its tags go). Manifests of P that are gone come back, with the blobs they reference."""
    plan = plan if plan is not None else Plan()
    current = now if now is not None and not now.deleted else None
    before = then if then is not None and not then.deleted else None
    if before is not None and current is None:
        plan.add(Change("repository-restored", {"repository": name}))
        plan.changed_repositories.add(name)
    if before is not None:
        _plan_content(name, before, current, plan)
    then_tags, now_tags = (before.tags if before else {}), (current.tags if current else {})
    for tag in sorted(set(then_tags) | set(now_tags)):
        _plan_tag(name, tag, then_tags.get(tag), now_tags.get(tag), protecting, plan)
    return plan


def _plan_content(name: str, before: Repository, current: Repository | None, plan: Plan) -> None:
    held = current.manifests if current else {}
    linked = current.blobs if current else {}
    for digest in sorted(before.manifests):
        if digest in held:
            continue
        plan.manifests.setdefault(name, {})[digest] = before.media_types.get(digest)
        plan.add(Change("manifest-restored", {"repository": name, "digest": digest}))
        plan.changed_repositories.add(name)
        for reference in before.manifest_references.get(digest, ()):
            if reference in before.blobs and linked.get(reference) != before.blobs[reference]:
                plan.blobs.setdefault(name, {})[reference] = before.blobs[reference]


def _plan_tag(name: str, tag: str, then: str | None, now: str | None, protecting: Protection, plan: Plan) -> None:
    if then == now:
        return
    if now is None:
        change = Change("tag-restored", {"repository": name, "tag": tag, "digest": then})
        blocked_by = None  # pointing a tag that is not there moves nothing
    elif then is None:
        change = Change("tag-removed", {"repository": name, "tag": tag, "digest": now})
        blocked_by = protecting(name, tag)
    else:
        change = Change("tag-moved", {"repository": name, "tag": tag, "digest": then, "previous_digest": now})
        blocked_by = protecting(name, tag)
    if plan.add(change, blocked_by):
        plan.tags.setdefault(name, {})[tag] = then
        plan.changed_repositories.add(name)


@dataclass
class ProjectMoment:
    """What a project restore compares: the project, and its robots (name -> aggregate), at P and now."""

    project: Project | None
    robots: dict[str, Robot | None] = field(default_factory=dict)


def plan_project(then: ProjectMoment, now: ProjectMoment, *, may_set_quota: bool = True,
                 user_gone: Callable[[str], bool] = lambda username: False,
                 grantable: Callable[[list[dict]], bool] = lambda permissions: True) -> Plan:
    """Changes that bring the project's visibility, members, policies and robots' permissions
    back to `then` (repositories are planned apart, `plan_repository`)."""
    if then.project is None or then.project.deleted:
        raise NotFoundError("the project did not exist at that moment", {})
    before, current, plan = then.project, now.project, Plan()
    name = before.name
    members_now, rules_now = current.members, current.immutable_rules
    if current.deleted:
        plan.add(Change("project-restored", {"project": name}))
        members_now, rules_now = {}, {}  # an Undeleted clears them (domain/project.py)
    elif before.public != current.public:
        plan.add(Change("policy-restored", {"policy": "visibility", "value": "public" if before.public else "private"}))
    _plan_members(before.members, members_now, user_gone, plan)
    if rules_now != before.immutable_rules:
        plan.add(Change("policy-restored", {"policy": "immutability_rules",
                                            "value": [before.immutable_rules[n] for n in _by_number(before)]}))
    _plan_policies(before, current, may_set_quota, plan)
    _plan_robots(then.robots, now.robots, grantable, plan)
    return plan


def _by_number(project: Project) -> list[str]:
    return sorted(project.immutable_rules, key=int)


def _plan_members(then: dict[str, str], now: dict[str, str], user_gone, plan: Plan) -> None:
    for key in sorted(set(then) | set(now)):
        kind, principal, repository = _member_parts(key)
        fields = {"member": principal, "member_kind": kind,
                  **({"repository": repository} if repository else {})}
        before, current = then.get(key), now.get(key)
        if before == current:
            continue
        if before is None:
            plan.add(Change("member-removed", {**fields, "role": current}))
            continue
        change = Change("member-added" if current is None else "member-role-changed",
                        {**fields, "role": before, **({"previous_role": current} if current else {})})
        gone = kind == "user" and user_gone(principal)
        plan.add(change, f"the user {principal} was deleted since" if gone else None)


def _member_parts(key: str) -> tuple[str, str, str | None]:
    """The inverse of domain/project.py's member_key."""
    kind, rest = key.split(":", 1)
    principal, repository = rest.rsplit("@", 1)
    return kind, principal, repository or None


def _quota(fields: dict | None) -> dict:
    return fields if fields is not None else vars(QuotaLimits())


def _plan_policies(before: Project, current: Project, may_set_quota: bool, plan: Plan) -> None:
    if _quota(before.quota) != _quota(current.quota):
        plan.add(Change("policy-restored", {"policy": "quota", "value": _quota(before.quota)}),
                 None if may_set_quota else "only system administrators set quotas")
    if before.retention != current.retention:
        plan.add(Change("policy-restored", {"policy": "retention", "value": before.retention}))
    if before.scanning_settings() != current.scanning_settings():
        plan.add(Change("policy-restored", {"policy": "scanning", "value": before.scanning_settings().fields()}))
    then_allowlist, now_allowlist = (CveAllowlist.from_fields(p.cve_allowlist).fields() for p in (before, current))
    if then_allowlist != now_allowlist:
        plan.add(Change("policy-restored", {"policy": "cve_allowlist", "value": then_allowlist}))


def _plan_robots(then: dict[str, Robot | None], now: dict[str, Robot | None], grantable, plan: Plan) -> None:
    for name in sorted(then):
        before, current = then[name], now.get(name)
        if before is None or before.deleted:
            continue
        if current is None or current.deleted:
            plan.add(Change("robot-restored", {"robot": name}),
                     "deleted since: its secret was revoked, so it stays deleted (create a new robot)")
            continue
        if _permission_set(before.permissions) != _permission_set(current.permissions):
            change = Change("robot-permissions-changed", {"robot": name, "permissions": before.permissions,
                                                          "previous_permissions": current.permissions})
            plan.add(change, None if grantable(before.permissions) else "you do not hold those permissions")


def _permission_set(permissions: list[dict]) -> set[tuple]:
    return {(p["project"], p["resource"], p["action"]) for p in permissions}


@dataclass
class _Staged:
    """A plan with the aggregates it was made from (now's are the ones a real run changes)."""

    plan: Plan
    repositories: dict[str, Repository | None]
    project_then: ProjectMoment | None = None
    project_now: ProjectMoment | None = None


class Restores:
    """Plans and records restores (the API and `portlog restore` call it)."""

    def __init__(self, app: Registry, checks: PushChecks, *,
                 repositories_at: Callable[[int, str], list[str]] = lambda position, project: [],
                 robots_at: Callable[[int, str], list[str]] = lambda position, project: []) -> None:
        """`repositories_at(position, project)` and `robots_at(position, project)` name those
        of the project that existed at a position (the history read model knows)."""
        self.app = app
        self.checks = checks
        self.repositories_at = repositories_at
        self.robots_at = robots_at

    def restore_repository(self, name: str, position: int, ctx: RequestContext,
                           dry_run: bool) -> tuple[Plan, int | None]:
        """The plan, and the log position of its last event (None for a dry run or no change)."""
        if self.app.get_repository(name) is None:
            raise NameUnknownError("repository name not known to registry", {"name": name})
        project = self.app.load(Project.create_id(project_of(name)))
        if project is None or project.deleted:
            raise ConflictError("the repository's project is deleted: restore the project instead",
                                {"project": project_of(name)})

        def staged() -> _Staged:
            project = self.app.load(Project.create_id(project_of(name)))
            plan, repositories = Plan(), {}
            self._plan_repository(name, position, self._protection([project]), plan, repositories)
            return _Staged(plan, repositories)

        return self._run(staged, position, ctx, dry_run)

    def restore_project(self, name: str, position: int, ctx: RequestContext, dry_run: bool, *,
                        may_set_quota: bool, grantable: Callable[[list[dict]], bool]) -> tuple[Plan, int | None]:
        """As `restore_repository`, for the project and every repository it had at `position` or has now."""
        if self.app.load(Project.create_id(name)) is None:
            raise NotFoundError("project not found", {"project": name})

        def staged() -> _Staged:
            then, now = self._project_moments(name, position)
            plan = plan_project(then, now, may_set_quota=may_set_quota, user_gone=self._user_gone,
                                grantable=grantable)
            protecting, repositories = self._protection([now.project, then.project]), {}
            for repository in sorted({*self.repositories_at(position, name),
                                      *self.repositories_at(self.app.log_positions.head(), name)}):
                self._plan_repository(repository, position, protecting, plan, repositories)
            return _Staged(plan, repositories, then, now)

        return self._run(staged, position, ctx, dry_run)

    def _plan_repository(self, name: str, position: int, protecting: Protection, plan: Plan,
                         repositories: dict[str, Repository | None]) -> None:
        repositories[name] = self.app.get_repository(name)
        plan_repository(name, self.app.aggregate_at(Repository.create_id(name), position), repositories[name],
                        protecting, plan)

    def _project_moments(self, name: str, position: int) -> tuple[ProjectMoment, ProjectMoment]:
        then = ProjectMoment(self.app.aggregate_at(Project.create_id(name), position))
        now = ProjectMoment(self.app.load(Project.create_id(name)))
        for robot in self.robots_at(position, name):
            then.robots[robot] = self.app.aggregate_at(Robot.create_id(robot), position)
            now.robots[robot] = self.app.load(Robot.create_id(robot))
        return then, now

    def _run(self, staged: Callable[[], _Staged], position: int, ctx: RequestContext,
             dry_run: bool) -> tuple[Plan, int | None]:
        """Plans; unless `dry_run`, records the plan in one transaction (planned again on a conflict).
        A dry run is refused as the real run would be (collected bytes, the quota), recording nothing."""
        if dry_run:
            plan = staged().plan
            self._check(plan, ctx, record=False)
            return plan, None
        outcome: list[Plan] = []

        def change() -> list[Aggregate]:
            stage = staged()
            manifests = self._check(stage.plan, ctx, record=True)
            outcome[:] = [stage.plan]
            changed = _apply_project(stage.project_now, stage.project_then.project, stage.plan, position, ctx) \
                if stage.project_now is not None else []
            for name in sorted(stage.plan.changed_repositories):
                repo = stage.repositories[name]
                repo.restore_to(position, stage.plan.blobs.get(name, {}), manifests.get(name, []),
                                stage.plan.tags.get(name, {}), ctx)
                changed.append(repo)
            return [*changed, *self._fences(stage.plan, ctx)]

        last = self.app.save_together(change)
        return outcome[0], last

    def _check(self, plan: Plan, ctx: RequestContext, record: bool) -> dict[str, list[ParsedManifest]]:
        """Refuses a plan whose bytes were collected, or that takes the project over its quota (as an
        undelete does); answers the manifests it brings back, parsed again from their stored bytes."""
        self._refuse_missing(plan)
        manifests = {name: [self._stored_manifest(d, t) for d, t in sorted(found.items())]
                     for name, found in plan.manifests.items()}
        for name in sorted(plan.changed_repositories):
            parsed, blobs = manifests.get(name, []), plan.blobs.get(name, {})
            sizes = {**blobs, **{m.digest: m.size for m in parsed}}
            if sizes:
                self.checks.quotas.check(name, sizes, len(parsed), ctx, record=record)
        return manifests

    def _fences(self, plan: Plan, ctx: RequestContext) -> list[Aggregate]:
        """The bytes the plan uses again, retained against a collector, in the restore's transaction."""
        try:
            return self.checks.gc_fence.fences(plan.needed_digests(), "restore", ctx)
        except ConflictError as collected:  # condemned by a collector running now
            raise ConflictError(MISSING, {"missing_digests": [collected.detail["digest"]]}) from None

    def _refuse_missing(self, plan: Plan) -> None:
        missing = [digest for digest in plan.needed_digests() if self.app.blobs.stat(digest) is None]
        if missing:
            raise ConflictError(MISSING, {"missing_digests": missing})

    def _stored_manifest(self, digest: str, media_type: str | None) -> ParsedManifest:
        return parse_manifest(b"".join(self.app.blobs.read(digest)), media_type, digest)

    def _protection(self, projects: list[Project | None]) -> Protection:
        """A tag is protected if a rule of the project protects it now, or would after the restore."""
        rule_id = self.checks.immutable_tags.rule_id

        def protecting(repository: str, tag: str) -> str | None:
            for project in projects:
                number = project.rule_protecting(repository, tag) if project is not None else None
                if number is not None:
                    public_id = rule_id(project.name, number)
                    return (f"immutable tag rule {public_id}" if public_id is not None
                            else f"an immutability rule of {project.name}") + f" protects {repository}:{tag}"
            return None

        return protecting

    def _user_gone(self, username: str) -> bool:
        user = self.app.load(User.create_id(username))
        return user is None or user.deleted


def _apply_project(now: ProjectMoment, then: Project | None, plan: Plan, position: int,
                   ctx: RequestContext) -> list[Aggregate]:
    """Records the project's part of the plan on `now`'s aggregates; returns those changed."""
    project, changed = now.project, []
    project_changes = [c for c in plan.changes if c.kind in _PROJECT_KINDS]
    if project_changes:
        project.mark_restored(position, then.public, ctx)
        changed.append(project)
    for change in project_changes:
        _apply_project_change(project, then, change, ctx)
    for change in plan.changes:
        if change.kind == "robot-permissions-changed":
            robot = now.robots[change.fields["robot"]]
            robot.change_permissions(change.fields["permissions"], ctx)
            changed.append(robot)
    return changed


_PROJECT_KINDS = ("project-restored", "policy-restored", "member-added", "member-role-changed", "member-removed")


def _apply_project_change(project: Project, then: Project, change: Change, ctx: RequestContext) -> None:
    fields = change.fields
    if change.kind.startswith("member"):
        kind, principal, repository = fields["member_kind"], fields["member"], fields.get("repository")
        if change.kind == "member-removed":
            project.remove_member(kind, principal, repository, ctx)
        else:
            project.set_member(kind, principal, Role(fields["role"]), repository, ctx)
    elif change.kind == "policy-restored":
        _restore_policy(project, then, fields["policy"], ctx)


def _restore_policy(project: Project, then: Project, policy: str, ctx: RequestContext) -> None:
    if policy == "visibility":
        project.set_public(then.public, ctx)
    elif policy == "immutability_rules":
        _restore_rules(project, then, ctx)
    elif policy == "quota":
        project.set_quota(QuotaLimits(**_quota(then.quota)), ctx)
    elif policy == "retention":
        if then.retention is None:
            project.remove_retention(ctx)
        else:
            rules = [RetentionRule.from_fields(f) for f in then.retention["rules"]]
            project.set_retention(rules, then.retention["cron"], ctx)
    elif policy == "scanning":
        project.set_scanning_settings(then.scanning_settings(), ctx)
    elif policy == "cve_allowlist":
        project.set_cve_allowlist(CveAllowlist.from_fields(then.cve_allowlist), ctx)


def _restore_rules(project: Project, then: Project, ctx: RequestContext) -> None:
    """Rules added since go, rules changed since change back, rules removed since come back (with
    new numbers: a number is the version of the event that added the rule)."""
    for number in _by_number(project):
        if number not in then.immutable_rules:
            project.remove_immutable_rule(int(number), ctx)
    for number in _by_number(then):
        rule = ImmutableRule.from_fields(then.immutable_rules[number])
        if number in project.immutable_rules:
            project.change_immutable_rule(int(number), rule, ctx)
        else:
            project.add_immutable_rule(rule, ctx)

