"""The checks a push must pass, listed in one place (`PushChecks.in_order`).

A push is a write that adds to a repository: a blob upload, a mount, the proxy cache adopting a
blob, a manifest push, pointing a tag. Each check is a named object with the same four steps,
each a no-op unless the check needs it; a push path runs every step over the whole list, in
list order, and a check refuses by raising a RegistryError:

* `admit(push)`: before anything of the push is read (whether this writer may push here at all);
* `check(push)`: before anything is stored, against the repository as it stands, so that a
  refused push leaves nothing behind;
* `recheck(push, repo)`: inside the change that records the push (the log may have moved);
* `recorded(push)`: once the push is recorded.

A new policy (vulnerabilities, signatures) is one more class and one more entry in the list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Callable

from domain.blob import GcFence
from domain.context import RequestContext
from domain.errors import AccessDeniedError, TagImmutableError
from domain.manifests import ParsedManifest
from domain.permissions import project_of
from domain.project import Project
from domain.quotas import NoQuotas, QuotaAccounting, QuotaCheck, QuotaReadModel
from domain.repository import Repository, check_references

if TYPE_CHECKING:
    from domain.application import Registry


@dataclass
class Push:
    """What a push adds, as the checks see it."""

    repository: str
    ctx: RequestContext | None  # None only where an upload starts (admitted, nothing recorded)
    caching: bool = False  # the proxy cache storing what it fetched (the only writer of its projects)
    sizes: dict[str, int] = field(default_factory=dict)  # digests it stores or links -> size
    artifacts: int | Callable[[], int] = 0  # manifests it adds (or a function counting them)
    points: dict[str, str] = field(default_factory=dict)  # tag -> the digest it points the tag at
    manifest: ParsedManifest | None = None
    retain: str | None = None  # why it uses the bytes of `sizes` again (Blob.Retained's reason)
    peek: Callable[[], Repository | None] = lambda: None  # the repository as it stands (read only)
    quota: QuotaCheck | None = None  # what the quota check learnt, for its warning once recorded


class PushCheck:
    """One check; a step it does not override lets every push pass."""

    name = ""

    def admit(self, push: Push) -> None:
        pass

    def check(self, push: Push) -> None:
        pass

    def recheck(self, push: Push, repo: Repository) -> None:
        pass

    def recorded(self, push: Push) -> None:
        pass


class ProxyProject(PushCheck):
    """Proxy-cache projects take only the cache's own writes."""

    name = "proxy project"

    def __init__(self, proxy_registry_of: Callable[[str], str | None]) -> None:
        self.proxy_registry_of = proxy_registry_of

    def admit(self, push: Push) -> None:
        if push.caching:
            return
        project = project_of(push.repository)
        upstream = self.proxy_registry_of(project)
        if upstream is not None:
            raise AccessDeniedError(f"{project} is a proxy-cache project of the registry {upstream}: "
                                    "it takes no pushes", {"project": project, "registry": upstream})


class ImmutableTags(PushCheck):
    """No write moves or deletes a tag an enabled immutability rule of its project protects
    (domain/immutability.py), as the log has the rules at each command."""

    name = "immutable tags"

    def __init__(self, app: Registry, rule_id: Callable[[str, int], int | None]) -> None:
        self.app = app
        self.rule_id = rule_id  # the rule's public id, to name it in a refusal (the read model knows it)

    def check(self, push: Push) -> None:
        repo = push.peek() if push.points else None
        if repo is not None:
            self.recheck(push, repo)

    def recheck(self, push: Push, repo: Repository) -> None:
        self.refuse(repo, [tag for tag, digest in push.points.items() if moved(repo, tag, digest)])

    def refuse(self, repo: Repository, tags: list[str]) -> None:
        """Raises TagImmutableError when a rule protects one of `tags`; the project is loaded
        only when there is a tag to check."""
        project = self.app.load(Project.create_id(project_of(repo.name))) if tags else None
        if project is None:
            return
        for tag in tags:
            number = project.rule_protecting(repo.name, tag)
            if number is not None:
                rule_id = self.rule_id(project.name, number)
                rule = f"immutability rule {rule_id}" if rule_id is not None else \
                    f"an immutability rule of {project.name}"
                raise TagImmutableError(f"tag {tag} of {repo.name} is immutable ({rule})",
                                        {"repository": repo.name, "tag": tag, "rule": rule_id})


class CompleteReferences(PushCheck):
    """A manifest's blobs, and an index's children, are in the repository (an index the proxy
    cache stores may lack children no one pulled)."""

    name = "complete references"

    def check(self, push: Push) -> None:
        if push.manifest is not None:
            repo = push.peek()
            check_references(push.manifest, repo.blobs if repo else {}, repo.manifests if repo else {},
                             children_required=not push.caching)

    def recheck(self, push: Push, repo: Repository) -> None:
        if push.manifest is not None:
            check_references(push.manifest, repo.blobs, repo.manifests, children_required=not push.caching)


class Quota(PushCheck):
    """The project stays within its quota (domain/quotas.py); crossing the warning threshold
    records a warning once the push is recorded."""

    name = "quota"

    def __init__(self, accounting: QuotaAccounting) -> None:
        self.accounting = accounting

    def check(self, push: Push) -> None:
        if push.sizes:
            push.quota = self.accounting.check(push.repository, push.sizes, push.artifacts, push.ctx)

    def recorded(self, push: Push) -> None:
        self.accounting.warn(push.quota, push.ctx)


class GcFenceCheck(PushCheck):
    """Garbage collection's fence: bytes a collector could be condemning are retained first."""

    name = "gc fence"

    def __init__(self, fence: GcFence) -> None:
        self.fence = fence

    def check(self, push: Push) -> None:
        if push.retain is not None:
            for digest in push.sizes:
                self.fence.retain(digest, push.retain, push.ctx)


class PushChecks:
    """The list of checks, and the steps a push path runs over it."""

    def __init__(self, app: Registry, *, proxy_registry_of: Callable[[str], str | None] = lambda project: None,
                 rule_id: Callable[[str, int], int | None] = lambda project, number: None,
                 quotas: QuotaReadModel | None = None, collectable: Callable[[str], bool] = lambda digest: False):
        """The read models' lookups come from the composition root (config/bootstrap.py); without
        them, no project is a proxy cache or has a quota, and nothing is collectable."""
        self.app = app
        self.proxy_project = ProxyProject(proxy_registry_of)
        self.immutable_tags = ImmutableTags(app, rule_id)
        self.quotas = QuotaAccounting(app, quotas or NoQuotas())
        self.gc_fence = GcFence(app, collectable)
        # The checks a push must pass, in this order.
        self.in_order: tuple[PushCheck, ...] = (
            self.proxy_project,
            self.immutable_tags,
            CompleteReferences(),
            Quota(self.quotas),
            GcFenceCheck(self.gc_fence),
        )

    def admit(self, push: Push) -> None:
        for check in self.in_order:
            check.admit(push)

    def check(self, push: Push) -> None:
        push.peek = cache(lambda: self.app.peek_repository(push.repository))
        for check in self.in_order:
            check.check(push)

    def recheck(self, push: Push, repo: Repository) -> None:
        for check in self.in_order:
            check.recheck(push, repo)

    def recorded(self, push: Push) -> None:
        for check in self.in_order:
            check.recorded(push)

    def record(self, push: Push, change: Callable[[Repository], None], existing: bool = False) -> int | None:
        """Records a push that passed `check`: `change` on its repository (created unless
        `existing`) once the checks pass again there, then the `recorded` step."""

        def checked_change(repo: Repository) -> None:
            self.recheck(push, repo)
            change(repo)

        if existing:
            position = self.app.change_existing_repository(push.repository, checked_change)
        else:
            position = self.app.change_repository(push.repository, push.ctx, checked_change)
        self.recorded(push)
        return position


def moved(repo: Repository, tag: str, digest: str) -> bool:
    """Whether pointing `tag` at `digest` moves it from another manifest; pointing a new tag,
    or a tag at the manifest it already has, moves nothing."""
    current = repo.tags.get(tag)
    return current is not None and current != digest
