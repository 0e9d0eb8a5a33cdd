"""Repositories, tags and their history, time travel (`as_of`), tag restore, and the audit
trail (/api/v1/repositories…, /api/v1/audit-logs).

`as_of` is a log position (an integer) or an ISO 8601 timestamp (UTC when no offset is
given); the answer is the state right after the last event at or before it."""

from __future__ import annotations

from datetime import datetime, timezone

from starlette.responses import Response, StreamingResponse

from api.management.common import Call, field, json_response, url_with
from api.management.problems import Problem
from api.request_input import as_id, parse_int
from domain.as_of import Moment, parse_moment
from domain.errors import NameInvalidError
from domain.names import check_name, check_tag
from domain.permissions import Grant, Principal, RobotPermission, Role, project_of, repository_actions
from projections.audit import AuditFilter
from projections.audit_export import MEDIA_TYPES, export


def parse_as_of(call: Call, value: str | None) -> int | None:
    if value is None or value == "":
        return None
    position = as_id(value)
    if position is not None:
        return position
    moment = _moment(value)
    if moment is not None and moment.position is not None:
        return moment.position
    return call.services.audit.position_at(as_of_time(value))


def as_of_time(value: str | None) -> datetime | None:
    """`as_of`'s time when it is one (None for a log position). The moments of the as-of view's
    names (`20261207t201500z`, `p1234`: domain/as_of.py) are taken too."""
    if value is None or value == "" or as_id(value) is not None:
        return None
    moment = _moment(value)
    if moment is not None:
        return moment.time
    return parse_time(value, "as_of")


def _moment(value: str) -> Moment | None:
    try:
        return parse_moment(value)
    except NameInvalidError:
        return None


def parse_time(value: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Problem(422, "invalid-input", f"{name} must be a log position or an ISO 8601 time",
                      {name: value}) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def _position(call: Call, as_of: str | None) -> int:
    """`as_of`'s position, or now's without one (a moment before the first event is position 0)."""
    position = parse_as_of(call, as_of)
    return _current_position(call) if position is None else position


def _current_position(call: Call) -> int:
    return call.services.projections.catch_up()


def list_repositories(call: Call) -> Response:
    """Repositories of a project (`?project=`), now or `?as_of=`."""
    project = call.request.query_params.get("project")
    if not project:
        raise Problem(422, "invalid-input", "the project query parameter is required")
    call.require_project(project, "repository", "list")
    position = _position(call, call.request.query_params.get("as_of"))
    return json_response([{"name": name} for name in call.services.history.repositories_as_of(position, project)])


def list_tags(call: Call) -> Response:
    """Tags of a repository and their digests, now or `?as_of=`."""
    name = _repository(call, "list")
    position = _position(call, call.request.query_params.get("as_of"))
    tags = call.services.history.tags_as_of(name, position)
    return json_response([{"tag": tag, "digest": digest} for tag, digest in tags.items()])


def tag_history(call: Call) -> Response:
    """Every digest a tag pointed to, with when and by whom it was moved."""
    name = _repository(call, "list")
    tag = check_tag(call.param("tag"))
    return json_response([vars(interval) for interval in call.services.history.tag_history(name, tag)])


def restore_tag(call: Call) -> Response:
    """Point a tag back at the digest it had at `as_of` (recorded as a new event)."""
    name = _repository(call, "push")
    tag = check_tag(call.param("tag"))
    position = parse_as_of(call, str(field(call.body, "as_of", (str, int))))
    digest = call.services.history.tags_as_of(name, position).get(tag)
    if digest is None:
        raise Problem(404, "not-found", f"{name}:{tag} did not exist at that point", {"position": position})
    call.settle(call.services.artifacts.point_tag(name, tag, digest, call.context))
    return json_response({"tag": tag, "digest": digest, "restored_from_position": position})


def members_as_of(call: Call) -> Response:
    """Members of a project at `?as_of=`."""
    project = call.param("project")
    call.require_project(project, "member", "list")
    position = _position(call, call.request.query_params.get("as_of"))
    return json_response(call.services.history.members_as_of(project, position))


def who_could(call: Call) -> Response:
    """Who could `?action=pull|push|delete` on `?repository=` at `?as_of=`."""
    project = call.param("project")
    call.require_project(project, "member", "list")
    params = call.request.query_params
    repository, action = params.get("repository") or f"{project}/*", params.get("action", "push")
    position = _position(call, params.get("as_of"))
    return json_response(_who_could(call.services.history, project, repository, action, position))


def robot_as_of(call: Call) -> Response:
    """A robot's permissions at `?as_of=`."""
    name = call.param("robot")
    call.require_system("robot", "read")
    position = _position(call, call.request.query_params.get("as_of"))
    found = call.services.history.robots_as_of(position, name)
    if not found:
        raise Problem(404, "not-found", f"robot {name} did not exist at that point")
    return json_response(found[0])


def audit_logs(call: Call) -> Response:
    """The audit trail, filtered; oldest first with the `after` cursor, or `order=desc` newest
    first with `before`; `limit`; `format=jsonl|csv` exports every matching entry."""
    where = _audit_filter(call)
    _current_position(call)  # include events recorded without a read-your-writes wait (failed logins)
    fmt = call.request.query_params.get("format", "json")
    if fmt in MEDIA_TYPES:
        return StreamingResponse(export(call.services.audit, where, fmt), media_type=MEDIA_TYPES[fmt])
    limit = min(parse_int(call.request.query_params.get("limit", "100"), "limit", minimum=1), 1000)
    entries = call.services.audit.entries(where, limit)
    headers = {}
    if len(entries) == limit:
        cursor = "before" if where.newest_first else "after"
        headers["Link"] = f'<{url_with(call.request, **{cursor: entries[-1]["position"], "limit": limit})}>; rel="next"'
    return json_response(entries, headers=headers)


def _audit_filter(call: Call) -> AuditFilter:
    params = call.request.query_params
    project = params.get("project")
    if project:
        call.require_project(project, "log", "list")
    else:
        call.require_system("log", "list")
    after, before = (parse_int(params[name], name) if params.get(name) else None for name in ("after", "before"))
    order = params.get("order", "asc")
    if order not in ("asc", "desc"):
        raise Problem(422, "invalid-input", "order is asc (oldest first) or desc (newest first)")
    return AuditFilter(
        actor=params.get("actor") or params.get("principal"), project=project,
        repository=params.get("repository"), operation=params.get("operation"),
        resource_type=params.get("resource_type"),
        since=parse_time(params["since"], "since") if params.get("since") else None,
        until=parse_time(params["until"], "until") if params.get("until") else None,
        after=after, before=before,
        newest_first=order == "desc")


def _repository(call: Call, action: str) -> str:
    name = check_name(call.param("name"))
    call.require_project(project_of(name), "repository", action)
    return name


def _who_could(history, project: str, repository: str, action: str, position: int) -> list[dict]:
    public = history.project_as_of(project, position)
    if public is None:
        return []
    found = [{"principal": name, "kind": "user", "via": "system administrator"}
             for name in history.admins_as_of(position)]
    for member in history.members_as_of(project, position):
        principal = Principal(member["principal"], "user", grants={project: (
            Grant(Role(member["role"]), member["repository"]),)})
        if action not in repository_actions(principal, project, False, repository):
            continue
        via = f"role {member['role']}" + (f" on {member['repository']}" if member["repository"] else "")
        if member["kind"] == "group":  # its members as Portlog saw them at their logins
            found.extend({"principal": name, "kind": "user", "via": f"{via} of group {member['principal']}"}
                         for name in history.group_users_as_of(position, member["principal"]))
        else:
            found.append({"principal": member["principal"], "kind": "user", "via": via})
    for robot in history.robots_as_of(position):
        permissions = tuple(RobotPermission(**p) for p in robot["permissions"])
        if not robot["disabled"] and action in repository_actions(
                Principal(robot["name"], "robot", robot_permissions=permissions), project, False, repository):
            found.append({"principal": robot["name"], "kind": "robot", "via": "robot permissions"})
    if public and action == "pull":
        found.append({"principal": "anonymous", "kind": "anonymous", "via": "public project"})
    return found
