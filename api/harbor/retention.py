"""Tag retention, Harbor's way (/api/v2.0/retentions…): a project's retention policy as Harbor's
RetentionPolicy, its runs as executions, and each run's repositories as tasks with a log.

One policy per project, as in Harbor; its id is the project's id, which the project's
`metadata.retention_id` names. Rules translate one to one onto Portlog's (domain/retention.py):
Harbor's five templates, one doublestar tag selector (`matches` / `excludes`, with Harbor's
`extras` `{"untagged":…}`) and one doublestar repository selector (`repoMatches` /
`repoExcludes`, the name without the project). What Portlog would otherwise silently ignore —
another kind, a second selector, another action, algorithm or scope, unknown parameters — is
refused with a 400. Runs are synchronous: an execution is finished by the time it is listed, so
stopping one changes nothing. Tasks are the repositories a run deleted from (or, dry, would
delete from) or spared an artifact in, with their totals folded from the log as of the run.
Permissions are Harbor's `tag-retention`: project admins and maintainers.
"""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from api.harbor.common import (
    REPOSITORY_DECORATIONS,
    TAG_DECORATIONS,
    bad_request,
    body_of,
    doublestar_selector,
    empty,
    not_found,
    paged,
    paged_list,
)
from api.management.common import Call, field, json_response, page_params
from api.management.problems import Problem
from api.management.retention import RESOURCE
from api.request_input import as_id
from domain.cron import CronSchedule
from domain.immutability import Selector
from domain.retention import MAX_RULES, TEMPLATES, RetentionRule
from domain.retention_runs import RetentionRunner
from projections.access import ProjectRow
from projections.retention import PolicyRow, RunRow

ACTION, ALGORITHM, KIND, LEVEL, TRIGGER_KIND = "retain", "or", "doublestar", "project", "Schedule"
# decoration -> whether the selector excludes what its pattern matches
# Harbor templates that are one of Portlog's under another name (read back under Portlog's).
# Harbor's `latestActiveK` (most recently pushed or pulled) has no equivalent: refused.
TEMPLATE_ALIASES = {"lastXDays": "nDaysSinceLastPush"}
STATUS = {"running": "Running", "succeeded": "Success", "failed": "Error"}
STATUS_CODES = {"Running": 2, "Success": 3, "Error": 3}  # Harbor's job status codes (final: 3)
TRIGGERS = {"manual": "MANUAL", "cli": "MANUAL", "schedule": "SCHEDULE"}
DISPLAY = {"latestPushedK": ("the most recently pushed # artifacts", "COUNT"),
           "latestPulledN": ("the most recently pulled # artifacts", "COUNT"),
           "nDaysSinceLastPush": ("pushed within the last # days", "DAYS"),
           "nDaysSinceLastPull": ("pulled within the last # days", "DAYS"),
           "always": ("always", None)}
METADATA = {
    "templates": [{"rule_template": template, "display_text": text, "action": ACTION,
                   "params": [{"type": "int", "unit": unit, "required": True}] if unit else []}
                  for template, (text, unit) in DISPLAY.items()],
    "scope_selectors": [{"display_text": "Repositories", "kind": KIND, "decorations": list(REPOSITORY_DECORATIONS)}],
    "tag_selectors": [{"display_text": "Tags", "kind": KIND, "decorations": list(TAG_DECORATIONS)}],
}


def policy_json(project: ProjectRow, row: PolicyRow) -> dict:
    return {"id": project.id, "algorithm": ALGORITHM,
            "rules": [rule_json(number, RetentionRule.from_fields(fields))
                      for number, fields in enumerate(row.rules, 1)],
            "trigger": {"kind": TRIGGER_KIND, "settings": {"cron": harbor_cron(row.cron)}},
            "scope": {"level": LEVEL, "ref": project.id}}


def rule_json(number: int, rule: RetentionRule) -> dict:
    # Harbor's `untagged` extra selects untagged artifacts with `matches`, leaves them out with `excludes`.
    extras = orjson.dumps({"untagged": rule.untagged != rule.tags.excluding}).decode()
    return {"id": number, "priority": 0, "disabled": rule.disabled, "action": ACTION, "template": rule.template,
            "params": {rule.template: rule.param} if TEMPLATES[rule.template] else {},
            "tag_selectors": [_selector_json(rule.tags, TAG_DECORATIONS) | {"extras": extras}],
            "scope_selectors": {"repository": [_selector_json(rule.repositories, REPOSITORY_DECORATIONS)]}}


def execution_json(project: ProjectRow, row: RunRow) -> dict:
    return {"id": row.id, "policy_id": project.id, "start_time": row.started_at, "end_time": row.finished_at,
            "status": STATUS[row.status], "trigger": TRIGGERS.get(row.trigger, "MANUAL"), "dry_run": row.dry_run,
            "operator": row.actor}


def harbor_cron(cron: str | None) -> str:
    """Harbor's crons have six fields, seconds first: a five-field one gets its (implicit) 0 s."""
    if not cron:
        return ""
    return f"0 {cron}" if len(cron.split()) == 5 else cron


# The policy


def metadata(call: Call) -> Response:
    """What a policy may say: templates with their parameter, selector kinds and decorations."""
    return json_response(METADATA)


def create_policy(call: Call) -> Response:
    """Create the policy of the project `scope.ref` (201, Location /api/v2.0/retentions/{project id});
    409 when it has one already."""
    body = body_of(call)
    scope = body.get("scope")
    if not isinstance(scope, dict) or scope.get("level") != LEVEL:
        raise bad_request(f"scope must be {{\"level\": \"{LEVEL}\", \"ref\": <project id>}}: "
                          "Portlog has project-level retention policies only")
    ref = scope.get("ref")
    if not isinstance(ref, int) or isinstance(ref, bool) or ref <= 0:
        raise bad_request(f"invalid project id {ref!r} in scope.ref")
    project = _project(call, str(ref), "update")
    if call.services.retention.policy(project.name) is not None:
        raise Problem(409, "conflict", f"project {project.name} already has retention policy {project.id}")
    rules, cron = policy_of(body, project, None)
    call.settle(call.services.project_rules.set_retention(project.name, rules, cron, call.context))
    return empty(201, {"Location": f"{call.request.url.path.rstrip('/')}/{project.id}"})


def get_policy(call: Call) -> Response:
    project = _project(call, call.param("id"), "read")
    return json_response(policy_json(project, _policy(call, project)))


def update_policy(call: Call) -> Response:
    """Replace the rules and the schedule; `rules` or `trigger` left out keep theirs (null clears
    them, as Harbor's full replacement would). Terraform "deletes" a policy by sending no rules
    and an empty cron: the policy stays, doing nothing."""
    project = _project(call, call.param("id"), "update")
    current = _policy(call, project)
    body = body_of(call)
    if body.get("id") is not None and body["id"] != project.id:
        raise bad_request(f"the id in the body ({body['id']!r}) is not the retention id of the path ({project.id})")
    rules, cron = policy_of(body, project, current)
    call.settle(call.services.project_rules.set_retention(project.name, rules, cron, call.context))
    return empty()


def delete_policy(call: Call) -> Response:
    """Remove the policy; the project's executions stay listed (they are its history)."""
    project = _project(call, call.param("id"), "delete")
    _policy(call, project)
    call.settle(call.services.project_rules.remove_retention(project.name, call.context))
    return empty()


def policy_of(body: dict, project: ProjectRow, current: PolicyRow | None) -> tuple[list[RetentionRule], str | None]:
    """The rules and cron a RetentionPolicy body says; what it leaves out comes from `current`."""
    if body.get("algorithm") not in (None, ALGORITHM):
        raise bad_request(f"unsupported algorithm {body['algorithm']!r}: rules combine with {ALGORITHM!r} only")
    scope = body.get("scope")
    if scope is not None:
        if not isinstance(scope, dict) or scope.get("level") != LEVEL:
            raise bad_request(f"scope.level must be {LEVEL!r}: Portlog has project-level retention policies only")
        if scope.get("ref") is not None and scope["ref"] != project.id:
            raise bad_request(f"scope.ref {scope['ref']!r} is not project {project.name} ({project.id}): "
                              "a policy cannot move to another project")
    if current and "rules" not in body:
        rules = [RetentionRule.from_fields(fields) for fields in current.rules]
    else:
        raw_rules = body.get("rules") or []  # null: no rules, as Harbor reads it
        if not isinstance(raw_rules, list):
            raise bad_request("rules must be a list of rules")
        if len(raw_rules) > MAX_RULES:
            raise bad_request(f"only {MAX_RULES} rules are allowed at most")
        rules = [harbor_rule(raw, number) for number, raw in enumerate(raw_rules, 1)]
    for number, rule in enumerate(rules, 1):
        if rule in rules[:number - 1]:
            raise Problem(409, "conflict", f"rule {number} is the same as rule {rules.index(rule) + 1}")
    trigger = body.get("trigger")
    cron = current.cron if current and "trigger" not in body else _cron(trigger)
    return rules, cron


def harbor_rule(raw: object, number: int) -> RetentionRule:
    """Rule `number` (from 1) of a RetentionPolicy, as Portlog's."""
    where = f"rule {number}"
    if not isinstance(raw, dict):
        raise bad_request(f"{where} must be an object")
    if raw.get("action") not in (None, ACTION):
        raise bad_request(f"{where}: unsupported action {raw['action']!r}; supported: {ACTION!r}")
    template = raw.get("template")
    name = TEMPLATE_ALIASES.get(template, template) if isinstance(template, str) else None
    if name not in TEMPLATES:
        raise bad_request(f"{where}: unsupported template {template!r}; supported: {', '.join(TEMPLATES)}"
                          f" (and {', '.join(TEMPLATE_ALIASES)}, read back as {', '.join(TEMPLATE_ALIASES.values())})")
    param = _param(raw.get("params"), template, TEMPLATES[name] is not None, where)
    disabled = raw.get("disabled", False)
    if not isinstance(disabled, bool):
        raise bad_request(f"{where}: disabled must be true or false")
    tags, untagged = _tag_selector(raw.get("tag_selectors"), where)
    repositories = _repository_selector(raw.get("scope_selectors"), where)
    return RetentionRule(name, param, repositories, tags, untagged, disabled).checked()


def _param(params: object, template: str, wanted: bool, where: str) -> int | None:
    """Harbor keys a rule's one parameter by its template: {"latestPushedK": 10}."""
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise bad_request(f"{where}: params must be an object")
    unknown = sorted(set(params) - ({template} if wanted else set()))
    if unknown:
        takes = f"only {template!r}" if wanted else "none"
        raise bad_request(f"{where}: unsupported params {', '.join(map(repr, unknown))}; {template} takes {takes}")
    if not wanted:
        return None
    value = params.get(template)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if value is None:
        raise bad_request(f"{where}: missing required parameter {template!r} for template {template}")
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise bad_request(f"{where}: params.{template} must be a whole number, 0 or more")
    return value


def _tag_selector(raw: object, where: str) -> tuple[Selector, bool]:
    """The tag selector, and whether untagged artifacts are selected. Harbor's doublestar selector
    selects untagged artifacts when `extras` says {"untagged": true} with `matches`, or {"untagged":
    false} with `excludes`; without extras it selects them either way."""
    selector = _only(raw, f"{where}: tag_selectors")
    tags = doublestar_selector(selector, TAG_DECORATIONS, f"{where}: tag")
    extras = selector.get("extras")
    if extras in (None, ""):
        return tags, True
    try:
        values = orjson.loads(extras) if isinstance(extras, str) else None
    except orjson.JSONDecodeError:
        values = None
    untagged = values.get("untagged", False) if isinstance(values, dict) else None
    if not isinstance(untagged, bool) or set(values) - {"untagged"}:
        raise bad_request(f"{where}: tag selector extras must be a JSON string such as '{{\"untagged\":true}}', "
                          f"not {extras!r}")
    return tags, untagged != tags.excluding  # "{}" is untagged false, as Harbor reads it


def _repository_selector(raw: object, where: str) -> Selector:
    if not isinstance(raw, dict) or set(raw) - {"repository"}:
        raise bad_request(f"{where}: scope_selectors takes one repository selector only")
    selector = _only(raw.get("repository"), f"{where}: scope_selectors.repository")
    if selector.get("extras") not in (None, ""):
        raise bad_request(f"{where}: a repository selector takes no extras")
    return doublestar_selector(selector, REPOSITORY_DECORATIONS, f"{where}: repository")


def _only(selectors: object, name: str) -> dict:
    if not isinstance(selectors, list) or len(selectors) != 1 or not isinstance(selectors[0], dict):
        raise bad_request(f"{name} takes exactly one selector object (Portlog applies one pattern per rule)")
    return selectors[0]


def _selector_json(selector: Selector, decorations: dict[str, bool]) -> dict:
    decoration = next(name for name, excludes in decorations.items() if excludes == selector.excluding)
    return {"kind": KIND, "decoration": decoration, "pattern": selector.pattern}


def _cron(trigger: object) -> str | None:
    """{"kind": "Schedule", "settings": {"cron": "0 0 0 * * *"}}; an empty or absent cron: manual runs only."""
    if trigger is None:
        return None
    if not isinstance(trigger, dict) or trigger.get("kind") not in (None, "", TRIGGER_KIND):
        raise bad_request(f"trigger.kind must be {TRIGGER_KIND!r} (with an empty cron for manual runs only)")
    settings = trigger.get("settings") or {}
    cron = settings.get("cron") if isinstance(settings, dict) else None
    if cron is not None and not isinstance(cron, str):
        raise bad_request("trigger.settings.cron must be a cron expression, or empty")
    return str(CronSchedule.parse(cron)) if cron and cron.strip() else None


# Executions and their tasks


def start_execution(call: Call) -> Response:
    """Run the policy now (`dry_run`: only report); 201 with the Location of the execution."""
    project = _project(call, call.param("id"), "operate")
    dry_run = field(body_of(call), "dry_run", bool, False, False)
    run_id, position = call.services.retention_runner.run(project.name, dry_run, "manual", call.context)
    call.settle(position)
    row = call.services.retention.run_by_uuid(str(run_id))
    return empty(201, {"Location": f"{call.request.url.path.rstrip('/')}/{row.id}"})


def list_executions(call: Call) -> Response:
    """The project's retention runs, newest first (those of earlier policies included)."""
    project = _project(call, call.param("id"), "list")
    request = _paging(call.request)
    page, size = page_params(request)
    rows, total = call.services.retention.runs(project.name, (page - 1) * size, size)
    return paged(request, [execution_json(project, row) for row in rows], total, page, size)


def stop_execution(call: Call) -> Response:
    """`{"action": "stop"}`. Runs are synchronous, so the execution has finished: as Harbor does
    for a finished execution, nothing happens."""
    project = _project(call, call.param("id"), "operate")
    if body_of(call).get("action") != "stop":
        raise bad_request("action should be 'stop'")
    _run(call, project)
    return empty()


def list_tasks(call: Call) -> Response:
    """One task per repository the run deleted from (or, dry, would delete from) or spared an
    artifact in; repositories where the policy kept everything have none."""
    project = _project(call, call.param("id"), "list")
    return paged_list(_paging(call.request), [task for task, _ in _tasks(call, _run(call, project))])


def task_log(call: Call) -> Response:
    """What the run did in one repository, as text."""
    project = _project(call, call.param("id"), "read")
    row = _run(call, project)
    value = call.param("tid")
    found = [(task, entries) for task, entries in _tasks(call, row) if str(task["id"]) == value]
    if not found:
        raise not_found(f"task {value} of retention execution {row.id} not found")
    [(task, entries)] = found
    return PlainTextResponse(_log(row, task, entries))


def _tasks(call: Call, row: RunRow) -> list[tuple[dict, list[dict]]]:
    """(task, its deleted and skipped entries), by repository name. `total` counts the repository's
    artifacts folded from its events as of the moment the run judged (its start, or its `as_of`),
    `retained` those it did not delete (Harbor's meaning; every manifest counts here, index children
    and referrers included)."""
    entries = [dict(entry, deleted=True) for entry in row.deleted] + [dict(entry, deleted=False)
                                                                        for entry in row.skipped]
    names = sorted({entry["repository"] for entry in entries})
    moment = datetime.fromisoformat(row.as_of) if row.as_of else row.started_at
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    # A runner over just these repositories: Portlog's own fold of their events, as of `moment`.
    artifacts = RetentionRunner(call.services.registry, lambda _position, _project: names) \
        .artifacts_as_of(row.project, 0, moment) if names else {}
    status = STATUS[row.status]
    tasks = []
    for number, name in enumerate(names, 1):
        mine = [entry for entry in entries if entry["repository"] == name]
        digests = {a.digest for a in artifacts.get(name, [])} | {entry["digest"] for entry in mine}
        deleted = sum(1 for entry in mine if entry["deleted"])
        tasks.append(({"id": number, "execution_id": row.id, "repository": name.split("/", 1)[-1], "job_id": row.run,
                       "status": status, "status_code": STATUS_CODES[status], "status_revision": 0,
                       "start_time": row.started_at, "end_time": row.finished_at, "total": len(digests),
                       "retained": len(digests) - deleted}, mine))
    return tasks


def _log(row: RunRow, task: dict, entries: list[dict]) -> str:
    name = f"{row.project}/{task['repository']}"
    how = ", ".join([TRIGGERS.get(row.trigger, "MANUAL").lower(), f"by {row.actor}"]
                    + (["dry run"] if row.dry_run else []) + ([f"as of {row.as_of}"] if row.as_of else []))
    lines = [f"{_time(row.started_at)} retention execution {row.id} of project {row.project} ({how}): "
             f"repository {name}, {task['total']} artifacts"]
    for entry in entries:
        tags = f"tags: {', '.join(entry['tags'])}" if entry["tags"] else "untagged"
        if entry["deleted"]:
            lines.append(f"{'would delete' if row.dry_run else 'deleted'} {name}@{entry['digest']} ({tags})")
        else:
            lines.append(f"kept {name}@{entry['digest']} ({tags}): {entry.get('reason', '')}")
    removed = task["total"] - task["retained"]
    verb = "would be deleted" if row.dry_run else "deleted"
    end = f"{_time(row.finished_at)} " if row.finished_at else ""
    lines.append(f"{end}{task['status']}: {removed} {verb}, {task['retained']} retained of {task['total']}")
    return "\n".join(lines) + "\n"


def _time(moment: datetime) -> str:
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).isoformat()


def _paging(request: Request) -> Request:
    """The request without empty query parameters: harborapi's get_retention_tasks sends
    `page=&page_size=`, which Harbor reads as the defaults."""
    query = urlencode([(key, value) for key, value in request.query_params.multi_items() if value != ""])
    return Request({**request.scope, "query_string": query.encode()})


def _project(call: Call, value: str, action: str) -> ProjectRow:
    """The project a retention id (a project id) names, checked for `action` (unknown: 404 or refusal)."""
    number = as_id(value)
    row = call.services.access.project_by_id(number) if number is not None else None
    call.require_project(row.name if row else f"#{value}", RESOURCE, action)
    return row


def _policy(call: Call, project: ProjectRow) -> PolicyRow:
    row = call.services.retention.policy(project.name)
    if row is None:
        raise not_found(f"retention policy {project.id} not found: project {project.name} has none")
    return row


def _run(call: Call, project: ProjectRow) -> RunRow:
    value = call.param("eid")
    number = as_id(value)
    row = call.services.retention.run(number) if number is not None else None
    if row is None or row.project != project.name:
        raise not_found(f"retention execution {value} of policy {project.id} not found")
    return row
