"""`as_of` on the Harbor listings (/api/v2.0/projects/{p}/repositories…, quotas): repositories,
artifacts, an artifact, its tags and labels, and quota usage as they were at a moment (a log
position, an ISO 8601 time, or the as-of view's `20261207t201500z` / `p1234`; domain/as_of.py).

The state comes from the repositories replayed to the position; tags and repositories carry the
ids the history read model gave them then. What belongs to a digest and not to the moment
(scan overviews, pull counts, immutability) is shown as it is now; an artifact deleted since has
no id (null), and a label deleted since is shown with `deleted: true`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

import orjson
from sqlalchemy import and_, false, or_, select

from api.harbor.common import Filter, bad_request, not_found
from api.harbor.labels import label_json
from api.management.common import Call
from api.management.history import parse_as_of
from domain.as_of import ManifestAt, RepositoryAt
from domain.labels import GLOBAL, LabelKey
from domain.names import check_digest, is_digest_reference
from domain.quotas import QuotaUsage
from projections.access import ProjectRow
from projections.catalog import manifests
from projections.history import repository_intervals, tag_intervals


@dataclass(frozen=True)
class ArtifactRow:
    """An artifact at a moment, with the attributes of a catalog_manifests row."""

    id: int | None
    digest: str
    media_type: str
    size: int
    artifact_type: str | None
    subject: str | None
    annotations: str
    pushed_at: datetime


@dataclass(frozen=True)
class RepositoryRow:
    id: int
    name: str
    artifact_count: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class TagRow:
    tag: str
    digest: str
    updated_at: datetime
    id: int


@dataclass
class Facts:
    """What an artifact listing shows beside the artifacts: now (the read models) or at a moment."""

    repository_id: int | None
    tags: dict[str, list]  # digest → its tags (tag, digest, updated_at, id)
    sizes: dict[str, int]  # digest → the size of what it references
    labels: dict[str, list[dict]]  # digest → its labels' JSON
    referrers: Callable[[list[str]], dict[str, list]]  # subjects → their referrers


def position_of(call: Call) -> int | None:
    """The `as_of` query parameter's log position (None without one)."""
    return parse_as_of(call, call.request.query_params.get("as_of"))


def repository_at(call: Call, name: str, position: int) -> RepositoryAt:
    state = call.services.as_of.repository(name, position)
    if state is None:
        raise not_found(f"repository {name} did not exist at that moment")
    return state


def artifacts(call: Call, state: RepositoryAt, filters: dict[str, Filter]) -> list[ArtifactRow]:
    """The repository's listed artifacts at its moment, newest push first, filtered as the
    listing's `q` (tags, digest, media_type, artifact_type)."""
    details = call.services.as_of.manifests(state)
    rows = _rows(call, state.name, state.listed(details))
    tags_of: dict[str, list[str]] = {}
    for tag, digest in state.tags.items():
        tags_of.setdefault(digest, []).append(tag)
    columns = {"digest": lambda row: row.digest, "id": lambda row: row.id, "mediatype": lambda row: row.media_type,
               "artifacttype": lambda row: row.artifact_type}
    for key, value_filter in filters.items():
        if key == "tags":
            rows = [row for row in rows if _tag_match(value_filter, tags_of.get(row.digest, []))]
        elif key in columns:
            rows = [row for row in rows if value_filter.test(columns[key](row))]
        else:
            raise bad_request(f"unsupported query key {key!r}; supported: {', '.join(sorted([*columns, 'tags']))}")
    return sorted(rows, key=lambda row: row.pushed_at, reverse=True)


def artifact(call: Call, state: RepositoryAt, reference: str) -> ArtifactRow:
    """An artifact by digest or by the tag it had at the moment; 404 without one."""
    details = call.services.as_of.manifests(state)
    digest = check_digest(reference) if is_digest_reference(reference) else state.tags.get(reference)
    if digest not in details:
        raise not_found(f"artifact {state.name}{'@' if ':' in reference else ':'}{reference} "
                        "did not exist at that moment")
    return _rows(call, state.name, [details[digest]])[0]


def facts(call: Call, project: ProjectRow, state: RepositoryAt, digests: list[str]) -> Facts:
    details = call.services.as_of.manifests(state)
    return Facts(
        repository_id=_repository_id(call, state.name, state.position),
        tags=_tags(call, state, digests),
        sizes={digest: details[digest].referenced_size() for digest in digests if digest in details},
        labels={digest: [_label(call, project, entry) for entry in state.labels.get(digest, [])] for digest in digests},
        referrers=lambda subjects: {subject: sorted((m for m in details.values() if m.subject == subject),
                                                    key=lambda m: m.digest) for subject in subjects})


def repositories(call: Call, projects: list[str] | None, position: int) -> list[RepositoryRow]:
    """The repositories of `projects` (None: every project) that existed at `position`."""
    during = and_(repository_intervals.c.from_position <= position,
                  or_(repository_intervals.c.to_position.is_(None), repository_intervals.c.to_position > position))
    query = select(repository_intervals.c.name, repository_intervals.c.from_position,
                   repository_intervals.c.from_time).where(during)
    if projects is not None:
        query = query.where(or_(false(), *(repository_intervals.c.name.startswith(f"{p}/", autoescape=True)
                                           for p in projects)))
    with call.services.db.reader.connect() as conn:
        found = list(conn.execute(query.order_by(repository_intervals.c.name)))
    rows = []
    for name, created, created_at in found:
        state = call.services.as_of.repository(name, position)
        if state is not None:
            count = len(state.listed(call.services.as_of.manifests(state)))
            rows.append(RepositoryRow(created, name, count, created_at, state.updated_at))
    return rows


def quota_usage(call: Call, project: str, position: int) -> QuotaUsage:
    names = call.services.history.repositories_as_of(position, project)
    return call.services.as_of.quota_usage(project, names, position)


def _rows(call: Call, name: str, found: list[ManifestAt]) -> list[ArtifactRow]:
    """Rows with the id each artifact has in the catalog now (null for one deleted since)."""
    query = select(manifests.c.digest, manifests.c.id).where(
        manifests.c.repository == name, manifests.c.digest.in_([m.digest for m in found]))
    with call.services.db.reader.connect() as conn:
        ids = dict(conn.execute(query).all())
    return [ArtifactRow(ids.get(m.digest), m.digest, m.media_type, m.size, m.artifact_type, m.subject,
                        orjson.dumps(m.annotations).decode(), m.pushed_at) for m in found]


def _tag_match(value_filter: Filter, tags: list[str]) -> bool:
    """`tags=*` tagged, `tags=nil` untagged, otherwise some tag matches (as the listing now)."""
    if value_filter.kind == "exact" and value_filter.values[0] in ("*", "nil"):
        return bool(tags) == (value_filter.values[0] == "*")
    return any(value_filter.test(tag) for tag in tags)


def _repository_id(call: Call, name: str, position: int) -> int | None:
    query = select(repository_intervals.c.from_position).where(
        repository_intervals.c.name == name, repository_intervals.c.from_position <= position,
        or_(repository_intervals.c.to_position.is_(None), repository_intervals.c.to_position > position))
    with call.services.db.reader.connect() as conn:
        return conn.execute(query).scalar()


def _tags(call: Call, state: RepositoryAt, digests: list[str]) -> dict[str, list[TagRow]]:
    """The tags on each digest at the moment, with the position that pointed them (their id)."""
    position = state.position
    query = select(tag_intervals.c.tag, tag_intervals.c.digest, tag_intervals.c.from_time,
                   tag_intervals.c.from_position).where(
        tag_intervals.c.repository == state.name, tag_intervals.c.digest.in_(digests),
        tag_intervals.c.from_position <= position,
        or_(tag_intervals.c.to_position.is_(None), tag_intervals.c.to_position > position))
    found: dict[str, list[TagRow]] = {digest: [] for digest in digests}
    with call.services.db.reader.connect() as conn:
        for tag, digest, at, start in conn.execute(query.order_by(tag_intervals.c.tag)):
            found[digest].append(TagRow(tag, digest, at, start))
    return found


def _label(call: Call, project: ProjectRow, entry: str) -> dict:
    """A label the artifact carried (`<scope>:<name>`), as defined now; one deleted since is
    shown by its name with `deleted: true`."""
    scope, _, name = entry.partition(":")
    key = LabelKey(scope, None if scope == GLOBAL else project.name, name)
    row = call.services.labels.by_key(key)
    if row is None:
        return {"id": None, "name": name, "scope": scope, "project_id": 0 if scope == GLOBAL else project.id,
                "description": "", "color": "", "creation_time": None, "update_time": None, "deleted": True}
    return label_json(row, project.id)

