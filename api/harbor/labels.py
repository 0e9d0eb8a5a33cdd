"""Labels, Harbor's way (/api/v2.0/labels…): global labels (scope g: system administrators manage
them, every signed-in principal sees them) and project labels (scope p: the project's admins and
maintainers manage them, its members see them; Harbor's `label` resource). Putting labels on
artifacts and taking them off is in api/harbor/repositories.py (`artifact-label`). A label's name
is its identity: a rename is refused (400), where Harbor would rename."""

from __future__ import annotations

from starlette.responses import Response

from api.harbor.common import (
    PREFIX,
    bad_request,
    body_of,
    empty,
    filter_items,
    not_found,
    paged_list,
    parse_q,
    sort_items,
)
from api.management.common import Call, json_response
from api.request_input import MAX_BIGINT, as_id
from domain.labels import GLOBAL, PROJECT, SCOPES, LabelKey
from projections.access import ProjectRow
from projections.labels import LabelRow

RESOURCE = "label"
Q_FIELDS = {"name": "name", "id": "id"}
SORTS = {"id", "name", "creation_time", "update_time"}


def label_json(row: LabelRow, project_id: int) -> dict:
    """`project_id`: the id of the label's project (project labels)."""
    return {"id": row.id, "name": row.name, "description": row.description, "color": row.color,
            "scope": row.scope, "project_id": project_id if row.scope == PROJECT else 0,
            "creation_time": row.created_at, "update_time": row.updated_at, "deleted": False}


def list_labels(call: Call) -> Response:
    """Labels of one scope: `scope` g, or p with `project_id`; `name` (contains), `q` (name, id),
    `sort` (id, name, creation_time, update_time)."""
    params = call.request.query_params
    scope = params.get("scope")
    if scope not in SCOPES:
        raise bad_request(f"invalid scope {scope!r}: g (global labels) or p (a project's, with project_id)")
    project = _project(call, params.get("project_id"), "list") if scope == PROJECT else None
    rows = call.services.labels.labels(scope, project.name if project else None, params.get("name"))
    items = [label_json(row, project.id if project else 0) for row in rows]
    items = filter_items(items, parse_q(params.get("q")), Q_FIELDS)
    return paged_list(call.request, sort_items(items, params.get("sort"), SORTS))


def create_label(call: Call) -> Response:
    """`name`, `scope` (g or p), `project_id` (project labels), `color`, `description`; 409 for a
    name the scope (the project) has already."""
    body = body_of(call)
    scope = body.get("scope")
    if scope not in SCOPES:
        raise bad_request(f"invalid scope {scope!r}: g (a global label) or p (a project's, with project_id)")
    if scope == GLOBAL:
        call.require_system(RESOURCE, "create")
        key = LabelKey(GLOBAL, None, body.get("name"))
    else:
        key = LabelKey(PROJECT, _project(call, body.get("project_id"), "create").name, body.get("name"))
    call.settle(call.services.labelling.create(key, _text(body, "color"), _text(body, "description"), call.context))
    return empty(201, {"Location": f"{PREFIX}/labels/{call.services.labels.by_key(key).id}"})


def get_label(call: Call) -> Response:
    row = _row(call, "read")
    return json_response(label_json(row, _project_id(call, row)))


def update_label(call: Call) -> Response:
    """`color`, `description` (left out: kept); a `name` must be the label's own."""
    row = _row(call, "update")
    body = body_of(call)
    if body.get("name") not in (None, row.name):
        raise bad_request("a label cannot be renamed (its name is its identity); create another label")
    call.settle(call.services.labelling.update(row.key, _text(body, "color", row.color),
                                               _text(body, "description", row.description), call.context))
    return empty()


def delete_label(call: Call) -> Response:
    """Delete a label; it is taken off every artifact that carries it."""
    row = _row(call, "delete")
    # The artifacts that carry it are found through the read model: with what other nodes wrote too.
    call.services.projections.catch_up()
    call.settle(call.services.labelling.delete(row.key, call.context))
    return empty()


def label_by_id(call: Call, label_id: int) -> LabelRow:
    row = call.services.labels.by_id(label_id)
    if row is None:
        raise not_found(f"label {label_id} not found")
    return row


def _row(call: Call, action: str) -> LabelRow:
    """The label of the path, once the caller may act on it: anyone signed in reads a global
    label; changing one is for system administrators; a project label is its project's."""
    text = call.param("label_id")
    label_id = as_id(text)
    if label_id is None:
        raise not_found(f"label {text} not found")
    row = label_by_id(call, label_id)
    if row.scope == PROJECT:
        call.require_project(row.project, RESOURCE, action)
    elif action != "read":
        call.require_system(RESOURCE, action)
    return row


def _project(call: Call, value: object, action: str) -> ProjectRow:
    """The project a `project_id` names, once the caller may act on its labels."""
    if isinstance(value, str):
        value = as_id(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_BIGINT:
        raise bad_request("project labels need the id of their project (project_id)")
    row = call.services.access.project_by_id(value)
    # '#<id>' is no project name: an unknown id takes the path of an unknown project.
    call.require_project(row.name if row else f"#{value}", RESOURCE, action)
    return row


def _project_id(call: Call, row: LabelRow) -> int:
    project = call.services.access.project(row.project) if row.project else None
    return project.id if project else 0


def _text(body: dict, name: str, default: str = "") -> str:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a string")
    return value
