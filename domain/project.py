"""The Project aggregate: visibility, members, tag immutability rules, quota, retention, and
scanning settings with the CVE allowlist. Topic
`domain.project:Project.<Event>`.

Events are a public schema: add fields only with defaults, never rename or repurpose one.
A member is keyed by (kind, principal, repository); repository is None for a project-wide grant.
An immutability rule is keyed by its number: the project version of the event that added it
(its public id, in the read model and the APIs, is that event's log position, which the
aggregate cannot know). Rules are here, not in an aggregate of their own, because every tag
move or delete must see all the rules of a project as the log has them: one aggregate to load.
"""

from __future__ import annotations

from dataclasses import KW_ONLY
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.context import RequestContext
from domain.cve_allowlist import CveAllowlist
from domain.errors import ConflictError, NotFoundError
from domain.immutability import RULE_FIELDS, ImmutableRule
from domain.permissions import Role
from domain.quotas import QuotaLimits
from domain.retention import RetentionRule, checked_rules
from domain.scanning_settings import NAMES as SCANNING_SETTINGS
from domain.scanning_settings import ScanningSettings


def member_key(kind: str, principal: str, repository: str | None) -> str:
    return f"{kind}:{principal}@{repository or ''}"


class Project(Aggregate):
    # Version 2 added `immutable_rules`, version 3 `quota`, version 4 `retention`, version 5
    # `proxy_registry`, version 6 `scanning` and `cve_allowlist`; older snapshots are upcast.
    class_version = 6

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
        # A proxy-cache project's upstream: the name of a registry endpoint (added compatibly).
        proxy_registry: str | None = None

    class Recreated(Event):
        """A deleted project's name taken again: a fresh project, no members."""

        public: bool
        proxy_registry: str | None = None

        def apply(self, project: Project) -> None:
            project.public, project.deleted, project.members = self.public, False, {}
            project.immutable_rules, project.quota, project.retention = {}, None, None
            project.proxy_registry = self.proxy_registry
            project.scanning, project.cve_allowlist = None, None

    class VisibilityChanged(Event):
        public: bool

        def apply(self, project: Project) -> None:
            project.public = self.public

    class Deleted(Event):
        def apply(self, project: Project) -> None:
            project.deleted = True

    class Undeleted(Event):
        """A deleted project back, with its visibility; MemberAdded, ImmutableRuleAdded and
        QuotaSet events follow for the members, rules and quota it had (rules get new numbers)."""

        public: bool
        proxy_registry: str | None = None

        def apply(self, project: Project) -> None:
            project.public, project.deleted = self.public, False
            project.members, project.immutable_rules = {}, {}

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

    class ImmutableRuleAdded(Event):
        """`rule` is the rule's number: this event's own originator_version."""

        rule: int
        repositories: str
        exclude_repositories: bool
        tags: str
        exclude_tags: bool
        disabled: bool
        priority: int

        def apply(self, project: Project) -> None:
            project.immutable_rules[str(self.rule)] = _rule_fields(self)

    class ImmutableRuleChanged(Event):
        """The rule as it is now, every field (enabling and disabling included)."""

        rule: int
        repositories: str
        exclude_repositories: bool
        tags: str
        exclude_tags: bool
        disabled: bool
        priority: int

        def apply(self, project: Project) -> None:
            project.immutable_rules[str(self.rule)] = _rule_fields(self)

    class ImmutableRuleRemoved(Event):
        rule: int

        def apply(self, project: Project) -> None:
            project.immutable_rules.pop(str(self.rule), None)

    class QuotaSet(Event):
        """Limits (None: unlimited) and the percentage of a limit that records a warning."""

        storage_bytes: int | None
        artifacts: int | None
        warning_percent: int

        def apply(self, project: Project) -> None:
            project.quota = {"storage_bytes": self.storage_bytes, "artifacts": self.artifacts,
                             "warning_percent": self.warning_percent}

    class RetentionPolicySet(Event):
        """The project's retention policy: `rules` (domain/retention.py, RetentionRule.fields)
        and `cron` (None: manual runs only)."""

        rules: list
        cron: str | None

        def apply(self, project: Project) -> None:
            project.retention = {"rules": self.rules, "cron": self.cron}

    class RetentionPolicyRemoved(Event):
        def apply(self, project: Project) -> None:
            project.retention = None

    class ScanningSettingsChanged(Event):
        """Every scanning setting as it is now (domain/scanning_settings.py), Harbor's defaults
        where an older event lacks one."""

        auto_scan: bool = False
        prevent_vul: bool = False
        severity: str = "Low"
        reuse_sys_cve_allowlist: bool = True
        enable_content_trust_cosign: bool = False
        enable_content_trust: bool = False

        def apply(self, project: Project) -> None:
            project.scanning = {name: getattr(self, name) for name in SCANNING_SETTINGS}

    class CveAllowlistSet(Event):
        """The project's own CVE allowlist, whole (domain/cve_allowlist.py): vulnerability ids and
        the expiry in Unix seconds (None: never)."""

        items: list
        expires_at: int | None = None

        def apply(self, project: Project) -> None:
            project.cve_allowlist = {"items": list(self.items), "expires_at": self.expires_at}

    class Restored(Event):
        """A point-in-time restore (domain/restore.py) brings the project's members and policies
        back to how they were at log position `as_of_position`: the events that do it follow in
        the same transaction (after an `Undeleted` that clears its members and rules, when the
        project was deleted)."""

        as_of_position: int

    class QuotaWarning(Event):
        """A push took `resource` (storage or artifacts) past the warning threshold."""

        resource: str
        used: int
        limit: int

    class QuotaExceeded(Event):
        """A push into `repository` was refused: it would have taken `resource` over its limit."""

        resource: str
        used: int
        adding: int
        limit: int
        repository: str

    class ScannerChosen(Event):
        """The project's own scanner: a registration's uuid (domain/scanners.py). The read model
        keeps it (projections/scanners.py); the aggregate's decisions do not need it."""

        scanner: str

    def __init__(self, project: str, public: bool, proxy_registry: str | None = None) -> None:
        self.name = project
        self.public = public
        self.proxy_registry = proxy_registry  # proxy-cache projects only: the upstream endpoint
        self.deleted = False
        self.members: dict[str, str] = {}
        # rule number (as a string: snapshots are JSON) -> ImmutableRule.event_fields()
        self.immutable_rules: dict[str, dict] = {}
        self.quota: dict | None = None  # QuotaLimits fields; None: no quota
        self.retention: dict | None = None  # {"rules": [...], "cron": ...}; None: no policy
        self.scanning: dict | None = None  # ScanningSettings fields; None: Harbor's defaults
        self.cve_allowlist: dict | None = None  # CveAllowlist fields; None: empty

    @staticmethod
    def upcast_v1_v2(state: dict) -> None:
        state["immutable_rules"] = {}

    @staticmethod
    def upcast_v2_v3(state: dict) -> None:
        state["quota"] = None

    @staticmethod
    def upcast_v3_v4(state: dict) -> None:
        state["retention"] = None

    @staticmethod
    def upcast_v4_v5(state: dict) -> None:
        state["proxy_registry"] = None

    @staticmethod
    def upcast_v5_v6(state: dict) -> None:
        state["scanning"], state["cve_allowlist"] = None, None

    @staticmethod
    def create_id(name: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/projects/{name}")

    @classmethod
    def create(cls, name: str, public: bool, ctx: RequestContext, proxy_registry: str | None = None) -> Project:
        return cls._create(cls.Created, id=cls.create_id(name), project=name, public=public,
                           proxy_registry=proxy_registry, **ctx.event_fields())

    def recreate(self, public: bool, ctx: RequestContext, proxy_registry: str | None = None) -> None:
        if not self.deleted:
            raise ConflictError("project already exists", {"project": self.name})
        self._trigger(self.Recreated, public=public, proxy_registry=proxy_registry, ctx=ctx)

    def undelete(self, ctx: RequestContext) -> None:
        if not self.deleted:
            raise ConflictError("project is not deleted", {"project": self.name})
        members, rules = dict(self.members), dict(self.immutable_rules)
        self._trigger(self.Undeleted, public=self.public, proxy_registry=self.proxy_registry, ctx=ctx)
        for key, role in sorted(members.items()):
            kind, rest = key.split(":", 1)
            principal, repository = rest.rsplit("@", 1)
            self._trigger(self.MemberAdded, kind=kind, principal=principal, role=role,
                          repository=repository or None, ctx=ctx)
        for _, fields in sorted(rules.items(), key=lambda item: int(item[0])):
            self._trigger(self.ImmutableRuleAdded, rule=self.version + 1, **fields, ctx=ctx)
        if self.quota:
            self._trigger(self.QuotaSet, **self.quota, ctx=ctx)
        if self.retention:
            self._trigger(self.RetentionPolicySet, **self.retention, ctx=ctx)
        if self.scanning:
            self._trigger(self.ScanningSettingsChanged, **self.scanning, ctx=ctx)
        if self.cve_allowlist:
            self._trigger(self.CveAllowlistSet, **self.cve_allowlist, ctx=ctx)

    def mark_restored(self, position: int, public: bool, ctx: RequestContext) -> None:
        """A restore's marker; a deleted project comes back with the visibility `public` it had at
        `position`, empty of members and rules (the restore adds those it had)."""
        self._trigger(self.Restored, as_of_position=position, ctx=ctx)
        if self.deleted:
            self._trigger(self.Undeleted, public=public, proxy_registry=self.proxy_registry, ctx=ctx)

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

    def set_quota(self, limits: QuotaLimits, ctx: RequestContext) -> None:
        self.check_exists()
        fields = vars(limits.checked())
        if fields != self.quota:
            self._trigger(self.QuotaSet, **fields, ctx=ctx)

    def set_retention(self, rules: list[RetentionRule], cron: str | None, ctx: RequestContext) -> None:
        self.check_exists()
        policy = {"rules": [rule.fields() for rule in checked_rules(rules)], "cron": cron}
        if policy != self.retention:
            self._trigger(self.RetentionPolicySet, **policy, ctx=ctx)

    def remove_retention(self, ctx: RequestContext) -> None:
        self.check_exists()
        if self.retention is None:
            raise NotFoundError("the project has no retention policy", {"project": self.name})
        self._trigger(self.RetentionPolicyRemoved, ctx=ctx)

    def choose_scanner(self, scanner: str, ctx: RequestContext) -> None:
        self.check_exists()
        self._trigger(self.ScannerChosen, scanner=scanner, ctx=ctx)

    def retention_rules(self) -> list[RetentionRule]:
        return [RetentionRule.from_fields(f) for f in (self.retention or {"rules": []})["rules"]]

    def set_scanning_settings(self, settings: ScanningSettings, ctx: RequestContext) -> None:
        self.check_exists()
        fields = settings.checked().fields()
        if fields != self.scanning_settings().fields():
            self._trigger(self.ScanningSettingsChanged, **fields, ctx=ctx)

    def scanning_settings(self) -> ScanningSettings:
        return ScanningSettings.from_fields(self.scanning)

    def set_cve_allowlist(self, allowlist: CveAllowlist, ctx: RequestContext) -> None:
        self.check_exists()
        fields = allowlist.checked().fields()
        if fields != CveAllowlist.from_fields(self.cve_allowlist).fields():
            self._trigger(self.CveAllowlistSet, **fields, ctx=ctx)

    def record_quota_warning(self, resource: str, used: int, limit: int, ctx: RequestContext) -> None:
        self._trigger(self.QuotaWarning, resource=resource, used=used, limit=limit, ctx=ctx)

    def record_quota_exceeded(self, error_detail: dict, repository: str, ctx: RequestContext) -> None:
        self._trigger(self.QuotaExceeded, resource=error_detail["resource"], used=error_detail["used"],
                      adding=error_detail["adding"], limit=error_detail["limit"], repository=repository, ctx=ctx)

    def add_immutable_rule(self, rule: ImmutableRule, ctx: RequestContext) -> int:
        """Returns the new rule's number."""
        self.check_exists()
        self._check_selection_free(rule.checked(), None)
        number = self.version + 1  # the version the event is about to get
        self._trigger(self.ImmutableRuleAdded, rule=number, **rule.event_fields(), ctx=ctx)
        return number

    def change_immutable_rule(self, number: int, rule: ImmutableRule, ctx: RequestContext) -> None:
        if self.immutable_rule(number) != rule.checked():
            self._check_selection_free(rule, number)
            self._trigger(self.ImmutableRuleChanged, rule=number, **rule.event_fields(), ctx=ctx)

    def remove_immutable_rule(self, number: int, ctx: RequestContext) -> None:
        self.immutable_rule(number)
        self._trigger(self.ImmutableRuleRemoved, rule=number, ctx=ctx)

    def immutable_rule(self, number: int) -> ImmutableRule:
        self.check_exists()
        fields = self.immutable_rules.get(str(number))
        if fields is None:
            raise NotFoundError("immutability rule not found", {"project": self.name})
        return ImmutableRule.from_fields(fields)

    def rule_protecting(self, repository: str, tag: str) -> int | None:
        """The number of an enabled rule that makes the tag immutable, if any (by priority,
        then age)."""
        if self.deleted:
            return None
        rules = {int(number): ImmutableRule.from_fields(fields) for number, fields in self.immutable_rules.items()}
        in_order = sorted(rules, key=lambda number: (rules[number].priority, number))
        return next((number for number in in_order if rules[number].protects(repository, tag)), None)

    def _check_selection_free(self, rule: ImmutableRule, other_than: int | None) -> None:
        """Two rules selecting the same repositories and tags would be one rule twice (Harbor
        refuses a rule identical to another one too)."""
        for number, fields in self.immutable_rules.items():
            if int(number) != other_than and ImmutableRule.from_fields(fields).same_selection(rule):
                raise ConflictError("an immutability rule with these patterns exists already",
                                    {"project": self.name})

    def check_exists(self) -> None:
        if self.deleted:
            raise NotFoundError("project not found", {"project": self.name})

    def _trigger(self, event_class: type[Project.Event], ctx: RequestContext, **fields) -> None:
        self.trigger_event(event_class, project=self.name, **ctx.event_fields(), **fields)


def _rule_fields(event: Project.ImmutableRuleAdded | Project.ImmutableRuleChanged) -> dict:
    return {name: getattr(event, name) for name in RULE_FIELDS}
