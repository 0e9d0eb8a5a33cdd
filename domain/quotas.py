"""Project quotas: storage bytes (a digest held by several repositories of the project counts
once) and artifact count (manifests, per repository). Limits are Project events; usage is a read
model (projections/quotas.py). A push that would go over a limit is refused before anything is
stored; crossing the warning threshold records an event.

Usage is read from the read model, so two pushes racing into one project can together go over
a limit by at most what each adds (Harbor's quota has the same window): the limit is checked
exactly, not reserved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol

from domain.context import RequestContext
from domain.errors import InvalidInputError, QuotaExceededError
from domain.permissions import project_of

if TYPE_CHECKING:
    from domain.application import Registry

DEFAULT_WARNING_PERCENT = 85


@dataclass(frozen=True)
class QuotaLimits:
    storage_bytes: int | None = None  # None: unlimited
    artifacts: int | None = None
    warning_percent: int = DEFAULT_WARNING_PERCENT

    def checked(self) -> QuotaLimits:
        for name, value in (("storage_bytes", self.storage_bytes), ("artifacts", self.artifacts)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise InvalidInputError(f"quota {name} must be a whole number, 0 or more (or null: unlimited)",
                                        {name: value})
        if not isinstance(self.warning_percent, int) or not 1 <= self.warning_percent <= 100:
            raise InvalidInputError("quota warning_percent must be between 1 and 100",
                                    {"warning_percent": self.warning_percent})
        return self

    @property
    def unlimited(self) -> bool:
        return self.storage_bytes is None and self.artifacts is None


@dataclass(frozen=True)
class QuotaUsage:
    project: str
    limits: QuotaLimits
    storage_bytes: int
    artifacts: int

    def check(self, adding_bytes: int, adding_artifacts: int) -> None:
        """Raises QuotaExceededError naming the quota when the addition would go over it."""
        for resource, used, adding, limit in self._resources(adding_bytes, adding_artifacts):
            if adding and limit is not None and used + adding > limit:
                raise QuotaExceededError(
                    f"quota exceeded: adding {adding} {_unit(resource)} to project {self.project} "
                    f"would bring its {resource} to {used + adding}, over the limit of {limit}",
                    {"project": self.project, "resource": resource, "used": used, "adding": adding,
                     "limit": limit})

    def warnings(self, adding_bytes: int, adding_artifacts: int) -> list[tuple[str, int, int]]:
        """(resource, usage after, limit) for each warning threshold the addition crosses."""
        crossed = []
        for resource, used, adding, limit in self._resources(adding_bytes, adding_artifacts):
            if limit and adding:
                threshold = limit * self.limits.warning_percent / 100
                if used < threshold <= used + adding:
                    crossed.append((resource, used + adding, limit))
        return crossed

    def _resources(self, adding_bytes: int, adding_artifacts: int):
        return (("storage", self.storage_bytes, adding_bytes, self.limits.storage_bytes),
                ("artifacts", self.artifacts, adding_artifacts, self.limits.artifacts))


def _unit(resource: str) -> str:
    return "bytes" if resource == "storage" else "artifacts"


class QuotaReadModel(Protocol):
    def limited_usage(self, project: str) -> QuotaUsage | None: ...

    def held(self, project: str, candidates: list[str]) -> set[str]: ...


class NoQuotas:
    def limited_usage(self, project: str) -> QuotaUsage | None:
        return None

    def held(self, project: str, candidates: list[str]) -> set[str]:
        return set()


@dataclass(frozen=True)
class QuotaCheck:
    """A push that passed its project's quota: what it adds, for the warning afterwards."""

    usage: QuotaUsage
    adding_bytes: int
    adding_artifacts: int


class QuotaAccounting:
    """Checks a push against its project's quota before anything is stored, and records the
    refusal or the warning (Project events)."""

    def __init__(self, app: Registry, quotas: QuotaReadModel) -> None:
        self.app = app
        self.quotas = quotas

    def check(self, name: str, sizes: dict[str, int], artifacts: int | Callable[[], int],
              ctx: RequestContext, record: bool = True) -> QuotaCheck | None:
        """Raises QuotaExceededError (and records the refusal, unless not `record`: a dry run)
        when adding `sizes` and `artifacts` (a count, or a function giving it) would take the
        project over a quota."""
        project = project_of(name)
        usage = self.quotas.limited_usage(project)
        if usage is None:
            return None
        artifacts = artifacts() if callable(artifacts) else artifacts
        held = self.quotas.held(project, list(sizes))
        adding = sum(size for digest, size in sizes.items() if digest not in held)
        try:
            usage.check(adding, artifacts)
        except QuotaExceededError as refused:
            detail = refused.detail
            if record:
                self.app.change_project(project, lambda p: p.record_quota_exceeded(detail, name, ctx))
            raise
        return QuotaCheck(usage, adding, artifacts)

    def warn(self, check: QuotaCheck | None, ctx: RequestContext) -> None:
        for resource, used, limit in check.usage.warnings(check.adding_bytes, check.adding_artifacts) if check else ():
            self.app.change_project(check.usage.project, lambda p, r=resource, u=used, lim=limit: (
                p.record_quota_warning(r, u, lim, ctx)))
