"""Point-in-time restore of a repository or a project (/api/v1/…/restore): the changes that bring
it back to how it was at `as_of`, recorded as new events (domain/restore.py); `dry_run` lists them
without recording anything. Permissions are checked before the body is read."""

from __future__ import annotations

from starlette.responses import Response

from api.management.common import Call, field, json_response
from api.management.history import parse_as_of
from api.management.problems import Problem
from domain.names import check_name
from domain.permissions import MATRIX, Role, permissions_beyond, project_of, project_permissions
from domain.restore import Plan


def restore_repository(call: Call) -> Response:
    """Bring a repository back to how it was at `as_of` (push and delete on it)."""
    name = check_name(call.param("name"))
    position, dry_run = _moment(call)
    plan, last = call.services.restores.restore_repository(name, position, call.context, dry_run)
    return _answer(call, plan, last, position, dry_run)


def _may_restore_repository(call: Call) -> None:
    name = check_name(call.param("name"))
    for action in ("push", "delete"):  # what moving and deleting its tags takes
        call.require_project(project_of(name), "repository", action, name)


restore_repository.authorize = _may_restore_repository


def restore_project(call: Call) -> Response:
    """Bring a project's repositories, members, robots' permissions and policies back to how
    they were at `as_of` (project administrators; a deleted project: system administrators)."""
    project = call.param("project")
    position, dry_run = _moment(call)
    plan, last = call.services.restores.restore_project(
        project, position, call.context, dry_run, may_set_quota=call.principal.system_admin,
        grantable=lambda permissions: not permissions_beyond(call.principal, permissions))
    return _answer(call, plan, last, position, dry_run)


def _may_restore_project(call: Call) -> None:
    """Project administrators: a restore may change anything in the project (a robot holding
    some project permissions is not one)."""
    project = call.param("project")
    if call.services.access.project(project) is None:  # deleted (or unknown): as undeleting it
        call.require_system("project", "undelete")
        return
    call.require_project(project, "project", "update")
    if not MATRIX[Role.PROJECT_ADMIN] <= project_permissions(call.principal, project, public=False):
        raise Problem(403, "forbidden", f"{call.principal.name} may not restore project {project}: project "
                      "administrators only", {"project": project})


restore_project.authorize = _may_restore_project


def _moment(call: Call) -> tuple[int, bool]:
    as_of = field(call.body, "as_of", (str, int))
    dry_run = field(call.body, "dry_run", bool, False, False)
    call.services.projections.catch_up()  # the time index and the history read model up to now
    position = parse_as_of(call, str(as_of))
    if position is None:
        raise Problem(422, "invalid-input", "as_of must be a log position or an ISO 8601 time", {"as_of": as_of})
    return position, dry_run


def _answer(call: Call, plan: Plan, last: int | None, position: int, dry_run: bool) -> Response:
    call.settle(last)
    return json_response({"as_of_position": position, "dry_run": dry_run, **plan.public()})
