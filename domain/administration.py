"""Administration commands: projects, members, users, robots. Each records events through
the registry application and returns the log position, as the registry commands do."""

from __future__ import annotations

import logging
import re
import secrets
from datetime import datetime, timedelta, timezone

from eventsourcing.persistence import IntegrityError

from domain.account import User
from domain.application import Registry
from domain.as_of import AS_OF_PROJECT
from domain.context import SYSTEM, RequestContext, is_reserved_name
from domain.errors import AccessDeniedError, ConflictError, InvalidInputError, NotFoundError
from domain.identity import ExternalIdentity
from domain.names import NAME_RE
from domain.permissions import Role
from domain.ports import SecretHasher
from domain.project import Project
from domain.registries import RegistryEndpoint
from domain.robot import Robot, robot_full_name
from domain.user_groups import UserGroup, check_group

PROJECT_NAME_RE = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
USERNAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._@-]{0,254}")
ROBOT_NAME_RE = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
LIBRARY = "library"
MAX_ROBOT_DAYS = 100 * 365  # a robot's expiry must stay a date (year 9999 is the last)

log = logging.getLogger("portlog")


def check_project_name(name: str) -> str:
    if not (isinstance(name, str) and len(name) <= 255 and PROJECT_NAME_RE.fullmatch(name)):
        raise InvalidInputError("invalid project name: lowercase letters and digits separated by "
                                "'.', '_', '__' or '-'", {"name": name})
    if name == AS_OF_PROJECT:
        raise InvalidInputError(f"the project name {AS_OF_PROJECT!r} is reserved: it names the view of "
                                "repositories at a past moment (as-of/<moment>/<repository>)", {"name": name})
    return name


def check_username(username: str) -> str:
    if not (isinstance(username, str) and USERNAME_RE.fullmatch(username)):
        raise InvalidInputError("invalid username: letters, digits and . _ @ -", {"username": username})
    return check_not_reserved(username)


def check_not_reserved(name: str) -> str:
    if is_reserved_name(name):
        raise ConflictError(f"the name {name!r} is reserved: Portlog acts under it itself", {"name": name})
    return name


def check_password(password: str) -> str:
    if not isinstance(password, str) or not 8 <= len(password) <= 128 or not (
            re.search(r"[a-z]", password) and re.search(r"[A-Z]", password)
            and re.search(r"[0-9]", password)):
        raise InvalidInputError("password must be 8 to 128 characters with at least one "
                                "lowercase letter, one uppercase letter and one digit")
    return password


def check_local_accounts(auth_mode: str) -> None:
    """Local accounts are created only in `db_auth` mode (as Harbor): otherwise the directory or
    the OpenID Connect provider brings each account at its first login."""
    if auth_mode != "db_auth":
        origin = "the LDAP directory" if auth_mode == "ldap_auth" else "the OpenID Connect provider"
        raise AccessDeniedError(f"users cannot be created while auth_mode is {auth_mode}: accounts come from "
                                f"{origin} at their first login", {"auth_mode": auth_mode})


def check_repository_in_project(project: str, repository: str | None) -> str | None:
    if repository is None:
        return None
    if not NAME_RE.fullmatch(repository) or not repository.startswith(f"{project}/"):
        raise InvalidInputError("a repository grant names a repository of the project",
                                {"project": project, "repository": repository})
    return repository


def new_secret() -> str:
    return secrets.token_urlsafe(24)


def new_cli_secret() -> str:
    """32 random characters that also pass `check_password` (which a user-chosen one must)."""
    alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    while True:
        secret = "".join(secrets.choice(alphabet) for _ in range(32))
        try:
            return check_password(secret)
        except InvalidInputError:
            continue


class Administration:
    def __init__(self, app: Registry, hasher: SecretHasher, seal=None) -> None:
        """`seal` encrypts a secret Portlog must read back (an OIDC account's CLI secret)."""
        self.app = app
        self.hasher = hasher
        self.seal = seal

    # First start

    def bootstrap(self, admin_password: str | None) -> str | None:
        """Creates `admin` and the public `library` project once; returns a generated password."""
        ctx = SYSTEM
        generated = None
        if self.app.load(User.create_id("admin")) is None:
            if admin_password is None:
                admin_password = generated = new_secret()
            try:
                self.app.save(User.create("admin", "", self.hasher.hash(admin_password), True, ctx))
            except IntegrityError:  # another node starting at the same time created it: its password stands
                if generated is not None:
                    log.warning("the administrator 'admin' was created by another node starting at the same "
                                "time: its password is the one that node printed")
                generated = None
        if self.app.load(Project.create_id(LIBRARY)) is None:
            self.app.update(Project.create_id(LIBRARY), lambda project: None,
                            create=lambda: Project.create(LIBRARY, True, ctx))
        return generated

    # Projects and members

    def create_project(self, name: str, public: bool, ctx: RequestContext,
                       owner: str | None = None, proxy_registry: str | None = None) -> int | None:
        """`proxy_registry` (an endpoint's name) makes it a proxy-cache project of that registry."""
        check_project_name(name)
        if proxy_registry is not None:
            self._check_endpoint(proxy_registry)

        def change(project: Project) -> None:
            if not project.pending_events:
                project.recreate(public, ctx, proxy_registry)
            if owner is not None:
                project.set_member("user", owner, Role.PROJECT_ADMIN, None, ctx)

        return self.app.update(Project.create_id(name), change, create=lambda: Project.create(
            name, public, ctx, proxy_registry))

    def _check_endpoint(self, name: str) -> None:
        endpoint = self.app.load(RegistryEndpoint.create_id(name))
        if endpoint is None or endpoint.deleted:
            raise NotFoundError("registry endpoint not found", {"registry": name})

    def set_project_public(self, name: str, public: bool, ctx: RequestContext) -> int | None:
        return self._project(name, lambda p: p.set_public(public, ctx))

    def delete_project(self, name: str, ctx: RequestContext, repository_count: int,
                       robots: list[str] = ()) -> int | None:
        """Deletes an empty project and, with it, its robots."""
        if repository_count:
            raise ConflictError("the project still has repositories; delete them first",
                                {"project": name, "repositories": repository_count})
        self._project(name, lambda p: p.check_exists())
        for robot in robots:
            self.delete_robot(robot, ctx)
        return self._project(name, lambda p: p.delete(ctx))

    def undelete_project(self, name: str, ctx: RequestContext) -> int | None:
        """Brings a deleted project back with its visibility, members and immutability rules
        (its robots stay deleted: their secrets were revoked for good). Refused once the name
        was taken again."""
        return self._project(name, lambda p: p.undelete(ctx))

    def set_member(self, project: str, username: str, role: Role, repository: str | None,
                   ctx: RequestContext) -> int | None:
        self._existing_user(username)
        repository = check_repository_in_project(project, repository)
        return self._project(project, lambda p: p.set_member(
            "user", username, role, repository, ctx))

    def remove_member(self, project: str, username: str, repository: str | None,
                      ctx: RequestContext) -> int | None:
        return self._project(project, lambda p: p.remove_member(
            "user", username, repository, ctx))

    def set_group_member(self, project: str, group_type: int, key: str, role: Role,
                         ctx: RequestContext) -> int | None:
        """A user group as a member of the whole project (groups hold no repository grants)."""
        self._group(group_type, key, lambda group: group.check_exists())
        return self._project(project, lambda p: p.set_member("group", key, role, None, ctx))

    def remove_group_member(self, project: str, key: str, ctx: RequestContext) -> int | None:
        return self._project(project, lambda p: p.remove_member("group", key, None, ctx))

    # User groups

    def create_group(self, group_type: object, name: object, ldap_dn: object,
                     ctx: RequestContext) -> tuple[str, int | None]:
        """Returns the group's key and the log position; 409 if it exists."""
        group_type, name, ldap_dn = check_group(group_type, name, ldap_dn)
        created = UserGroup.create(group_type, name, ldap_dn, ctx)

        def change(group: UserGroup) -> None:
            if not group.pending_events:
                group.recreate(name, ldap_dn, ctx)

        position = self.app.update(created.id, change, create=lambda: created)
        return created.key, position

    def rename_group(self, group_type: int, key: str, name: object, ctx: RequestContext) -> int | None:
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise InvalidInputError("group_name is 1 to 255 characters")
        return self._group(group_type, key, lambda group: group.rename(name.strip(), ctx))

    def delete_group(self, group_type: int, key: str, ctx: RequestContext, projects: list[str] = ()) -> int | None:
        """Deletes a group and, first, its memberships in `projects`."""
        for project in projects:
            self.remove_group_member(project, key, ctx)
        return self._group(group_type, key, lambda group: group.delete(ctx))

    def _group(self, group_type: int, key: str, change) -> int | None:
        return self.app.update(UserGroup.create_id(group_type, key), change, missing=lambda: NotFoundError(
            "user group not found", {"group": key}))

    # Accounts of a directory or an OpenID Connect provider

    def onboard_user(self, identity: ExternalIdentity, ctx: RequestContext) -> int | None:
        """Creates the account of a person the directory or provider vouched for (no password:
        they sign in there). A deleted account of the same name comes back as theirs."""
        username = check_username(identity.username)
        fields = {"auth_source": identity.auth_source, "external_id": identity.external_id,
                  "realname": identity.realname}

        def change(user: User) -> None:
            if not user.pending_events:
                user.recreate(identity.email, "", False, ctx, **fields)

        return self.app.update(User.create_id(username), change, create=lambda: User.create(
            username, identity.email, "", False, ctx, **fields))

    def observe_groups(self, username: str, groups: list[str], ctx: RequestContext) -> int | None:
        """Records the groups seen at a login, when they changed since the last one."""
        return self._user(username, lambda u: u.observe_groups(list(groups), ctx))

    def set_cli_secret(self, username: str, secret: str | None, ctx: RequestContext) -> tuple[str, int | None]:
        """Sets an OIDC account's CLI secret (a new random one when `secret` is None); returns it."""
        secret = check_password(secret) if secret is not None else new_cli_secret()
        sealed = self.seal(secret)
        return secret, self._user(username, lambda u: u.set_cli_secret(sealed, ctx))

    # Users

    def create_user(self, username: str, password: str, email: str, system_admin: bool,
                    ctx: RequestContext) -> int | None:
        """A local account (`auth_source` db)."""
        check_username(username)
        hashed = self.hasher.hash(check_password(password))

        def change(user: User) -> None:
            if not user.pending_events:
                user.recreate(email, hashed, system_admin, ctx)

        return self.app.update(User.create_id(username), change, create=lambda: User.create(
            username, email, hashed, system_admin, ctx))

    def change_password(self, username: str, password: str, ctx: RequestContext) -> int | None:
        """A local account's password (a directory or OIDC account has none here to change)."""
        hashed = self.hasher.hash(check_password(password))

        def change(user: User) -> None:
            if user.auth_source != "db" and not user.deleted:
                origin = "the LDAP directory" if user.auth_source == "ldap" else "the OpenID Connect provider"
                raise AccessDeniedError(f"{username} signs in through {origin}: Portlog keeps no password "
                                        "for them", {"username": username, "auth_source": user.auth_source})
            user.change_password(hashed, ctx)

        return self._user(username, change)

    def set_admin(self, username: str, system_admin: bool, ctx: RequestContext) -> int | None:
        return self._user(username, lambda u: u.set_admin(system_admin, ctx))

    def delete_user(self, username: str, ctx: RequestContext) -> int | None:
        if username == "admin":
            raise ConflictError("the bootstrap administrator cannot be deleted")
        return self._user(username, lambda u: u.delete(ctx))

    def record_failed_logins(self, username: str, count: int, source: str,
                             first_attempt_at: datetime | None = None, last_attempt_at: datetime | None = None):
        if self.app.load(User.create_id(username)) is None:
            return None
        ctx = RequestContext(username, "login", source)
        return self._user(username, lambda u: u.record_failed_logins(count, ctx, first_attempt_at, last_attempt_at))

    # Robots

    def create_robot(self, name: str, project: str | None, permissions: list[dict],
                     duration_days: int | None, description: str,
                     ctx: RequestContext) -> tuple[str, str, int | None]:
        """Returns (full name, secret, position): the secret is never retrievable again."""
        if not (isinstance(name, str) and ROBOT_NAME_RE.fullmatch(name) and len(name) <= 100):
            raise InvalidInputError("invalid robot name", {"name": name})
        check_not_reserved(name)
        if project is not None:
            self._project(project, lambda p: p.check_exists())
        full_name, secret = robot_full_name(name, project), new_secret()
        hashed, expires_at = self.hasher.hash(secret), robot_expiry(duration_days)

        def change(robot: Robot) -> None:
            if not robot.pending_events:
                robot.recreate(permissions, expires_at, hashed, description, ctx)

        position = self.app.update(Robot.create_id(full_name), change, create=lambda: Robot.create(
            full_name, project, permissions, expires_at, hashed, description, ctx))
        return full_name, secret, position

    def refresh_robot_secret(self, full_name: str, ctx: RequestContext) -> tuple[str, int | None]:
        secret = new_secret()
        hashed = self.hasher.hash(secret)
        return secret, self._robot(full_name, lambda r: r.refresh_secret(hashed, ctx))

    def set_robot_disabled(self, full_name: str, disabled: bool, ctx: RequestContext) -> int | None:
        return self._robot(full_name, lambda r: r.set_disabled(disabled, ctx))

    def change_robot_permissions(self, full_name: str, permissions: list[dict],
                                 ctx: RequestContext) -> int | None:
        return self._robot(full_name, lambda r: r.change_permissions(
            permissions, ctx))

    def delete_robot(self, full_name: str, ctx: RequestContext) -> int | None:
        return self._robot(full_name, lambda r: r.delete(ctx))

    def _project(self, name: str, change) -> int | None:
        return self.app.update(Project.create_id(name), change, missing=lambda: NotFoundError(
            "project not found", {"project": name}))

    def _user(self, username: str, change) -> int | None:
        return self.app.update(User.create_id(username), change, missing=lambda: NotFoundError(
            "user not found", {"username": username}))

    def _existing_user(self, username: str) -> None:
        self._user(username, lambda user: user.check_exists())

    def _robot(self, full_name: str, change) -> int | None:
        return self.app.update(Robot.create_id(full_name), change, missing=lambda: NotFoundError(
            "robot not found", {"robot": full_name}))


def robot_expiry(duration_days: int | None) -> datetime | None:
    """When a robot created now for `duration_days` expires (None, -1: never)."""
    if duration_days is None or duration_days == -1:
        return None
    if isinstance(duration_days, bool) or not isinstance(duration_days, int) or \
            not 1 <= duration_days <= MAX_ROBOT_DAYS:
        raise InvalidInputError(f"duration is a number of days from 1 to {MAX_ROBOT_DAYS}, or -1 for never")
    return datetime.now(timezone.utc) + timedelta(days=duration_days)
