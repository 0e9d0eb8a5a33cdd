"""Tag immutability rules of a project (/api/v1/projects/{project}/immutable-tag-rules…), in
Portlog's shape:

    {"repositories": "**", "tags": "v*", "exclude_repositories": false, "exclude_tags": false,
     "disabled": false, "priority": 0}

`repositories` is matched against the repository name without the project; an `exclude_*` flag
selects what the pattern does not match. Only `tags` is required on creation; an update keeps
the fields it does not name. Harbor's shape of the same rules is api/harbor/immutability.py;
the permission is Harbor's `immutable-tag` (project admins and maintainers).
"""

from __future__ import annotations

from starlette.responses import Response

from api.management.common import Call, field, json_response, page_params, paged
from api.management.problems import Problem
from api.request_input import by_id
from domain.immutability import RULE_FIELDS, ImmutableRule
from projections.immutability import RuleRow

RESOURCE = "immutable-tag"
FIELD_TYPES = {"repositories": str, "exclude_repositories": bool, "tags": str, "exclude_tags": bool,
               "disabled": bool, "priority": int}
DEFAULTS = {"repositories": "**", "exclude_repositories": False, "exclude_tags": False, "disabled": False,
            "priority": 0}


def rule_json(row: RuleRow) -> dict:
    return {"id": row.id, "project": row.project, **row.rule.event_fields(), "created_by": row.creator,
            "created_at": row.created_at, "updated_at": row.updated_at}


def list_rules(call: Call) -> Response:
    """A project's tag immutability rules, by priority, then age."""
    project = _project(call, "list")
    page, size = page_params(call.request)
    rows = call.services.immutability.rules(project)
    return paged(call.request, [rule_json(r) for r in rows[(page - 1) * size:page * size]], len(rows), page, size)


def create_rule(call: Call) -> Response:
    """Add a rule: `tags` (pattern), `repositories` (default `**`), `exclude_tags`,
    `exclude_repositories`, `disabled`, `priority`."""
    project = _project(call, "create")
    row = add_rule(call, project, rule_from_body(call.body, None))
    return json_response(rule_json(row), 201, {"Location": f"/api/v1/projects/{project}/immutable-tag-rules/{row.id}"})


def get_rule(call: Call) -> Response:
    """One rule."""
    return json_response(rule_json(rule_of(call, _project(call, "list"), call.param("rule"))))


def update_rule(call: Call) -> Response:
    """Change a rule (`disabled: true` disables it); absent fields keep their values."""
    row = rule_of(call, _project(call, "update"), call.param("rule"))
    return json_response(rule_json(change_rule(call, row, rule_from_body(call.body, row.rule))))


def delete_rule(call: Call) -> Response:
    """Delete a rule."""
    remove_rule(call, rule_of(call, _project(call, "delete"), call.param("rule")))
    return Response(status_code=204)


def rule_from_body(body: object, current: ImmutableRule | None) -> ImmutableRule:
    base = current.event_fields() if current else DEFAULTS
    values = {name: field(body, name, FIELD_TYPES[name], False, base.get(name)) for name in RULE_FIELDS}
    if values["tags"] is None:
        raise Problem(422, "invalid-input", "field 'tags' is required", {"field": "tags"})
    return ImmutableRule.from_fields(values)


def _project(call: Call, action: str) -> str:
    project = call.param("project")
    call.require_project(project, RESOURCE, action)
    return project


# Shared with the Harbor surface (api/harbor/immutability.py)


def add_rule(call: Call, project: str, rule: ImmutableRule) -> RuleRow:
    number, position = call.services.project_rules.add_immutable_rule(project, rule, call.context)
    call.settle(position)
    view = call.services.immutability
    return view.rule(view.rule_id(project, number))


def change_rule(call: Call, row: RuleRow, rule: ImmutableRule) -> RuleRow:
    call.settle(call.services.project_rules.change_immutable_rule(row.project, row.number, rule, call.context))
    return call.services.immutability.rule(row.id)


def remove_rule(call: Call, row: RuleRow) -> None:
    call.settle(call.services.project_rules.remove_immutable_rule(row.project, row.number, call.context))


def rule_of(call: Call, project: str, value: str) -> RuleRow:
    """The rule with id `value`, when it belongs to `project` (checked for permission first)."""
    row = by_id(call.services.immutability.rule, value)
    if row is None or row.project != project:
        raise Problem(404, "not-found", f"immutability rule {value} of project {project} not found")
    return row
