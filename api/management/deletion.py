"""Deleting and undeleting repositories, tags and projects (/api/v1/…/undelete). Deleted
content can come back until garbage collection has taken the bytes it needs (docs/gc.md)."""

from __future__ import annotations

from starlette.responses import Response

from api.management.common import Call, field, json_response
from domain.names import check_name, check_tag
from domain.permissions import project_of


def delete_repository(call: Call) -> Response:
    """Delete a repository: every tag, manifest and blob link (refused while a tag in it is
    immutable). It can be undeleted until garbage collection takes its bytes."""
    name = _repository(call, "delete")
    call.settle(call.services.trash.delete_repository(name, call.context))
    return Response(status_code=204)


def undelete_repository(call: Call) -> Response:
    """Bring a deleted repository back as it was (409 once its bytes were collected, or once
    the name was pushed to again)."""
    name = _repository(call, "delete")
    call.settle(call.services.trash.undelete_repository(name, call.context))
    return json_response({"name": name, "tags": call.services.history.tags_as_of(
        name, call.services.projections.catch_up())})


def deleted_repositories(call: Call) -> Response:
    """Deleted repositories of a project that can be undeleted (unless GC took their bytes)."""
    project = call.param("project")
    call.require_project(project, "repository", "delete")
    call.services.projections.catch_up()
    return json_response(call.services.history.deleted_repositories(project))


def undelete_tag(call: Call) -> Response:
    """Point a deleted tag back at the digest it had (or at `digest`), bringing its manifest
    back too if it was deleted with it."""
    name = _repository(call, "push")
    tag = check_tag(call.param("tag"))
    body = call.body if call.body is not None else {}
    digest = field(body, "digest", str, False, None)
    call.settle(call.services.trash.undelete_tag(name, tag, call.context, digest))
    row = call.services.catalog.manifest_by_tag(name, tag)
    return json_response({"tag": tag, "digest": row.digest if row else None})


def undelete_project(call: Call) -> Response:
    """Bring a deleted project back with its visibility, members and immutability rules
    (system administrators; its robots stay deleted)."""
    call.require_system("project", "undelete")
    name = call.param("project")
    call.settle(call.services.admin.undelete_project(name, call.context))
    row = call.services.access.project(name)
    return json_response({"name": row.name, "public": row.public})


def _repository(call: Call, action: str) -> str:
    name = check_name(call.param("name"))
    call.require_project(project_of(name), "repository", action)
    return name
