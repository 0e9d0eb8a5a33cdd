"""Tag immutability rules of a project, Harbor's way
(/api/v2.0/projects/{project_name_or_id}/immutabletagrules…): Harbor's ImmutableRule with one
doublestar tag selector (`matches` / `excludes`) and one repository scope selector
(`repoMatches` / `repoExcludes`). Harbor applies only the first selector of each and knows only
doublestar; Portlog refuses, with a 400, what it would otherwise silently ignore. Permissions are
Harbor's `immutable-tag`: project admins and maintainers.
"""

from __future__ import annotations

from starlette.responses import Response

from api.harbor.common import (
    REPOSITORY_DECORATIONS,
    TAG_DECORATIONS,
    bad_request,
    body_of,
    doublestar_selector,
    empty,
    filter_items,
    paged_list,
    parse_q,
    project_of,
    sort_items,
)
from api.management.common import Call, field
from api.management.immutability import RESOURCE, add_rule, change_rule, remove_rule, rule_of
from domain.immutability import ImmutableRule, Selector
from projections.access import ProjectRow
from projections.immutability import RuleRow

ACTION, TEMPLATE, KIND = "immutable", "immutable_template", "doublestar"
Q_FIELDS = {"id": "id", "disabled": "disabled", "priority": "priority"}
SORTS = {"id", "priority"}


def rule_json(project: ProjectRow, row: RuleRow) -> dict:
    return {"id": row.id, "project_id": project.id, "disabled": row.disabled, "priority": row.priority,
            "action": ACTION, "template": TEMPLATE, "params": {},
            "tag_selectors": [_selector_json(row.tags, row.exclude_tags, TAG_DECORATIONS)],
            "scope_selectors": {"repository": [
                _selector_json(row.repositories, row.exclude_repositories, REPOSITORY_DECORATIONS)]}}


def list_rules(call: Call) -> Response:
    """A project's immutability rules; `q` (id, disabled, priority), `sort` (id, priority)."""
    project = project_of(call, RESOURCE, "list")
    params = call.request.query_params
    items = [rule_json(project, row) for row in call.services.immutability.rules(project.name)]
    items = filter_items(items, parse_q(params.get("q")), Q_FIELDS)
    return paged_list(call.request, sort_items(items, params.get("sort"), SORTS))


def create_rule(call: Call) -> Response:
    """Add a rule: `tag_selectors`, `scope_selectors.repository`, `disabled`, `priority`."""
    project = project_of(call, RESOURCE, "create")
    row = add_rule(call, project.name, harbor_rule(body_of(call), None))
    return empty(201, {"Location": f"{call.request.url.path.rstrip('/')}/{row.id}"})


def update_rule(call: Call) -> Response:
    """Change a rule, or only enable or disable it (a body with `disabled` alone)."""
    project = project_of(call, RESOURCE, "update")
    row = rule_of(call, project.name, call.param("rule_id"))
    body = body_of(call)
    if body.get("id") is not None and body["id"] != row.id:
        raise bad_request("the immutable_rule_id doesn't match the id in the body")
    change_rule(call, row, harbor_rule(body, row.rule))
    return empty()


def delete_rule(call: Call) -> Response:
    """Delete a rule."""
    project = project_of(call, RESOURCE, "delete")
    remove_rule(call, rule_of(call, project.name, call.param("rule_id")))
    return empty()


def harbor_rule(body: dict, current: ImmutableRule | None) -> ImmutableRule:
    """The rule a body describes; what it leaves out comes from `current` (an update)."""
    for name, fixed in (("action", ACTION), ("template", TEMPLATE)):
        if body.get(name) not in (None, fixed):
            raise bad_request(f"{name} must be {fixed!r}")
    tags = _tag_selector(body) or _required(current and current.tags, "tag_selectors")
    repositories = _repository_selector(body) or _required(current and current.repositories,
                                                           "scope_selectors.repository")
    disabled = field(body, "disabled", bool, False, current.disabled if current else False)
    priority = field(body, "priority", int, False, current.priority if current else 0)
    return ImmutableRule(repositories, tags, disabled, priority)


def _tag_selector(body: dict) -> Selector | None:
    raw = body.get("tag_selectors")
    return None if raw is None else doublestar_selector(_only(raw, "tag_selectors"), TAG_DECORATIONS, "tag")


def _repository_selector(body: dict) -> Selector | None:
    scopes = body.get("scope_selectors")
    if scopes is None:
        return None
    if not isinstance(scopes, dict) or set(scopes) - {"repository"}:
        raise bad_request("scope_selectors takes only a repository selector")
    raw = scopes.get("repository")
    return None if raw is None else doublestar_selector(_only(raw, "scope_selectors.repository"),
                                                        REPOSITORY_DECORATIONS, "repository")


def _only(selectors: object, name: str) -> object:
    if not isinstance(selectors, list) or len(selectors) != 1:
        raise bad_request(f"{name} takes exactly one selector (Harbor applies only the first)")
    return selectors[0]


def _selector_json(pattern: str, excluding: bool, decorations: dict[str, bool]) -> dict:
    decoration = next(name for name, excludes in decorations.items() if excludes == excluding)
    return {"kind": KIND, "decoration": decoration, "pattern": pattern}


def _required(value: Selector | None, name: str) -> Selector:
    if value is None:
        raise bad_request(f"{name} is required")
    return value
