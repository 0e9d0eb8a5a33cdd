"""A project's rules for its content: quota limits (domain/quotas.py), tag immutability rules
(domain/immutability.py) and the retention policy (domain/retention.py), all Project events.
The push checks (domain/push_checks.py) and the retention runs apply them."""

from __future__ import annotations

from domain.application import Registry
from domain.context import RequestContext
from domain.immutability import ImmutableRule
from domain.quotas import QuotaLimits


class ProjectRules:
    def __init__(self, app: Registry) -> None:
        self.app = app

    def set_quota(self, project: str, limits: QuotaLimits, ctx: RequestContext) -> int | None:
        return self.app.change_project(project, lambda p: p.set_quota(limits, ctx))

    def add_immutable_rule(self, project: str, rule: ImmutableRule, ctx: RequestContext) -> tuple[int, int | None]:
        """(the rule's number in the project, position)."""
        added = []
        position = self.app.change_project(project, lambda p: added.append(p.add_immutable_rule(rule, ctx)))
        return added[-1], position

    def change_immutable_rule(self, project: str, number: int, rule: ImmutableRule,
                              ctx: RequestContext) -> int | None:
        return self.app.change_project(project, lambda p: p.change_immutable_rule(number, rule, ctx))

    def remove_immutable_rule(self, project: str, number: int, ctx: RequestContext) -> int | None:
        return self.app.change_project(project, lambda p: p.remove_immutable_rule(number, ctx))

    def set_retention(self, project: str, rules: list, cron: str | None, ctx: RequestContext) -> int | None:
        return self.app.change_project(project, lambda p: p.set_retention(rules, cron, ctx))

    def remove_retention(self, project: str, ctx: RequestContext) -> int | None:
        return self.app.change_project(project, lambda p: p.remove_retention(ctx))
