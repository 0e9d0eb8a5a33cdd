"""History read model: state kept as intervals [from_position, to_position), like Quay's tag
lifetimes but unlimited and attributed. "What did prod/api:stable point to at T", "who could
push to prod at T" are single indexed queries; `to_position` is NULL while an interval is open.

A tag's interval also says how it began (`started_how`: pointed there, or undeleted — pointed
again at the digest it had when it was deleted) and how it ended (`ended_how`: moved to another
digest, deleted, or deleted with its repository).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)

from domain.account import User
from domain.project import Project
from domain.repository import Repository
from domain.robot import Robot
from projections.database import Name, ReadModelDatabase


def _interval_columns() -> list[Column]:
    return [
        Column("from_position", BigInteger, primary_key=True, autoincrement=False),
        Column("from_time", DateTime(timezone=True), nullable=False),
        Column("started_by", Name(255), nullable=False),
        Column("to_position", BigInteger),
        Column("to_time", DateTime(timezone=True)),
        Column("ended_by", Name(255)),
    ]


metadata = MetaData()
tag_intervals = Table(
    "history_tags", metadata,
    Column("repository", Name(255), primary_key=True),
    Column("tag", Name(128), primary_key=True),
    Column("digest", Name(200), nullable=False),
    Column("started_how", String(20), nullable=False),  # pointed | undeleted
    Column("ended_how", String(20)),  # moved | deleted | repository_deleted
    *_interval_columns(),
)
repository_intervals = Table(
    "history_repositories", metadata,
    Column("name", Name(255), primary_key=True),
    *_interval_columns(),
)
member_intervals = Table(
    "history_members", metadata,
    Column("project", Name(255), primary_key=True),
    Column("kind", String(20), primary_key=True),
    Column("principal", Name(255), primary_key=True),
    Column("repository", Name(255), primary_key=True),  # '' for the whole project
    Column("role", String(30), nullable=False),
    *_interval_columns(),
)
project_intervals = Table(
    "history_projects", metadata,
    Column("name", Name(255), primary_key=True),
    Column("public", Boolean, nullable=False),
    *_interval_columns(),
)
admin_intervals = Table(
    "history_admins", metadata,
    Column("username", Name(255), primary_key=True),
    *_interval_columns(),
)
group_observations = Table(  # a user seen in a group at their logins (User.GroupsObserved)
    "history_user_groups", metadata,
    Column("username", Name(255), primary_key=True),
    Column("group_key", Name(1024), primary_key=True),
    *_interval_columns(),
)
robot_intervals = Table(
    "history_robots", metadata,
    Column("name", Name(255), primary_key=True),
    Column("project", Name(255)),
    Column("permissions", Text, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    *_interval_columns(),
)


class HistoryProjection:
    name = "history"
    metadata = metadata

    def apply(self, conn: Connection, event: object, position: int) -> None:
        at = _At(conn, position, event)
        match event:
            case Repository.Created(repository=name) | Repository.Undeleted(repository=name) | \
                    Repository.Recreated(repository=name):
                at.open(repository_intervals, name=name)
            case Repository.Deleted(repository=name, tags=tags):
                at.close(repository_intervals, name=name)
                _deleted_with_repository(conn, name, list(tags))
            case Repository.TagPointed(repository=repo, tag=tag, digest=digest):
                how = _how_tag_started(conn, event)
                at.close(tag_intervals, repository=repo, tag=tag, ended_how="moved")
                at.open(tag_intervals, repository=repo, tag=tag, digest=digest, started_how=how)
            case Repository.TagDeleted(repository=repo, tag=tag):
                at.close(tag_intervals, repository=repo, tag=tag, ended_how="deleted")
            case Project.Created(project=name, public=public) | Project.Recreated(project=name, public=public) | \
                    Project.Undeleted(project=name, public=public):
                at.open(project_intervals, name=name, public=public)
            case Project.VisibilityChanged(project=name, public=public):
                at.close(project_intervals, name=name)
                at.open(project_intervals, name=name, public=public)
            case Project.Deleted(project=name):
                at.close(project_intervals, name=name)
                at.close(member_intervals, project=name)
            case Project.MemberAdded() | Project.MemberRoleChanged():
                key = dict(project=event.project, kind=event.kind, principal=event.principal,
                           repository=event.repository or "")
                at.close(member_intervals, **key)
                at.open(member_intervals, role=event.role, **key)
            case Project.MemberRemoved():
                at.close(member_intervals, project=event.project, kind=event.kind,
                         principal=event.principal, repository=event.repository or "")
            case User.Created() | User.Recreated() | User.AdminGranted():
                if getattr(event, "system_admin", True):
                    at.open(admin_intervals, username=event.username)
            case User.AdminRevoked() | User.Deleted():
                at.close(admin_intervals, username=event.username)
                if isinstance(event, User.Deleted):
                    at.close(group_observations, username=event.username)
            case User.GroupsObserved(username=username, groups=observed):
                at.close(group_observations, username=username)
                for key in observed:
                    at.open(group_observations, username=username, group_key=key)
            case Robot.Deleted():
                at.close(robot_intervals, name=event.robot)
            case Robot.Event():
                self._robot_changed(conn, at, event)

    def _robot_changed(self, conn: Connection, at: _At, event: Robot.Event) -> None:
        current = conn.execute(select(robot_intervals).where(and_(
            robot_intervals.c.name == event.robot, robot_intervals.c.to_position.is_(None)))).first()
        state = dict(project=current.project, permissions=current.permissions, disabled=current.disabled,
                     expires_at=current.expires_at) if current else {}
        match event:
            case Robot.Created() | Robot.Recreated():
                state = dict(project=event.project, permissions=orjson.dumps(event.permissions).decode(),
                             disabled=False, expires_at=event.expires_at)
            case Robot.PermissionsChanged(permissions=permissions):
                state["permissions"] = orjson.dumps(permissions).decode()
            case Robot.Disabled() | Robot.Enabled():
                state["disabled"] = isinstance(event, Robot.Disabled)
            case _:
                return  # a secret refresh changes no permission
        at.close(robot_intervals, name=event.robot)
        at.open(robot_intervals, name=event.robot, **state)


@dataclass
class _At:
    conn: Connection
    position: int
    event: object

    def open(self, table: Table, **values) -> None:
        self.conn.execute(_opening(table), dict(
            from_position=self.position, from_time=self.event.timestamp, started_by=self.event.actor, **values))

    def close(self, table: Table, ended_how: str | None = None, **key) -> None:
        """Closes the open interval with this key (recording how it ended, on tags)."""
        how = {"k_how": ended_how} if ended_how else {}
        self.conn.execute(_closing(table, tuple(key), bool(how)), {
            **{f"k_{k}": v for k, v in key.items()}, **how,
            "k_position": self.position, "k_time": self.event.timestamp, "k_actor": self.event.actor})


@functools.cache
def _opening(table: Table):
    """The statement that opens an interval of `table` (built once: one built per event would
    cost more than its execution)."""
    return table.insert()


@functools.cache
def _closing(table: Table, key: tuple[str, ...], with_how: bool):
    """The statement that closes the open interval of `table` with this key (built once)."""
    how = {"ended_how": bindparam("k_how")} if with_how else {}
    return update(table).where(and_(
        table.c.to_position.is_(None), *(table.c[k] == bindparam(f"k_{k}") for k in key))).values(
        to_position=bindparam("k_position"), to_time=bindparam("k_time"), ended_by=bindparam("k_actor"), **how)


def _latest_tag_interval(repository, tag):
    """The start of the newest interval of a tag (a subquery of its own, never correlated with
    the statement around it, which reads the same table)."""
    return select(func.max(tag_intervals.c.from_position)).where(and_(
        tag_intervals.c.repository == repository, tag_intervals.c.tag == tag)).correlate(None).scalar_subquery()


def _how_tag_started(conn: Connection, event: Repository.TagPointed) -> str:
    """"undeleted" when a deleted tag is pointed again at the digest it had (a tag or repository
    undelete); "pointed" otherwise."""
    if event.previous_digest is not None:
        return "pointed"
    last = conn.execute(_LAST_TAG_INTERVAL, {"k_repository": event.repository, "k_tag": event.tag}).first()
    deleted = last is not None and last.ended_how in ("deleted", "repository_deleted")
    return "undeleted" if deleted and last.digest == event.digest else "pointed"


_LAST_TAG_INTERVAL = select(tag_intervals.c.digest, tag_intervals.c.ended_how).where(and_(
    tag_intervals.c.repository == bindparam("k_repository"), tag_intervals.c.tag == bindparam("k_tag"),
    tag_intervals.c.from_position == _latest_tag_interval(bindparam("k_repository"), bindparam("k_tag"))))
_ENDED_WITH_REPOSITORY = update(tag_intervals).where(and_(
    tag_intervals.c.repository == bindparam("k_repository"), tag_intervals.c.tag == bindparam("k_tag"),
    tag_intervals.c.from_position == _latest_tag_interval(bindparam("k_repository"), bindparam("k_tag")),
)).values(ended_how="repository_deleted")


def _deleted_with_repository(conn: Connection, repository: str, tags: list[str]) -> None:
    """A repository's Deleted comes after the TagDeleted events that emptied it: the newest
    interval of each tag it lists ended with the repository."""
    if tags:
        conn.execute(_ENDED_WITH_REPOSITORY, [{"k_repository": repository, "k_tag": tag} for tag in tags])


def _during(table: Table, position: int):
    """Rows whose interval holds `position`."""
    return and_(table.c.from_position <= position,
                or_(table.c.to_position.is_(None), table.c.to_position > position))


@dataclass(frozen=True)
class TagInterval:
    tag: str
    digest: str
    started_how: str
    ended_how: str | None
    from_position: int
    from_time: datetime
    started_by: str
    to_position: int | None
    to_time: datetime | None
    ended_by: str | None


class HistoryView:
    def __init__(self, db: ReadModelDatabase) -> None:
        self.engine = db.reader

    def tags_as_of(self, repository: str, position: int) -> dict[str, str]:
        query = select(tag_intervals.c.tag, tag_intervals.c.digest).where(and_(
            tag_intervals.c.repository == repository, _during(tag_intervals, position)))
        return dict(self._rows(query.order_by(tag_intervals.c.tag)))

    def tag_history(self, repository: str, tag: str) -> list[TagInterval]:
        columns = [c for c in tag_intervals.c if c.name != "repository"]
        query = select(*columns).where(and_(tag_intervals.c.repository == repository,
                                            tag_intervals.c.tag == tag))
        return [TagInterval(**row._mapping) for row in self._rows(query.order_by(tag_intervals.c.from_position))]

    def repositories_as_of(self, position: int, project: str | None = None) -> list[str]:
        query = select(repository_intervals.c.name).where(_during(repository_intervals, position))
        if project is not None:
            query = query.where(repository_intervals.c.name.startswith(f"{project}/", autoescape=True))
        return [row[0] for row in self._rows(query.order_by(repository_intervals.c.name))]

    def deleted_repositories(self, project: str) -> list[dict]:
        """Repositories of the project that were deleted and not pushed to since, newest
        deletion first: {name, deleted_at, deleted_by}."""
        open_now = select(repository_intervals.c.name).where(repository_intervals.c.to_position.is_(None))
        latest = select(repository_intervals.c.name, func.max(repository_intervals.c.to_position).label("last")) \
            .where(repository_intervals.c.name.startswith(f"{project}/", autoescape=True),
                   repository_intervals.c.name.not_in(open_now)) \
            .group_by(repository_intervals.c.name).subquery()
        query = select(repository_intervals.c.name, repository_intervals.c.to_time, repository_intervals.c.ended_by) \
            .join(latest, and_(latest.c.name == repository_intervals.c.name,
                               latest.c.last == repository_intervals.c.to_position)) \
            .order_by(repository_intervals.c.to_position.desc())
        return [{"name": name, "deleted_at": at, "deleted_by": by} for name, at, by in self._rows(query)]

    def project_as_of(self, name: str, position: int) -> bool | None:
        """Whether the project was public at `position`; None if it did not exist."""
        rows = self._rows(select(project_intervals.c.public).where(and_(
            project_intervals.c.name == name, _during(project_intervals, position))))
        return rows[0][0] if rows else None

    def members_as_of(self, project: str, position: int) -> list[dict]:
        query = select(member_intervals).where(and_(
            member_intervals.c.project == project, _during(member_intervals, position)))
        return [_member(row) for row in self._rows(query.order_by(member_intervals.c.principal))]

    def admins_as_of(self, position: int) -> list[str]:
        query = select(admin_intervals.c.username).where(_during(admin_intervals, position))
        return [row[0] for row in self._rows(query.order_by(admin_intervals.c.username))]

    def group_users_as_of(self, position: int, group_key: str) -> list[str]:
        """The users last seen in the group, at their latest login before `position`."""
        query = select(group_observations.c.username).where(and_(
            group_observations.c.group_key == group_key, _during(group_observations, position)))
        return [row[0] for row in self._rows(query.order_by(group_observations.c.username))]

    def robots_as_of(self, position: int, name: str | None = None) -> list[dict]:
        query = select(robot_intervals).where(_during(robot_intervals, position))
        if name is not None:
            query = query.where(robot_intervals.c.name == name)
        return [_robot(row) for row in self._rows(query.order_by(robot_intervals.c.name))]

    def _rows(self, query) -> list:
        with self.engine.connect() as conn:
            return list(conn.execute(query))


def _member(row) -> dict:
    return {"kind": row.kind, "principal": row.principal, "role": row.role,
            "repository": row.repository or None, "since": row.from_time, "granted_by": row.started_by}


def _robot(row) -> dict:
    return {"name": row.name, "project": row.project, "permissions": orjson.loads(row.permissions),
            "disabled": row.disabled, "expires_at": row.expires_at, "since": row.from_time}
