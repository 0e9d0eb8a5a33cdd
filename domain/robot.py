"""The Robot aggregate: a machine account with explicit permissions and an expiry.
Topic `domain.robot:Robot.<Event>`.

Names follow Harbor: `robot$<project>+<name>` at project level, `robot$<name>` at system level.
The secret is shown once, at creation or refresh; only its hash is recorded.
"""

from __future__ import annotations

from dataclasses import KW_ONLY
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.context import RequestContext
from domain.errors import ConflictError, InvalidInputError, NotFoundError
from domain.permissions import RobotPermission, robot_may_hold

ROBOT_PREFIX = "robot$"


def robot_full_name(name: str, project: str | None) -> str:
    return f"{ROBOT_PREFIX}{project}+{name}" if project else f"{ROBOT_PREFIX}{name}"


def robot_project(full_name: str) -> str | None:
    """`robot$team+ci` → `team`; a system robot has no project."""
    name = full_name.removeprefix(ROBOT_PREFIX)
    return name.split("+", 1)[0] if "+" in name else None


def check_permissions(permissions: list[dict], project: str | None) -> list[dict]:
    """Each entry {project, resource, action}; a project robot may only name its project."""
    checked = []
    for entry in permissions:
        if not isinstance(entry, dict):
            raise InvalidInputError("each permission must be an object", {"permission": entry})
        target, resource, action = entry.get("project"), entry.get("resource"), entry.get("action")
        if not isinstance(target, str) or not target:
            raise InvalidInputError("permission needs a project ('*' for all)", {"permission": entry})
        if not isinstance(resource, str) or not isinstance(action, str) or not robot_may_hold(target, resource,
                                                                                              action):
            raise InvalidInputError("unknown resource or action", {"permission": entry})
        if project is not None and target != project:
            raise InvalidInputError("a project robot may only hold permissions in its project",
                                    {"permission": entry, "project": project})
        checked.append({"project": target, "resource": resource, "action": action})
    return checked


class Robot(Aggregate):
    class Event(Aggregate.Event):
        robot: str
        actor: str
        request_id: str
        _: KW_ONLY
        source: str = ""  # added compatibly: events from before it decode with ""

        def apply(self, aggregate: Robot) -> None:
            pass

    class Created(Event, Aggregate.Created):
        project: str | None
        permissions: list[dict]
        expires_at: datetime | None
        secret_hash: str
        description: str

    class Recreated(Event):
        project: str | None
        permissions: list[dict]
        expires_at: datetime | None
        secret_hash: str
        description: str

        def apply(self, robot: Robot) -> None:
            robot.__init__(self.robot, self.project, self.permissions, self.expires_at,
                           self.secret_hash, self.description)

    class SecretRefreshed(Event):
        secret_hash: str

        def apply(self, robot: Robot) -> None:
            robot.secret_hash = self.secret_hash

    class PermissionsChanged(Event):
        permissions: list[dict]

        def apply(self, robot: Robot) -> None:
            robot.permissions = self.permissions

    class Disabled(Event):
        def apply(self, robot: Robot) -> None:
            robot.disabled = True

    class Enabled(Event):
        def apply(self, robot: Robot) -> None:
            robot.disabled = False

    class Deleted(Event):
        def apply(self, robot: Robot) -> None:
            robot.deleted = True

    def __init__(self, robot: str, project: str | None, permissions: list[dict],
                 expires_at: datetime | None, secret_hash: str, description: str) -> None:
        self.name = robot
        self.project = project
        self.permissions = permissions
        self.expires_at = expires_at
        self.secret_hash = secret_hash
        self.description = description
        self.disabled = False
        self.deleted = False

    @staticmethod
    def create_id(full_name: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/robots/{full_name}")

    @classmethod
    def create(cls, full_name: str, project: str | None, permissions: list[dict],
               expires_at: datetime | None, secret_hash: str, description: str, ctx: RequestContext) -> Robot:
        return cls._create(cls.Created, id=cls.create_id(full_name), robot=full_name,
                           project=project, permissions=check_permissions(permissions, project),
                           expires_at=expires_at, secret_hash=secret_hash, description=description,
                           **ctx.event_fields())

    def recreate(self, permissions: list[dict], expires_at: datetime | None, secret_hash: str,
                 description: str, ctx: RequestContext) -> None:
        if not self.deleted:
            raise ConflictError("robot already exists", {"robot": self.name})
        self._trigger(self.Recreated, project=self.project,
                      permissions=check_permissions(permissions, self.project),
                      expires_at=expires_at, secret_hash=secret_hash, description=description, ctx=ctx)

    def refresh_secret(self, secret_hash: str, ctx: RequestContext) -> None:
        self.check_exists()
        self._trigger(self.SecretRefreshed, secret_hash=secret_hash, ctx=ctx)

    def change_permissions(self, permissions: list[dict], ctx: RequestContext) -> None:
        self.check_exists()
        self._trigger(self.PermissionsChanged,
                      permissions=check_permissions(permissions, self.project), ctx=ctx)

    def set_disabled(self, disabled: bool, ctx: RequestContext) -> None:
        self.check_exists()
        if disabled != self.disabled:
            self._trigger(self.Disabled if disabled else self.Enabled, ctx=ctx)

    def delete(self, ctx: RequestContext) -> None:
        self.check_exists()
        self._trigger(self.Deleted, ctx=ctx)

    def robot_permissions(self) -> tuple[RobotPermission, ...]:
        return tuple(RobotPermission(p["project"], p["resource"], p["action"])
                     for p in self.permissions)

    def check_exists(self) -> None:
        if self.deleted:
            raise NotFoundError("robot not found", {"robot": self.name})

    def _trigger(self, event_class: type[Robot.Event], ctx: RequestContext, **fields) -> None:
        self.trigger_event(event_class, robot=self.name, **ctx.event_fields(), **fields)
