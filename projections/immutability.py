"""Tag immutability rules read model: what the APIs list, and the public id of each rule — the log
position of the event that added it — next to its number in the project (domain/project.py).

Only the listings read it: the registry decides from the Project aggregate, never from here.
A project's rules leave with the project.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    and_,
    delete,
    insert,
    select,
    update,
)

from domain.immutability import RULE_FIELDS, ImmutableRule
from domain.permissions import project_of
from domain.project import Project
from projections.database import Name, ReadModelDatabase

metadata = MetaData()
rules = Table(
    "immutable_tag_rules", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("project", Name(255), nullable=False),
    Column("number", Integer, nullable=False),
    Column("repositories", Text, nullable=False),
    Column("exclude_repositories", Boolean, nullable=False),
    Column("tags", Text, nullable=False),
    Column("exclude_tags", Boolean, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("creator", Name(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("project", "number"),
)


class ImmutabilityProjection:
    name = "immutability"
    metadata = metadata

    def apply(self, conn: Connection, event: object, position: int) -> None:
        match event:
            case Project.ImmutableRuleAdded():
                conn.execute(insert(rules).values(
                    id=position, project=event.project, number=event.rule, creator=event.actor,
                    created_at=event.timestamp, updated_at=event.timestamp, **_rule_values(event)))
            case Project.ImmutableRuleChanged():
                conn.execute(update(rules).where(_numbered(event)).values(
                    updated_at=event.timestamp, **_rule_values(event)))
            case Project.ImmutableRuleRemoved():
                conn.execute(delete(rules).where(_numbered(event)))
            case Project.Deleted():
                conn.execute(delete(rules).where(rules.c.project == event.project))


def _numbered(event) -> object:
    return and_(rules.c.project == event.project, rules.c.number == event.rule)


def _rule_values(event) -> dict:
    return {name: getattr(event, name) for name in RULE_FIELDS}


@dataclass(frozen=True)
class RuleRow:
    id: int
    project: str
    number: int
    repositories: str
    exclude_repositories: bool
    tags: str
    exclude_tags: bool
    disabled: bool
    priority: int
    creator: str
    created_at: datetime
    updated_at: datetime

    @property
    def rule(self) -> ImmutableRule:
        return ImmutableRule.from_fields({name: getattr(self, name) for name in RULE_FIELDS})


class ImmutabilityView:
    def __init__(self, db: ReadModelDatabase) -> None:
        self.engine = db.reader

    def rules(self, project: str) -> list[RuleRow]:
        """A project's rules, by priority, then age."""
        query = select(rules).where(rules.c.project == project).order_by(rules.c.priority, rules.c.id)
        with self.engine.connect() as conn:
            return [RuleRow(*row) for row in conn.execute(query)]

    def rule(self, rule_id: int) -> RuleRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(rules).where(rules.c.id == rule_id)).first()
        return None if row is None else RuleRow(*row)

    def rule_id(self, project: str, number: int) -> int | None:
        query = select(rules.c.id).where(and_(rules.c.project == project, rules.c.number == number))
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def immutable_tags(self, repository: str, tags: list[str]) -> set[str]:
        """Those of `tags` of the repository that an enabled rule protects."""
        project_rules = [row.rule for row in self.rules(project_of(repository))] if tags else []
        return {tag for tag in tags if any(rule.protects(repository, tag) for rule in project_rules)}


def rule_id_lookup(view: ImmutabilityView, catch_up: Callable[[], object]) -> Callable[[str, int], int | None]:
    """(project, rule number) -> the rule's id, for the registry's refusals. A rule the read model
    does not have yet is in the log already (the registry found it there): catching up brings it."""
    def lookup(project: str, number: int) -> int | None:
        found = view.rule_id(project, number)
        if found is None:
            catch_up()
            found = view.rule_id(project, number)
        return found
    return lookup
