"""Access read model: projects, members, users, user groups and robots, as the authorizer and
the management API need them. Password and secret hashes (and OIDC accounts' sealed CLI secrets)
are kept here for authentication and never leave through the API.

A user's effective grants are their own memberships and those of the groups the directory or
provider named at their last login (`access_user_groups`, replaced at each `GroupsObserved`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    delete,
    func,
    insert,
    select,
    update,
)

from domain.account import User
from domain.identity import DB
from domain.permissions import Grant, Principal, RobotPermission, Role
from domain.project import Project
from domain.robot import Robot
from domain.user_groups import UserGroup
from projections.database import Name, ReadModelDatabase

metadata = MetaData()
# Numeric ids (Harbor's API speaks them) are the log position of the creating event:
# stable, unique, and identical after a rebuild.
projects = Table(
    "access_projects", metadata,
    Column("name", Name(255), primary_key=True),
    Column("id", BigInteger, nullable=False, unique=True),
    Column("public", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("proxy_registry", Name(255)),  # the upstream endpoint of a proxy-cache project
)
members = Table(
    "access_members", metadata,
    Column("project", Name(255), primary_key=True),
    Column("kind", String(20), primary_key=True),
    Column("principal", Name(255), primary_key=True),
    Column("repository", Name(255), primary_key=True),  # '' for the whole project
    Column("id", BigInteger, nullable=False, unique=True),
    Column("role", String(30), nullable=False),
    Column("since", DateTime(timezone=True), nullable=False),
)
users = Table(
    "access_users", metadata,
    Column("username", Name(255), primary_key=True),
    Column("id", BigInteger, nullable=False, unique=True),
    Column("email", Name(255), nullable=False),
    Column("system_admin", Boolean, nullable=False),
    Column("password_hash", Name(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("auth_source", String(10), nullable=False),  # db | ldap | oidc
    Column("external_id", Text, nullable=False),
    Column("realname", Name(255), nullable=False),
    Column("cli_secret", Text, nullable=False),  # sealed; '' for none
)
user_groups = Table(  # what the directory or provider said at each user's last login
    "access_user_groups", metadata,
    Column("username", Name(255), primary_key=True),
    Column("group_key", Name(1024), primary_key=True),
)
groups = Table(
    "access_groups", metadata,
    Column("group_type", Integer, primary_key=True),
    Column("key", Name(1024), primary_key=True),
    Column("id", BigInteger, nullable=False, unique=True),
    Column("name", Name(255), nullable=False),
    Column("ldap_dn", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
robots = Table(
    "access_robots", metadata,
    Column("name", Name(255), primary_key=True),
    Column("id", BigInteger, nullable=False, unique=True),
    Column("project", Name(255)),
    Column("permissions", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("disabled", Boolean, nullable=False),
    Column("secret_hash", Name(255), nullable=False),
    Column("description", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


class AccessProjection:
    name = "access"
    metadata = metadata

    def apply(self, conn: Connection, event: object, position: int) -> None:
        match event:
            case Project.Event():
                self._project_event(conn, event, position)
            case User.Event():
                self._user_event(conn, event, position)
            case Robot.Event():
                self._robot_event(conn, event, position)
            case UserGroup.Event():
                self._group_event(conn, event, position)

    def _project_event(self, conn: Connection, event: Project.Event, position: int) -> None:
        name, ts = event.project, event.timestamp
        match event:
            case Project.Created(public=public) | Project.Recreated(public=public) | Project.Undeleted(public=public):
                conn.execute(insert(projects).values(
                    name=name, id=position, public=public, created_at=ts, updated_at=ts,
                    proxy_registry=event.proxy_registry))
            case Project.VisibilityChanged(public=public):
                conn.execute(update(projects).where(projects.c.name == name).values(public=public, updated_at=ts))
            case Project.Deleted():
                conn.execute(delete(members).where(members.c.project == name))
                conn.execute(delete(projects).where(projects.c.name == name))
            case Project.MemberAdded():
                conn.execute(insert(members).values(
                    project=name, kind=event.kind, principal=event.principal, id=position,
                    repository=event.repository or "", role=event.role, since=ts))
            case Project.MemberRoleChanged():
                conn.execute(update(members).where(_member_key(event)).values(role=event.role))
            case Project.MemberRemoved():
                conn.execute(delete(members).where(_member_key(event)))

    def _user_event(self, conn: Connection, event: User.Event, position: int) -> None:
        name, ts, where = event.username, event.timestamp, users.c.username == event.username
        match event:
            case User.Created() | User.Recreated():
                conn.execute(delete(user_groups).where(user_groups.c.username == name))
                conn.execute(insert(users).values(
                    username=name, id=position, email=event.email, system_admin=event.system_admin,
                    password_hash=event.password_hash, created_at=ts, updated_at=ts,
                    auth_source=event.auth_source, external_id=event.external_id, realname=event.realname,
                    cli_secret=""))
            case User.GroupsObserved(groups=observed):
                conn.execute(delete(user_groups).where(user_groups.c.username == name))
                if observed:
                    conn.execute(insert(user_groups), [{"username": name, "group_key": key} for key in observed])
            case User.CliSecretSet(sealed_secret=sealed):
                conn.execute(update(users).where(where).values(cli_secret=sealed, updated_at=ts))
            case User.PasswordChanged(password_hash=hashed):
                conn.execute(update(users).where(where).values(password_hash=hashed, updated_at=ts))
            case User.AdminGranted() | User.AdminRevoked():
                admin = isinstance(event, User.AdminGranted)
                conn.execute(update(users).where(where).values(system_admin=admin, updated_at=ts))
            case User.Deleted():
                conn.execute(delete(users).where(where))
                conn.execute(delete(user_groups).where(user_groups.c.username == name))

    def _group_event(self, conn: Connection, event: UserGroup.Event, position: int) -> None:
        where = and_(groups.c.group_type == event.group_type, groups.c.key == event.key)
        match event:
            case UserGroup.Created() | UserGroup.Recreated():
                conn.execute(insert(groups).values(group_type=event.group_type, key=event.key, id=position,
                                                   name=event.name, ldap_dn=event.ldap_dn, created_at=event.timestamp))
            case UserGroup.Renamed(name=name):
                conn.execute(update(groups).where(where).values(name=name))
            case UserGroup.Deleted():
                conn.execute(delete(groups).where(where))

    def _robot_event(self, conn: Connection, event: Robot.Event, position: int) -> None:
        ts, where = event.timestamp, robots.c.name == event.robot
        match event:
            case Robot.Created() | Robot.Recreated():
                conn.execute(insert(robots).values(
                    name=event.robot, id=position, project=event.project,
                    permissions=orjson.dumps(event.permissions).decode(),
                    expires_at=event.expires_at, disabled=False, secret_hash=event.secret_hash,
                    description=event.description, created_at=ts, updated_at=ts))
            case Robot.SecretRefreshed(secret_hash=hashed):
                conn.execute(update(robots).where(where).values(secret_hash=hashed, updated_at=ts))
            case Robot.PermissionsChanged(permissions=permissions):
                conn.execute(update(robots).where(where).values(
                    permissions=orjson.dumps(permissions).decode(), updated_at=ts))
            case Robot.Disabled() | Robot.Enabled():
                disabled = isinstance(event, Robot.Disabled)
                conn.execute(update(robots).where(where).values(disabled=disabled, updated_at=ts))
            case Robot.Deleted():
                conn.execute(delete(robots).where(where))


def _member_key(event):
    return and_(members.c.project == event.project, members.c.kind == event.kind,
                members.c.principal == event.principal,
                members.c.repository == (event.repository or ""))


@dataclass(frozen=True)
class ProjectRow:
    name: str
    id: int
    public: bool
    created_at: datetime
    updated_at: datetime
    proxy_registry: str | None = None


@dataclass(frozen=True)
class MemberRow:
    project: str
    kind: str
    principal: str
    repository: str | None
    id: int
    role: str
    since: datetime


@dataclass(frozen=True)
class UserRow:
    username: str
    id: int
    email: str
    system_admin: bool
    password_hash: str
    created_at: datetime
    updated_at: datetime
    auth_source: str = DB
    external_id: str = ""
    realname: str = ""
    cli_secret: str = ""  # sealed


@dataclass(frozen=True)
class GroupRow:
    group_type: int
    key: str
    id: int
    name: str
    ldap_dn: str
    created_at: datetime


@dataclass(frozen=True)
class RobotRow:
    name: str
    id: int
    project: str | None
    permissions: list[dict]
    expires_at: datetime | None
    disabled: bool
    secret_hash: str
    description: str
    created_at: datetime
    updated_at: datetime


class AccessView:
    def __init__(self, db: ReadModelDatabase) -> None:
        self.db = db
        self.engine = db.reader
        # The group keys whose members are system administrators (the configured LDAP admin
        # group's DN, the OIDC admin group): set by the composition root, read at each use.
        self.admin_groups: Callable[[], frozenset[str]] = frozenset

    def project(self, name: str) -> ProjectRow | None:
        """Asked on every /v2/ request (a proxy-cache project's upstream, permissions): by fixed
        SQL (projections/database.py fetch), a tenth of the cost through SQLAlchemy Core."""
        rows = self.db.fetch(_PROJECT_SQL, (name,))
        if not rows:
            return None
        name, id_, public, created_at, updated_at, proxy_registry = rows[0]
        return ProjectRow(name, id_, bool(public), _stored_time(created_at), _stored_time(updated_at), proxy_registry)

    def proxy_projects(self, registry: str) -> list[str]:
        """The proxy-cache projects whose upstream is the endpoint `registry`."""
        with self.engine.connect() as conn:
            return list(conn.execute(select(projects.c.name).where(projects.c.proxy_registry == registry)
                                     .order_by(projects.c.name)).scalars())

    def project_by_id(self, project_id: int) -> ProjectRow | None:
        row = self._first(select(projects).where(projects.c.id == project_id))
        return None if row is None else ProjectRow(*row)

    def projects(self, offset: int, limit: int, visible_to: Principal | None = None,
                 name_contains: str | None = None) -> tuple[list[ProjectRow], int]:
        query = select(projects)
        if visible_to is not None and not visible_to.system_admin:
            query = query.where(projects.c.public | projects.c.name.in_(list(visible_to.grants)))
        if name_contains:
            query = query.where(projects.c.name.contains(name_contains, autoescape=True))
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
            rows = conn.execute(query.order_by(projects.c.name).offset(offset).limit(limit))
            return [ProjectRow(*row) for row in rows], total

    def members(self, project: str) -> list[MemberRow]:
        query = select(members).where(members.c.project == project).order_by(
            members.c.principal, members.c.repository)
        with self.engine.connect() as conn:
            return [_member_row(row) for row in conn.execute(query)]

    def memberships_of(self, username: str) -> list[MemberRow]:
        query = select(members).where(and_(members.c.kind == "user", members.c.principal == username))
        with self.engine.connect() as conn:
            return [_member_row(row) for row in conn.execute(query)]

    def user(self, username: str) -> UserRow | None:
        row = self._first(select(users).where(users.c.username == username))
        return None if row is None else UserRow(*row)

    def user_by_id(self, user_id: int) -> UserRow | None:
        row = self._first(select(users).where(users.c.id == user_id))
        return None if row is None else UserRow(*row)

    def user_by_external_id(self, auth_source: str, external_id: str) -> UserRow | None:
        """The account onboarded for a directory entry or an OIDC `<issuer>|<sub>`."""
        row = self._first(select(users).where(and_(users.c.auth_source == auth_source,
                                                   users.c.external_id == external_id)))
        return None if row is None else UserRow(*row)

    def users(self, offset: int, limit: int, name_contains: str | None = None) -> tuple[list[UserRow], int]:
        query = select(users)
        if name_contains:
            query = query.where(users.c.username.contains(name_contains, autoescape=True))
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
            rows = conn.execute(query.order_by(users.c.username).offset(offset).limit(limit))
            return [UserRow(*row) for row in rows], total

    def robot(self, name: str) -> RobotRow | None:
        row = self._first(select(robots).where(robots.c.name == name))
        return None if row is None else _robot_row(row)

    def robot_by_id(self, robot_id: int) -> RobotRow | None:
        row = self._first(select(robots).where(robots.c.id == robot_id))
        return None if row is None else _robot_row(row)

    def member_by_id(self, member_id: int) -> MemberRow | None:
        row = self._first(select(members).where(members.c.id == member_id))
        return None if row is None else _member_row(row)

    def robots(self, project: str | None = None, level_system: bool = False) -> list[RobotRow]:
        query = select(robots).order_by(robots.c.name)
        if project is not None:
            query = query.where(robots.c.project == project)
        elif level_system:
            query = query.where(robots.c.project.is_(None))
        with self.engine.connect() as conn:
            return [_robot_row(row) for row in conn.execute(query)]

    def user_groups(self, username: str) -> list[str]:
        """The group keys observed at the user's last login."""
        with self.engine.connect() as conn:
            return list(conn.execute(select(user_groups.c.group_key).where(user_groups.c.username == username)
                                     .order_by(user_groups.c.group_key)).scalars())

    def group(self, group_type: int, key: str) -> GroupRow | None:
        row = self._first(select(groups).where(and_(groups.c.group_type == group_type, groups.c.key == key)))
        return None if row is None else GroupRow(*row)

    def group_by_key(self, key: str) -> GroupRow | None:
        """The group a membership names (a member of kind "group" names its key alone)."""
        row = self._first(select(groups).where(groups.c.key == key).order_by(groups.c.group_type))
        return None if row is None else GroupRow(*row)

    def group_by_id(self, group_id: int) -> GroupRow | None:
        row = self._first(select(groups).where(groups.c.id == group_id))
        return None if row is None else GroupRow(*row)

    def groups(self, offset: int, limit: int, name_contains: str | None = None,
               group_type: int | None = None) -> tuple[list[GroupRow], int]:
        query = select(groups)
        if name_contains:
            query = query.where(groups.c.name.contains(name_contains, autoescape=True))
        if group_type is not None:
            query = query.where(groups.c.group_type == group_type)
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
            rows = conn.execute(query.order_by(groups.c.name, groups.c.id).offset(offset).limit(limit))
            return [GroupRow(*row) for row in rows], total

    def group_memberships(self, key: str) -> list[MemberRow]:
        query = select(members).where(and_(members.c.kind == "group", members.c.principal == key))
        with self.engine.connect() as conn:
            return [_member_row(row) for row in conn.execute(query)]

    def user_principal(self, user: UserRow) -> Principal:
        """The user's grants: their own memberships and their observed groups'; a member of the
        configured admin group is a system administrator."""
        observed = self.user_groups(user.username) if user.auth_source != DB else []
        query = select(members).where(
            (and_(members.c.kind == "user", members.c.principal == user.username))
            | (and_(members.c.kind == "group", members.c.principal.in_(observed))))
        grants: dict[str, list[Grant]] = {}
        with self.engine.connect() as conn:
            for member in map(_member_row, conn.execute(query)):
                grants.setdefault(member.project, []).append(Grant(Role(member.role), member.repository))
        admin = user.system_admin or (bool(observed) and bool(self.admin_groups() & set(observed)))
        return Principal(user.username, "user", admin, {project: tuple(g) for project, g in grants.items()})

    def _first(self, query):
        with self.engine.connect() as conn:
            return conn.execute(query).first()


_PROJECT_SQL = "SELECT name, id, public, created_at, updated_at, proxy_registry FROM access_projects WHERE name = ?"


def _stored_time(value) -> datetime:
    """A time as SQLAlchemy gives it back: SQLite stores text (read back naive), PostgreSQL a timestamp."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def robot_principal(robot: RobotRow) -> Principal:
    permissions = tuple(RobotPermission(p["project"], p["resource"], p["action"])
                        for p in robot.permissions)
    return Principal(robot.name, "robot", robot_permissions=permissions)


def _member_row(row) -> MemberRow:
    return MemberRow(row.project, row.kind, row.principal, row.repository or None, row.id, row.role, row.since)


def _robot_row(row) -> RobotRow:
    values = row._asdict()
    values["permissions"] = orjson.loads(values["permissions"])
    return RobotRow(**values)
