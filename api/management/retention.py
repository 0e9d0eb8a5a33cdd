"""A project's retention policy and its runs (/api/v1/projects/{project}/retention…).
Permissions are Harbor's `tag-retention`: project admins and maintainers."""

from __future__ import annotations

from starlette.responses import Response

from api.management.common import Call, field, json_response, page_params, paged
from api.management.history import as_of_time, parse_as_of
from api.management.problems import Problem
from api.request_input import by_id
from domain.cron import CronSchedule
from domain.errors import InvalidInputError
from domain.immutability import Selector
from domain.retention import RetentionRule
from projections.retention import RunRow

RESOURCE = "tag-retention"


def run_json(row: RunRow) -> dict:
    return {"id": row.id, "run": row.run, "project": row.project, "status": row.status, "dry_run": row.dry_run,
            "as_of": row.as_of, "trigger": row.trigger, "actor": row.actor, "retained": row.retained,
            "deleted": row.deleted, "skipped": row.skipped, "error": row.error, "started_at": row.started_at,
            "finished_at": row.finished_at}


def get_policy(call: Call) -> Response:
    """The project's retention rules and schedule."""
    project = _project(call, "read")
    row = call.services.retention.policy(project)
    if row is None:
        raise Problem(404, "not-found", f"project {project} has no retention policy")
    return json_response({"project": project, "rules": row.rules, "cron": row.cron, "updated_at": row.updated_at,
                          "updated_by": row.updated_by})


def put_policy(call: Call) -> Response:
    """Set the policy: `rules` (each: `template` latestPushedK | latestPulledN | nDaysSinceLastPush |
    nDaysSinceLastPull | always, `param`, `repositories`, `tags` (doublestar), `exclude_repositories`,
    `exclude_tags`, `untagged`, `disabled`) and `cron` (null: manual runs only)."""
    project = _project(call, "update")
    rules = [_rule(item) for item in field(call.body, "rules", list)]
    cron = field(call.body, "cron", str, False, None)
    cron = str(CronSchedule.parse(cron)) if cron else None
    call.settle(call.services.project_rules.set_retention(project, rules, cron, call.context))
    return get_policy(call)


def delete_policy(call: Call) -> Response:
    """Remove the project's retention policy (its runs stay in the history)."""
    project = _project(call, "delete")
    call.settle(call.services.project_rules.remove_retention(project, call.context))
    return Response(status_code=204)


def start_run(call: Call) -> Response:
    """Run the policy now: `dry_run` reports what it would delete; a dry run may be evaluated
    `as_of` a past log position or time (what the policy would have deleted then)."""
    project = _project(call, "operate")
    body = call.body if call.body is not None else {}
    dry_run = field(body, "dry_run", bool, False, False)
    as_of = field(body, "as_of", (str, int), False, None)
    position = parse_as_of(call, str(as_of)) if as_of is not None else None
    run_id, last = call.services.retention_runner.run(project, dry_run, "manual", call.context, position,
                                                      as_of_time=as_of_time(None if as_of is None else str(as_of)))
    call.settle(last)
    row = call.services.retention.run_by_uuid(str(run_id))
    return json_response(run_json(row) | before_the_log(call.services.retention_runner, position), 201,
                         {"Location": f"{call.request.url.path}/{row.id}"})


def before_the_log(runner, position: int | None) -> dict:
    """A note for a dry run as of a moment before the first event: nothing existed then."""
    start = runner.log_start() if position == 0 else None
    return {"note": f"nothing existed then: the log begins at {start.isoformat()}"} if start else {}


def list_runs(call: Call) -> Response:
    """The project's retention runs, newest first."""
    project = _project(call, "list")
    page, size = page_params(call.request)
    rows, total = call.services.retention.runs(project, (page - 1) * size, size)
    return paged(call.request, [run_json(r) for r in rows], total, page, size)


def get_run(call: Call) -> Response:
    """One retention run: what it retained, deleted and skipped."""
    project = _project(call, "read")
    text = call.param("run")
    row = by_id(call.services.retention.run, text)
    if row is None or row.project != project:
        raise Problem(404, "not-found", f"no retention run {text} in project {project}")
    return json_response(run_json(row))


def _project(call: Call, action: str) -> str:
    project = call.param("project")
    call.require_project(project, RESOURCE, action)
    return project


def _rule(item: object) -> RetentionRule:
    if not isinstance(item, dict) or not isinstance(item.get("template"), str):
        raise InvalidInputError("each rule is an object with a template", {"rule": item})
    for name in ("repositories", "tags"):
        if name in item and not isinstance(item[name], str):
            raise InvalidInputError(f"{name} must be a doublestar pattern", {"rule": item})
    return RetentionRule(item["template"], item.get("param"),
                         Selector(item.get("repositories", "**"), item.get("exclude_repositories", False)),
                         Selector(item.get("tags", "**"), item.get("exclude_tags", False)),
                         item.get("untagged", False), item.get("disabled", False))
