"""Who may do what: the role × resource × action matrix, written once, as data.

Roles are Harbor's. A member grant applies to a whole project, or — beyond Harbor — to one
repository of it. System administrators may do everything. Robots hold an explicit list of
(project, resource, action) permissions instead of a role.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Role(str, Enum):
    PROJECT_ADMIN = "project_admin"
    MAINTAINER = "maintainer"
    DEVELOPER = "developer"
    GUEST = "guest"
    LIMITED_GUEST = "limited_guest"


# Harbor's numeric role ids, used by its API v2.0.
HARBOR_ROLE_IDS = {
    Role.PROJECT_ADMIN: 1, Role.DEVELOPER: 2, Role.GUEST: 3, Role.MAINTAINER: 4, Role.LIMITED_GUEST: 5,
}

# Resources and the actions on them, within a project.
RESOURCE_ACTIONS: dict[str, tuple[str, ...]] = {
    "project": ("read", "update", "delete"),
    "member": ("list", "create", "update", "delete"),
    "repository": ("list", "pull", "push", "delete"),
    "artifact": ("list", "read", "delete"),
    "tag": ("list", "create", "delete"),
    "robot": ("list", "read", "create", "update", "delete"),
    "log": ("list",),
    "notification-policy": ("list", "read", "create", "update", "delete"),  # webhooks (Harbor's name)
    "immutable-tag": ("list", "create", "update", "delete"),  # tag immutability rules (Harbor's name)
    "tag-retention": ("read", "update", "delete", "list", "operate"),  # retention policy and runs (Harbor's name)
    "label": ("list", "read", "create", "update", "delete"),  # the project's labels
    "artifact-label": ("create", "delete"),  # putting labels on artifacts, taking them off (Harbor's name)
    "scan": ("create", "read", "stop"),  # vulnerability scans of artifacts (Harbor's name)
    "sbom": ("create", "read", "stop"),  # SBOM generation (Harbor's name)
    "scanner": ("read", "create"),  # the project's scanner: see it, choose it (Harbor's name)
}

_LIMITED_GUEST = {
    ("project", "read"), ("repository", "list"), ("repository", "pull"),
    ("artifact", "list"), ("artifact", "read"), ("tag", "list"),
    ("scan", "read"), ("sbom", "read"), ("scanner", "read"),
}
_GUEST = _LIMITED_GUEST | {("member", "list"), ("log", "list"), ("label", "list"), ("label", "read")}
_DEVELOPER = _GUEST | {("repository", "push"), ("tag", "create"), ("artifact-label", "create"),
                       ("artifact-label", "delete")}
_MAINTAINER = _DEVELOPER | {
    ("label", "create"), ("label", "update"), ("label", "delete"),
    ("repository", "delete"), ("artifact", "delete"), ("tag", "delete"),
    ("robot", "list"), ("robot", "read"), ("notification-policy", "list"),
    ("immutable-tag", "list"), ("immutable-tag", "create"), ("immutable-tag", "update"),
    ("immutable-tag", "delete"), ("tag-retention", "read"), ("tag-retention", "update"),
    ("tag-retention", "delete"), ("tag-retention", "list"), ("tag-retention", "operate"),
    ("scan", "create"), ("scan", "stop"), ("sbom", "create"), ("sbom", "stop"),
}
_PROJECT_ADMIN = {(resource, action) for resource, actions in RESOURCE_ACTIONS.items()
                  for action in actions}

MATRIX: dict[Role, frozenset[tuple[str, str]]] = {
    Role.LIMITED_GUEST: frozenset(_LIMITED_GUEST),
    Role.GUEST: frozenset(_GUEST),
    Role.DEVELOPER: frozenset(_DEVELOPER),
    Role.MAINTAINER: frozenset(_MAINTAINER),
    Role.PROJECT_ADMIN: frozenset(_PROJECT_ADMIN),
}

# A push needs to read (clients check for the blobs first): a robot holding push pulls too, as
# Harbor's UI grants them together. Every role that pushes already pulls.
IMPLIED: dict[tuple[str, str], tuple[str, str]] = {("repository", "push"): ("repository", "pull")}


def with_implied(held: set[tuple[str, str]]) -> set[tuple[str, str]]:
    return held | {IMPLIED[pair] for pair in held if pair in IMPLIED}


# What an anonymous principal may do in a public project.
PUBLIC_PROJECT = frozenset({("project", "read"), ("repository", "list"), ("repository", "pull"),
                            ("artifact", "list"), ("artifact", "read"), ("tag", "list"),
                            ("scan", "read"), ("scanner", "read")})

# Resources that exist only for the whole system, for system administrators.
SYSTEM_RESOURCE_ACTIONS: dict[str, tuple[str, ...]] = {
    "user": ("list", "read", "create", "update", "delete"),
    "project": ("list", "create", "undelete"),
    "robot": ("list", "read", "create", "update", "delete"),
    "catalog": ("read",),
    "quota": ("update",),  # project quotas are set by system administrators (as in Harbor)
    "registry": ("list", "read", "create", "update", "delete"),  # replication endpoints (Harbor's name)
    "replication-policy": ("list", "read", "create", "update", "delete"),
    "replication": ("list", "read", "create"),  # executions: start, stop, retry
    "log": ("list",),
    "notification-policy": ("list", "read", "create", "update", "delete"),  # instance-wide webhooks
    "garbage-collection": ("list", "read", "create", "update"),  # GC runs and schedule (Harbor's name)
    "label": ("create", "update", "delete"),  # global labels (every signed-in principal sees them)
    # A proxy-cache project pulls with its endpoint's stored credentials: choosing one lends them
    # to every puller of the project, so only system administrators do (as in Harbor).
    "proxy-cache": ("create",),
    "scanner": ("list", "read", "create", "update", "delete"),  # scanner registrations (Harbor's name)
    "scan-all": ("create", "read", "update", "stop"),  # scanning everything, and its schedule (Harbor's name)
    "cve-allowlist": ("update",),  # the system's CVE allowlist (every signed-in principal reads it)
    "configuration": ("read", "update"),  # /configurations: authentication, LDAP, OIDC… (Harbor's name)
    "user-group": ("list", "read", "create", "update", "delete"),  # LDAP and OIDC groups (Harbor's name)
    "ldap": ("read",),  # ping the directory, search and import its users and groups
    "event-log": ("read",),  # the log as stored, and the bytes it needs: what a follower ships
}

# System permissions a system robot may hold, as {project: "*", resource, action}: a follower's
# credentials need to read the log and nothing else.
ROBOT_SYSTEM_ACTIONS: dict[str, tuple[str, ...]] = {"event-log": ("read",)}


def robot_may_hold(project: str, resource: str, action: str) -> bool:
    """Whether {project, resource, action} is a permission a robot can be given."""
    if project == "*" and action in ROBOT_SYSTEM_ACTIONS.get(resource, ()):
        return True
    return action in RESOURCE_ACTIONS.get(resource, ())


@dataclass(frozen=True)
class Grant:
    """A member's role in a project, or on one repository of it."""

    role: Role
    repository: str | None = None

    def covers(self, repository: str | None) -> bool:
        return self.repository is None or self.repository == repository


@dataclass(frozen=True)
class RobotPermission:
    project: str  # "*" for every project (system robots)
    resource: str
    action: str


@dataclass(frozen=True)
class Principal:
    name: str
    kind: str = "anonymous"  # anonymous | user | robot
    system_admin: bool = False
    grants: dict[str, tuple[Grant, ...]] = field(default_factory=dict)  # project -> grants
    robot_permissions: tuple[RobotPermission, ...] = ()

    @property
    def is_anonymous(self) -> bool:
        return self.kind == "anonymous"


ANONYMOUS = Principal("anonymous")


def project_permissions(principal: Principal, project: str, public: bool,
                        repository: str | None = None) -> frozenset[tuple[str, str]]:
    """Every (resource, action) the principal holds in `project` (for `repository`, if given)."""
    if principal.system_admin:
        return MATRIX[Role.PROJECT_ADMIN]
    held: set[tuple[str, str]] = set(PUBLIC_PROJECT) if public else set()
    for grant in principal.grants.get(project, ()):
        if repository is None and grant.repository is not None:
            held |= {("project", "read")}  # a repository grant lets one see the project
        elif grant.covers(repository):
            held |= MATRIX[grant.role]
    held |= with_implied({(p.resource, p.action) for p in principal.robot_permissions if p.project in (project, "*")})
    return frozenset(held)


def system_permissions(principal: Principal) -> frozenset[tuple[str, str]]:
    if principal.system_admin:
        return frozenset((r, a) for r, actions in SYSTEM_RESOURCE_ACTIONS.items() for a in actions)
    if principal.kind == "user":
        return frozenset({("project", "create")})
    return frozenset((p.resource, p.action) for p in principal.robot_permissions
                     if p.project == "*" and p.action in ROBOT_SYSTEM_ACTIONS.get(p.resource, ()))


def permissions_beyond(principal: Principal, permissions: list[dict]) -> list[dict]:
    """Those of a robot's (checked) permissions {project, resource, action} that `principal`
    does not hold itself, in a project as a whole. A project's being public counts for
    nothing: that pull ends when the project turns private, a robot's would not."""
    if principal.system_admin:
        return []
    return [p for p in permissions if not _holds(principal, p["project"], p["resource"], p["action"])]


def _holds(principal: Principal, project: str, resource: str, action: str) -> bool:
    if project == "*":
        return (resource, action) in with_implied({(p.resource, p.action) for p in principal.robot_permissions
                                                   if p.project == "*"})
    return (resource, action) in project_permissions(principal, project, public=False)


# Docker token scopes name registry actions; these are the matrix entries behind them.
REGISTRY_ACTIONS = {"pull": ("repository", "pull"), "push": ("repository", "push"),
                    "delete": ("repository", "delete")}


def repository_actions(principal: Principal, project: str, public: bool,
                       repository: str) -> set[str]:
    """The registry actions (pull, push, delete) the principal has on one repository."""
    held = project_permissions(principal, project, public, repository)
    return {action for action, needed in REGISTRY_ACTIONS.items() if needed in held}


def matrix_markdown() -> str:
    """The matrix as a Markdown table (docs/access-control.md embeds it; a test keeps them equal)."""
    roles = [Role.LIMITED_GUEST, Role.GUEST, Role.DEVELOPER, Role.MAINTAINER, Role.PROJECT_ADMIN]
    lines = ["| resource | action | " + " | ".join(r.value for r in roles) + " |",
             "|---|---|" + "---|" * len(roles)]
    for resource, actions in RESOURCE_ACTIONS.items():
        for action in actions:
            marks = " | ".join("✓" if (resource, action) in MATRIX[r] else "" for r in roles)
            lines.append(f"| {resource} | {action} | {marks} |")
    return "\n".join(lines)


def project_of(repository: str) -> str:
    """The first path component of a repository name is its project."""
    return repository.split("/", 1)[0]
