"""Repositories, artifacts, their tags and the labels on them
(/api/v2.0/projects/{project}/repositories…). An artifact is a manifest; its id is the log
position of its push. `{repository_name}` is the name without the project, URL-encoded once more
by clients (`a%252Fb` for `a/b`). The listings and an artifact's reads take `as_of` (a log
position or a time: the state then, api/harbor/as_of.py)."""

from __future__ import annotations

from urllib.parse import unquote

import orjson
from starlette.responses import Response

from api.harbor import as_of, queries
from api.harbor.common import bad_request, body_of, empty, not_found, paged, parse_q, project_of
from api.harbor.labels import label_by_id, label_json
from api.harbor.scans import overviews_json
from api.management.common import Call, field, json_response, page_params
from api.management.problems import Problem
from api.request_input import as_id
from domain.as_of import RepositoryAt
from domain.manifests import IMAGE_CONFIG_TYPES
from domain.names import check_name, check_tag
from projections.access import ProjectRow

INDEXES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
# Harbor's accessory types, by the referrer's artifact type; anything else is "subject.accessory".
ACCESSORY_TYPES = {
    "application/vnd.dev.cosign.artifact.sig.v1+json": "signature.cosign",
    "application/vnd.cncf.notary.signature": "signature.notation",
    "application/spdx+json": "sbom.spdx",
    "application/vnd.cyclonedx+json": "sbom.cyclonedx",
    "application/vnd.goharbor.harbor.sbom.v1": "harbor.sbom",
}


def repository_json(project: ProjectRow, row, pull_count: int = 0) -> dict:
    return {"id": row.id, "project_id": project.id, "name": row.name, "description": "",
            "artifact_count": row.artifact_count, "pull_count": pull_count,
            "creation_time": row.created_at, "update_time": row.updated_at}


def list_repositories(call: Call) -> Response:
    """Repositories of a project; `q=name=~…` (full names, with the project)."""
    project = project_of(call, "repository", "list")
    return _repository_page(call, [project.name])


def list_all_repositories(call: Call) -> Response:
    """Repositories of every project the caller can see."""
    names = None
    if not call.principal.system_admin:
        names = [p.name for p in call.services.access.projects(0, 1 << 31, visible_to=call.principal)[0]]
    return _repository_page(call, names)


def _repository_page(call: Call, projects: list[str] | None) -> Response:
    page, size = page_params(call.request)
    params = call.request.query_params
    position = as_of.position_of(call)
    if position is not None:
        return _repository_page_as_of(call, projects, position)
    query = queries.where(queries.repositories_query(projects), parse_q(params.get("q")), queries.REPOSITORY_COLUMNS)
    query = queries.ordered(query, params.get("sort"), queries.REPOSITORY_SORTS, queries.repositories.c.name)
    rows, total = queries.page(call.services.db.reader, query, (page - 1) * size, size)
    access = call.services.access
    owners = {name: access.project(name) for name in {row.name.split("/", 1)[0] for row in rows}}
    pulls = call.services.pulls.of_repositories([row.name for row in rows])
    items = [repository_json(owners[row.name.split("/", 1)[0]], row, pulls.get(row.name, 0)) for row in rows]
    return paged(call.request, items, total, page, size)


def _repository_page_as_of(call: Call, projects: list[str] | None, position: int) -> Response:
    page, size = page_params(call.request)
    params = call.request.query_params
    rows = as_of.repositories(call, projects, position)
    for key, value_filter in parse_q(params.get("q")).items():
        if key not in ("name", "id"):
            raise bad_request(f"unsupported query key {key!r}; supported: id, name")
        rows = [row for row in rows if value_filter.test(getattr(row, key))]
    rows = _sorted(rows, params.get("sort"), {"name": "name", "creation_time": "created_at",
                                               "update_time": "updated_at"})
    shown = rows[(page - 1) * size:page * size]
    access = call.services.access
    owners = {name: access.project(name) for name in {row.name.split("/", 1)[0] for row in shown}}
    pulls = call.services.pulls.of_repositories([row.name for row in shown])
    items = [repository_json(owners[row.name.split("/", 1)[0]], row, pulls.get(row.name, 0)) for row in shown]
    return paged(call.request, items, len(rows), page, size)


def _sorted(rows: list, sort: str | None, columns: dict[str, str]) -> list:
    """Harbor's `sort=field,-field` over rows held whole."""
    for key in reversed([k.strip() for k in (sort or "").split(",") if k.strip()]):
        if key.lstrip("-") not in columns:
            raise bad_request(f"cannot sort by {key.lstrip('-')}; sortable: {', '.join(sorted(columns))}")
        rows = sorted(rows, key=lambda row: getattr(row, columns[key.lstrip("-")]), reverse=key.startswith("-"))
    return rows


def get_repository(call: Call) -> Response:
    """One repository."""
    position = as_of.position_of(call)
    if position is not None:
        project = project_of(call, "repository", "list")
        name = _name(call, project)
        found = [row for row in as_of.repositories(call, [project.name], position) if row.name == name]
        if not found:
            raise not_found(f"repository {name} did not exist at that moment")
        pulls = call.services.pulls.of_repositories([name]).get(name, 0)
        return json_response(repository_json(project, found[0], pulls))
    project, name = queries.repository_of(call, "repository", "list")
    pulls = call.services.pulls.of_repositories([name]).get(name, 0)
    return json_response(repository_json(project, queries.repository(call.services.db.reader, name), pulls))


def delete_repository(call: Call) -> Response:
    """Deletes the repository with every artifact and tag (it can be undeleted through
    /api/v1/repositories/{name}/undelete until garbage collection takes its bytes)."""
    _, name = queries.repository_of(call, "repository", "delete")
    call.settle(call.services.trash.delete_repository(name, call.context))
    return empty()


def list_artifacts(call: Call) -> Response:
    """Artifacts of a repository, newest first; `q=tags=*|nil|~v|v`, digest, media_type. Untagged
    referrers are not listed (as Harbor's accessories): `with_accessory=true` shows them under their subject."""
    page, size = page_params(call.request)
    params = call.request.query_params
    position = as_of.position_of(call)
    if position is not None:
        project, state = _repository_at(call, "artifact", "list", position)
        rows = as_of.artifacts(call, state, parse_q(params.get("q")))
        shown = rows[(page - 1) * size:page * size]
        return paged(call.request, _artifacts_json(call, project, state.name, shown, state), len(rows), page, size)
    project, name = queries.repository_of(call, "artifact", "list")
    query = queries.artifacts_query(name, parse_q(params.get("q")))
    rows, total = queries.page(call.services.db.reader, query, (page - 1) * size, size)
    return paged(call.request, _artifacts_json(call, project, name, rows), total, page, size)


def get_artifact(call: Call) -> Response:
    """One artifact, by digest or tag."""
    position = as_of.position_of(call)
    if position is not None:
        project, state = _repository_at(call, "artifact", "read", position)
        row = as_of.artifact(call, state, call.param("reference"))
        return json_response(_artifacts_json(call, project, state.name, [row], state)[0])
    project, name = queries.repository_of(call, "artifact", "read")
    return json_response(_artifacts_json(call, project, name, [queries.artifact_of(call, name)])[0])


def _name(call: Call, project: ProjectRow) -> str:
    return check_name(f"{project.name}/{unquote(call.param('repository'))}")


def _repository_at(call: Call, resource: str, action: str, position: int) -> tuple[ProjectRow, RepositoryAt]:
    """The path's project (the caller allowed `action` on `resource` there) and repository as
    it was at `position`; 404 when it did not exist then."""
    project = project_of(call, resource, action)
    return project, as_of.repository_at(call, _name(call, project), position)


def delete_artifact(call: Call) -> Response:
    """Delete an artifact (a manifest) with all its tags."""
    _, name = queries.repository_of(call, "artifact", "delete")
    row = queries.artifact_of(call, name)
    call.settle(call.services.artifacts.delete_manifest(name, row.digest, call.context))
    return empty()


def list_tags(call: Call) -> Response:
    """Tags of an artifact; `q=name=…`; `as_of`."""
    position = as_of.position_of(call)
    if position is not None:
        project, state = _repository_at(call, "tag", "list", position)
        row = as_of.artifact(call, state, call.param("reference"))
        found = _tags_json(call, state.name, row, as_of.facts(call, project, state, [row.digest]))
    else:
        project, name = queries.repository_of(call, "tag", "list")
        row = queries.artifact_of(call, name)
        found = _tags_json(call, name, row, _facts_now(call, project, name, [row.digest]))
    needle = parse_q(call.request.query_params.get("q")).get("name")
    found = [tag for tag in found if needle is None or needle.test(tag["name"])]
    page, size = page_params(call.request)
    return paged(call.request, found[(page - 1) * size:page * size], len(found), page, size)


def create_tag(call: Call) -> Response:
    """Put a new tag (`name`) on an artifact."""
    _, name = queries.repository_of(call, "tag", "create")
    row = queries.artifact_of(call, name)
    tag = check_tag(field(body_of(call), "name", str))
    if call.services.catalog.manifest_by_tag(name, tag) is not None:
        raise Problem(409, "conflict", f"the tag {tag} already exists in {name}")
    call.settle(call.services.artifacts.point_tag(name, tag, row.digest, call.context))
    return empty(201, {"Location": f"{call.request.url.path.rstrip('/')}/{tag}"})


def delete_tag(call: Call) -> Response:
    """Remove a tag from an artifact."""
    project, name = queries.repository_of(call, "tag", "delete")
    row, tag = queries.artifact_of(call, name), call.param("tag")
    if tag not in {t["name"] for t in _tags_json(call, name, row, _facts_now(call, project, name, [row.digest]))}:
        raise not_found(f"the artifact has no tag {tag}")
    call.settle(call.services.artifacts.delete_tag(name, tag, call.context))
    return empty()


def add_artifact_label(call: Call) -> Response:
    """Put a label (`{"id": N}`) on an artifact: a global label, or one of the artifact's project;
    409 if the artifact carries it already (as Harbor)."""
    _, name = queries.repository_of(call, "artifact-label", "create")
    row = queries.artifact_of(call, name)
    label = label_by_id(call, field(body_of(call), "id", int))
    call.settle(call.services.labelling.add_to_artifact(name, row.digest, label.key, call.context))
    return empty()


def remove_artifact_label(call: Call) -> Response:
    """Take a label off an artifact; 404 unless the artifact carries it."""
    _, name = queries.repository_of(call, "artifact-label", "delete")
    row = queries.artifact_of(call, name)
    text = call.param("label_id")
    label_id = as_id(text)
    if label_id is None:
        raise not_found(f"label {text} not found")
    label = label_by_id(call, label_id)
    call.settle(call.services.labelling.remove_from_artifact(name, row.digest, label.key, call.context))
    return empty()


def _facts_now(call: Call, project: ProjectRow, name: str, digests: list[str]) -> as_of.Facts:
    reader = call.services.db.reader
    labels = call.services.labels.of_artifacts(name, digests)
    return as_of.Facts(
        repository_id=queries.repository(reader, name).id, tags=queries.tags_of(reader, name, digests),
        sizes=queries.referenced_sizes(reader, name, digests),
        labels={digest: [label_json(label, project.id) for label in found] for digest, found in labels.items()},
        referrers=lambda subjects: call.services.catalog.referrers_of(name, subjects))


def _artifacts_json(call: Call, project: ProjectRow, name: str, rows: list,
                    at: RepositoryAt | None = None) -> list[dict]:
    """The artifacts' JSON, now or (`at`) as the repository was at a moment."""
    digests = [row.digest for row in rows]
    facts = _facts_now(call, project, name, digests) if at is None else as_of.facts(call, project, at, digests)
    tags, repository_id = facts.tags, facts.repository_id
    with_tags = call.request.query_params.get("with_tag", "true").lower() != "false"
    pulled = call.services.pulls.of_artifacts(name, digests)
    tag_names = [t.tag for row in rows for t in tags[row.digest]]
    tag_pulled = call.services.pulls.of_tags(name, tag_names)
    immutable = call.services.immutability.immutable_tags(name, tag_names)
    accessories = _accessories(name, rows, facts.referrers) if _with_accessories(call) else {}
    overviews = overviews_json(call, name, rows)
    return [{
        "id": row.id, "type": _type(row), "media_type": row.artifact_type or row.media_type,
        "manifest_media_type": row.media_type, "artifact_type": row.artifact_type,
        "project_id": project.id, "repository_id": repository_id, "repository_name": name,
        "digest": row.digest, "size": row.size + facts.sizes.get(row.digest, 0), "push_time": row.pushed_at,
        "pull_time": _pull_time(pulled.get(row.digest)), "annotations": _annotations(row), "extra_attrs": {},
        "labels": facts.labels[row.digest],
        "tags": [_tag_json(t, repository_id, row.id, tag_pulled, immutable) for t in tags[row.digest]]
        if with_tags else None,
        **({"accessories": accessories[row.digest]} if accessories else {}),
        **overviews.get(row.digest, {}),
    } for row in rows]


def _with_accessories(call: Call) -> bool:
    return call.request.query_params.get("with_accessory", "false").lower() == "true"


def _accessories(name: str, subjects: list, referrers_of) -> dict[str, list[dict]]:
    """Harbor's accessories of each artifact: its OCI referrers (signatures, SBOMs, attestations)."""
    referrers = referrers_of([subject.digest for subject in subjects])
    return {subject.digest: [
        {"digest": row.digest, "subject_artifact_id": subject.id, "subject_artifact_digest": subject.digest,
         "subject_artifact_repo": name, "type": ACCESSORY_TYPES.get(row.artifact_type, "subject.accessory"),
         "artifact_type": row.artifact_type, "media_type": row.media_type, "size": row.size,
         "annotations": row.annotations}
        for row in referrers[subject.digest]] for subject in subjects}


def _tags_json(call: Call, name: str, row, facts: as_of.Facts) -> list[dict]:
    tags = facts.tags[row.digest]
    pulled = call.services.pulls.of_tags(name, [t.tag for t in tags])
    immutable = call.services.immutability.immutable_tags(name, [t.tag for t in tags])
    return [_tag_json(t, facts.repository_id, row.id, pulled, immutable) for t in tags]


def _tag_json(tag, repository_id: int, artifact_id: int, pulled: dict, immutable: set[str]) -> dict:
    return {"id": tag.id, "repository_id": repository_id, "artifact_id": artifact_id, "name": tag.tag,
            "push_time": tag.updated_at, "pull_time": _pull_time(pulled.get(tag.tag)),
            "immutable": tag.tag in immutable, "signed": False}


def _pull_time(pulls: tuple | None):
    return pulls[1] if pulls else None  # Harbor: null when never pulled


def _type(row) -> str:
    if row.media_type in INDEXES or row.artifact_type in IMAGE_CONFIG_TYPES:
        return "IMAGE"
    return "CHART" if row.artifact_type == HELM_CONFIG else "UNKNOWN"


def _annotations(row) -> dict:
    return orjson.loads(row.annotations) if row.annotations else {}
