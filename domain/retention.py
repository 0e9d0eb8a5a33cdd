"""Tag retention policies: which artifacts a project keeps, and the plan of what a run deletes.

A policy is a list of rules (Harbor's model). Each rule selects repositories (doublestar on the
name without the project) and, in them, artifacts by their tags (doublestar; untagged
artifacts only when the rule says so), and retains some of what it selects: the K most
recently pushed, the N most recently pulled, those pushed or pulled within D days, or all.
Rules combine with OR. In every repository some rule selects, an artifact no rule retains is
deleted — except what must stay with a retained artifact: the manifests an index lists.
Artifacts with a subject (signatures, SBOMs) are not judged on their own: they go when their
subject goes.

`plan` is a pure function of the rules, the artifacts as they were at some moment, and that
moment: a dry run and the real run that follows it compute the same plan, and a dry run can
be evaluated as of a past time from the log (domain/retention_runs.py builds the artifacts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.errors import InvalidInputError
from domain.immutability import Selector, check_pattern

# template -> the meaning of its parameter (None: it takes none)
TEMPLATES = {"latestPushedK": "count", "latestPulledN": "count", "nDaysSinceLastPush": "days",
             "nDaysSinceLastPull": "days", "always": None}
MAX_RULES = 15  # as Harbor


@dataclass(frozen=True)
class RetentionRule:
    template: str
    param: int | None = None
    repositories: Selector = Selector("**")
    tags: Selector = Selector("**")
    untagged: bool = False  # untagged artifacts are selected too
    disabled: bool = False

    def checked(self) -> RetentionRule:
        if self.template not in TEMPLATES:
            raise InvalidInputError(f"unknown retention template {self.template!r}; one of {', '.join(TEMPLATES)}",
                                    {"template": self.template})
        wanted = TEMPLATES[self.template]
        if wanted and (not isinstance(self.param, int) or isinstance(self.param, bool) or self.param < 0):
            unit = "days" if wanted == "days" else "artifacts"
            raise InvalidInputError(f"{self.template} needs a whole number of {unit}, 0 or more",
                                    {"param": self.param})
        check_pattern(self.repositories.pattern, "repository")
        check_pattern(self.tags.pattern, "tag")
        for name, value in (("untagged", self.untagged), ("disabled", self.disabled),
                            ("exclude_repositories", self.repositories.excluding),
                            ("exclude_tags", self.tags.excluding)):
            if not isinstance(value, bool):
                raise InvalidInputError(f"{name} must be true or false", {name: value})
        return self

    def selects_repository(self, repository: str) -> bool:
        return not self.disabled and self.repositories.selects(repository.split("/", 1)[-1])

    def selects(self, artifact: Artifact) -> bool:
        if not artifact.tags:
            return self.untagged
        return any(self.tags.selects(tag) for tag in artifact.tags)

    def retains(self, selected: list[Artifact], now: datetime) -> set[str]:
        if self.template == "always":
            return {a.digest for a in selected}
        if self.template == "latestPushedK":
            return _newest(selected, lambda a: a.pushed_at, self.param)
        if self.template == "latestPulledN":
            return _newest([a for a in selected if a.pulled_at is not None], lambda a: a.pulled_at, self.param)
        since = now - timedelta(days=self.param)
        if self.template == "nDaysSinceLastPush":
            return {a.digest for a in selected if a.pushed_at >= since}
        return {a.digest for a in selected if a.pulled_at is not None and a.pulled_at >= since}

    def fields(self) -> dict:
        """The rule as events and APIs carry it."""
        return {"template": self.template, "param": self.param, "repositories": self.repositories.pattern,
                "exclude_repositories": self.repositories.excluding, "tags": self.tags.pattern,
                "exclude_tags": self.tags.excluding, "untagged": self.untagged, "disabled": self.disabled}

    @classmethod
    def from_fields(cls, fields: dict) -> RetentionRule:
        return cls(fields["template"], fields.get("param"),
                   Selector(fields.get("repositories", "**"), fields.get("exclude_repositories", False)),
                   Selector(fields.get("tags", "**"), fields.get("exclude_tags", False)),
                   fields.get("untagged", False), fields.get("disabled", False))


def checked_rules(rules: list[RetentionRule]) -> list[RetentionRule]:
    if len(rules) > MAX_RULES:
        raise InvalidInputError(f"a retention policy has at most {MAX_RULES} rules", {"rules": len(rules)})
    return [rule.checked() for rule in rules]


@dataclass(frozen=True)
class Artifact:
    digest: str
    pushed_at: datetime
    tags: tuple[str, ...] = ()
    pulled_at: datetime | None = None
    subject: str | None = None
    children: tuple[str, ...] = ()  # the manifests an index lists


@dataclass(frozen=True)
class Deletion:
    repository: str
    digest: str
    tags: tuple[str, ...]

    def fields(self) -> dict:
        return {"repository": self.repository, "digest": self.digest, "tags": list(self.tags)}


@dataclass
class Plan:
    retained: int = 0
    deletions: list[Deletion] = field(default_factory=list)


def plan(rules: list[RetentionRule], repositories: dict[str, list[Artifact]], now: datetime) -> Plan:
    """What a run at `now` keeps and deletes, repository by repository (in name order)."""
    result = Plan()
    for name in sorted(repositories):
        applying = [rule for rule in rules if rule.selects_repository(name)]
        if not applying:
            continue
        artifacts = repositories[name]
        judged = [a for a in artifacts if a.subject is None]
        kept = set().union(*(rule.retains([a for a in judged if rule.selects(a)], now) for rule in applying))
        present = {a.digest for a in artifacts}
        # A referrer of something not in this repository is not ours to judge.
        kept |= {a.digest for a in artifacts if a.subject is not None and a.subject not in present}
        kept = _with_dependents(kept, artifacts)
        result.retained += len(kept)
        result.deletions += [Deletion(name, a.digest, a.tags) for a in sorted(artifacts, key=lambda a: a.digest)
                             if a.digest not in kept]
    return result


def _newest(artifacts: list[Artifact], moment, count: int) -> set[str]:
    ordered = sorted(artifacts, key=lambda a: (moment(a), a.digest), reverse=True)
    return {a.digest for a in ordered[:count]}


def _with_dependents(kept: set[str], artifacts: list[Artifact]) -> set[str]:
    """`kept` with everything that must stay with it, to any depth: the manifests a kept index
    lists, and the referrers of a kept artifact (a signature of an SBOM of a kept image)."""
    children = {a.digest: a.children for a in artifacts}
    referrers: dict[str, list[str]] = {}
    for artifact in artifacts:
        if artifact.subject is not None:
            referrers.setdefault(artifact.subject, []).append(artifact.digest)
    closed, pending = set(kept), list(kept)
    while pending:
        digest = pending.pop()
        for dependent in (*children.get(digest, ()), *referrers.get(digest, ())):
            if dependent not in closed:
                closed.add(dependent)
                pending.append(dependent)
    return closed
