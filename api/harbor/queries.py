"""Read-model queries the Harbor surface needs and the views do not offer: repositories with
artifact counts, manifests with their tags and sizes, and audit entries by page. Plain
SQLAlchemy Core over the projections' own tables, on the read-only engine."""

from __future__ import annotations

from typing import Callable
from urllib.parse import unquote

from sqlalchemy import and_, exists, false, func, or_, select

from api.harbor.common import Filter, bad_request, not_found, project_of
from api.request_input import parse_int
from domain.names import check_name, is_digest_reference
from projections.access import ProjectRow
from projections.audit import audit_log
from projections.catalog import LISTED_ARTIFACT, manifests, repositories, tags
from projections.history import tag_intervals
from projections.references import references

Columns = dict[str, tuple[object, Callable]]


def _id(text: str) -> int:
    return parse_int(text, "id")


REPOSITORY_COLUMNS: Columns = {"name": (repositories.c.name, str), "id": (repositories.c.id, _id)}
REPOSITORY_SORTS = {"name": repositories.c.name, "creation_time": repositories.c.created_at,
                    "update_time": repositories.c.updated_at}
ARTIFACT_COLUMNS: Columns = {"digest": (manifests.c.digest, str), "id": (manifests.c.id, _id),
                             "mediatype": (manifests.c.media_type, str),
                             "artifacttype": (manifests.c.artifact_type, str)}


def where(query, filters: dict[str, Filter], columns: Columns):
    for key, value_filter in filters.items():
        if key not in columns:
            raise bad_request(f"unsupported query key {key!r}; supported: {', '.join(sorted(columns))}")
        column, cast = columns[key]
        query = query.where(value_filter.clause(column, cast))
    return query


def ordered(query, sort: str | None, columns: dict[str, object], default):
    """Harbor's `sort=field,-field` over the given columns."""
    keys = [k.strip() for k in (sort or "").split(",") if k.strip()]
    for key in keys:
        if key.lstrip("-") not in columns:
            raise bad_request(f"cannot sort by {key.lstrip('-')}; sortable: {', '.join(sorted(columns))}")
    clauses = [columns[k.lstrip("-")].desc() if k.startswith("-") else columns[k] for k in keys]
    return query.order_by(*(clauses or [default]))


def page(engine, query, offset: int, limit: int) -> tuple[list, int]:
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(query.order_by(None).subquery())).scalar_one()
        return list(conn.execute(query.offset(offset).limit(limit))), total


# Repositories

_ARTIFACT_COUNT = (select(func.count()).select_from(manifests)
                   .where(manifests.c.repository == repositories.c.name, LISTED_ARTIFACT).scalar_subquery())


def repositories_query(projects: list[str] | None):
    """Repositories of the given projects (None: of every project), with artifact counts."""
    query = select(repositories, _ARTIFACT_COUNT.label("artifact_count"))
    if projects is not None:
        query = query.where(or_(false(), *(repositories.c.name.startswith(f"{p}/", autoescape=True)
                                           for p in projects)))
    return query


def repository(engine, name: str):
    with engine.connect() as conn:
        return conn.execute(repositories_query(None).where(repositories.c.name == name)).first()


# Artifacts (manifests) and their tags


def artifacts_query(repository_name: str, filters: dict[str, Filter]):
    """The repository's listed artifacts (projections/catalog.py LISTED_ARTIFACT), filtered."""
    query = select(manifests).where(manifests.c.repository == repository_name, LISTED_ARTIFACT)
    filters = dict(filters)
    tag_filter = filters.pop("tags", None)
    if tag_filter is not None:
        query = query.where(_tagged(repository_name, tag_filter))
    return where(query, filters, ARTIFACT_COLUMNS).order_by(manifests.c.pushed_at.desc(), manifests.c.id.desc())


def _tagged(repository_name: str, tag_filter: Filter):
    """`tags=*` tagged, `tags=nil` untagged, otherwise some tag matches."""
    holds = and_(tags.c.repository == repository_name, tags.c.digest == manifests.c.digest)
    if tag_filter.kind == "exact" and tag_filter.values[0] in ("*", "nil"):
        tagged = exists().where(holds)
        return tagged if tag_filter.values[0] == "*" else ~tagged
    return exists().where(and_(holds, tag_filter.clause(tags.c.tag)))


def artifact(engine, repository_name: str, reference: str):
    """A manifest by digest or by tag."""
    query = select(manifests).where(manifests.c.repository == repository_name)
    if is_digest_reference(reference):
        query = query.where(manifests.c.digest == reference)
    else:
        query = query.join(tags, and_(tags.c.repository == manifests.c.repository,
                                      tags.c.digest == manifests.c.digest)).where(tags.c.tag == reference)
    with engine.connect() as conn:
        return conn.execute(query).first()


def tags_of(engine, repository_name: str, digests: list[str]) -> dict[str, list]:
    """The tags on each digest, with the position that pointed them (their id)."""
    current = and_(tag_intervals.c.repository == tags.c.repository, tag_intervals.c.tag == tags.c.tag,
                   tag_intervals.c.to_position.is_(None))
    query = (select(tags.c.tag, tags.c.digest, tags.c.updated_at, tag_intervals.c.from_position.label("id"))
             .select_from(tags.outerjoin(tag_intervals, current))
             .where(tags.c.repository == repository_name, tags.c.digest.in_(digests))
             .order_by(tags.c.tag))
    found: dict[str, list] = {digest: [] for digest in digests}
    with engine.connect() as conn:
        for row in conn.execute(query):
            found[row.digest].append(row)
    return found


def referenced_sizes(engine, repository_name: str, digests: list[str]) -> dict[str, int]:
    """Per manifest, the total size of what it references (config and layers, or children)."""
    query = (select(references.c.manifest_digest, func.sum(references.c.size))
             .where(references.c.repository == repository_name, references.c.manifest_digest.in_(digests))
             .group_by(references.c.manifest_digest))
    with engine.connect() as conn:
        return {digest: int(size or 0) for digest, size in conn.execute(query)}


# Audit


def audit_query(clauses: list, projects: list[str] | None, sort: str | None):
    """Newest first unless sorted otherwise; positions order entries as their times do."""
    query = select(audit_log).where(*clauses)
    if projects is not None:
        query = query.where(audit_log.c.project.in_(projects))
    sorts = {"op_time": audit_log.c.position, "id": audit_log.c.position}
    return ordered(query, sort, sorts, audit_log.c.position.desc())


def repository_of(call, resource: str, action: str) -> tuple[ProjectRow, str]:
    """The path's project (the caller allowed `action` on `resource` there) and repository name;
    404 when the repository does not exist."""
    project = project_of(call, resource, action)
    name = check_name(f"{project.name}/{unquote(call.param('repository'))}")
    if not call.services.catalog.repository_exists(name):
        raise not_found(f"repository {name} not found")
    return project, name


def artifact_of(call, name: str):
    """The path's artifact (`reference`: a tag or a digest) in repository `name`; 404 without one."""
    reference = call.param("reference")
    row = artifact(call.services.db.reader, name, reference)
    if row is None:
        raise not_found(f"artifact {name}@{reference} not found" if ":" in reference
                        else f"artifact {name}:{reference} not found")
    return row
