"""Every Harbor API v2.0 route in one table. docs/harbor-api.md lists what is covered."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from api.harbor import (
    audit,
    configurations,
    cve_allowlists,
    gc,
    immutability,
    labels,
    members,
    projects,
    quotas,
    registries,
    replication,
    repositories,
    retention,
    robots,
    scanners,
    scans,
    users,
    webhooks,
)
from api.harbor.common import PREFIX, harbor_endpoint, harbor_error

P = f"{PREFIX}/projects/{{project}}"
REPO = f"{P}/repositories/{{repository:path}}"
ART = f"{REPO}/artifacts/{{reference}}"
RET = f"{PREFIX}/retentions/{{id}}"


async def ping(request: Request) -> Response:
    return PlainTextResponse("Pong")


async def not_supported(request: Request) -> Response:
    return harbor_error(404, f"{request.method} {request.url.path} is not part of Portlog's Harbor API "
                             "(see docs/harbor-api.md)")


# path, method, handler, allows anonymous callers. Specific paths come before the
# `{repository:path}` ones they would otherwise be swallowed by.
ROUTES = [
    (f"{PREFIX}/projects", "HEAD", projects.project_exists, False),
    (f"{PREFIX}/projects", "GET", projects.list_projects, True),
    (f"{PREFIX}/projects", "POST", projects.create_project, False),
    (f"{P}", "GET", projects.get_project, True),
    (f"{P}", "PUT", projects.update_project, False),
    (f"{P}", "DELETE", projects.delete_project, False),
    (f"{P}/summary", "GET", projects.project_summary, True),
    (f"{P}/_deletable", "GET", projects.project_deletable, False),
    (f"{P}/members", "GET", members.list_members, False),
    (f"{P}/members", "POST", members.add_member, False),
    (f"{P}/members/{{mid}}", "GET", members.get_member, False),
    (f"{P}/members/{{mid}}", "PUT", members.update_member, False),
    (f"{P}/members/{{mid}}", "DELETE", members.remove_member, False),
    (f"{P}/logs", "GET", audit.project_logs, False),
    (f"{P}/webhook/policies", "GET", webhooks.list_policies, False),
    (f"{P}/webhook/policies", "POST", webhooks.create_webhook_policy, False),
    (f"{P}/webhook/policies/{{policy_id}}", "GET", webhooks.get_webhook_policy, False),
    (f"{P}/webhook/policies/{{policy_id}}", "PUT", webhooks.update_webhook_policy, False),
    (f"{P}/webhook/policies/{{policy_id}}", "DELETE", webhooks.delete_webhook_policy, False),
    (f"{P}/webhook/policies/{{policy_id}}/executions", "GET", webhooks.list_executions, False),
    (f"{P}/webhook/policies/{{policy_id}}/executions/{{execution_id}}/tasks", "GET", webhooks.list_tasks, False),
    (f"{P}/webhook/policies/{{policy_id}}/executions/{{execution_id}}/tasks/{{task_id}}/log", "GET",
     webhooks.task_log, False),
    (f"{P}/webhook/events", "GET", webhooks.supported_event_types, False),
    (f"{P}/webhook/lasttrigger", "GET", webhooks.last_triggers, False),
    (f"{P}/scanner", "GET", scanners.project_scanner, True),
    (f"{P}/scanner", "PUT", scanners.set_project_scanner, False),
    (f"{P}/scanner/candidates", "GET", scanners.scanner_candidates, False),
    (f"{P}/immutabletagrules", "GET", immutability.list_rules, False),
    (f"{P}/immutabletagrules", "POST", immutability.create_rule, False),
    (f"{P}/immutabletagrules/{{rule_id}}", "PUT", immutability.update_rule, False),
    (f"{P}/immutabletagrules/{{rule_id}}", "DELETE", immutability.delete_rule, False),
    (f"{P}/repositories", "GET", repositories.list_repositories, True),
    (f"{ART}/tags/{{tag}}", "DELETE", repositories.delete_tag, False),
    (f"{ART}/labels", "POST", repositories.add_artifact_label, False),
    (f"{ART}/labels/{{label_id}}", "DELETE", repositories.remove_artifact_label, False),
    (f"{ART}/tags", "GET", repositories.list_tags, True),
    (f"{ART}/scan", "POST", scans.scan_artifact, False),
    (f"{ART}/scan/stop", "POST", scans.stop_scan, False),
    (f"{ART}/scan/{{report_id}}/log", "GET", scans.scan_log, True),
    (f"{ART}/additions/vulnerabilities", "GET", scans.vulnerabilities, True),
    (f"{ART}/additions/sbom", "GET", scans.sbom, True),
    (f"{ART}/tags", "POST", repositories.create_tag, False),
    (f"{ART}", "GET", repositories.get_artifact, True),
    (f"{ART}", "DELETE", repositories.delete_artifact, False),
    (f"{REPO}/artifacts", "GET", repositories.list_artifacts, True),
    (f"{REPO}", "GET", repositories.get_repository, True),
    (f"{REPO}", "DELETE", repositories.delete_repository, False),
    (f"{PREFIX}/repositories", "GET", repositories.list_all_repositories, True),
    (f"{PREFIX}/users", "GET", users.list_users, False),
    (f"{PREFIX}/users", "POST", users.create_user, False),
    (f"{PREFIX}/users/search", "GET", users.search_users, False),
    (f"{PREFIX}/users/current", "GET", users.current_user, False),
    (f"{PREFIX}/users/current/permissions", "GET", users.current_permissions, True),
    (f"{PREFIX}/users/{{user_id}}", "GET", users.get_user, False),
    (f"{PREFIX}/users/{{user_id}}", "PUT", users.update_user, False),
    (f"{PREFIX}/users/{{user_id}}", "DELETE", users.delete_user, False),
    (f"{PREFIX}/users/{{user_id}}/password", "PUT", users.set_password, False),
    (f"{PREFIX}/users/{{user_id}}/sysadmin", "PUT", users.set_sysadmin, False),
    (f"{PREFIX}/users/{{user_id}}/cli_secret", "PUT", users.set_cli_secret, False),
    (f"{PREFIX}/robots", "GET", robots.list_robots, False),
    (f"{PREFIX}/robots", "POST", robots.create_robot, False),
    (f"{PREFIX}/robots/{{robot_id}}", "GET", robots.get_robot, False),
    (f"{PREFIX}/robots/{{robot_id}}", "PUT", robots.update_robot, False),
    (f"{PREFIX}/robots/{{robot_id}}", "PATCH", robots.refresh_secret, False),
    (f"{PREFIX}/robots/{{robot_id}}", "DELETE", robots.delete_robot, False),
    (f"{PREFIX}/audit-logs", "GET", audit.audit_logs, False),
    (f"{PREFIX}/labels", "GET", labels.list_labels, False),
    (f"{PREFIX}/labels", "POST", labels.create_label, False),
    (f"{PREFIX}/labels/{{label_id}}", "GET", labels.get_label, False),
    (f"{PREFIX}/labels/{{label_id}}", "PUT", labels.update_label, False),
    (f"{PREFIX}/labels/{{label_id}}", "DELETE", labels.delete_label, False),
    (f"{PREFIX}/configurations", "GET", configurations.get_configurations, False),
    (f"{PREFIX}/configurations", "PUT", configurations.update_configurations, False),
    (f"{PREFIX}/registries", "GET", registries.list_registries, False),
    (f"{PREFIX}/registries", "POST", registries.create_registry, False),
    (f"{PREFIX}/registries/ping", "POST", registries.ping_registry, False),
    (f"{PREFIX}/registries/{{registry_id}}", "GET", registries.get_registry, False),
    (f"{PREFIX}/registries/{{registry_id}}", "PUT", registries.update_registry, False),
    (f"{PREFIX}/registries/{{registry_id}}", "DELETE", registries.delete_registry, False),
    (f"{PREFIX}/registries/{{registry_id}}/info", "GET", registries.registry_info, False),
    (f"{PREFIX}/replication/policies", "GET", replication.list_policies, False),
    (f"{PREFIX}/replication/policies", "POST", replication.create_policy, False),
    (f"{PREFIX}/replication/policies/{{policy_id}}", "GET", replication.get_policy, False),
    (f"{PREFIX}/replication/policies/{{policy_id}}", "PUT", replication.update_policy, False),
    (f"{PREFIX}/replication/policies/{{policy_id}}", "DELETE", replication.delete_policy, False),
    (f"{PREFIX}/replication/executions", "GET", replication.list_executions, False),
    (f"{PREFIX}/replication/executions", "POST", replication.start_execution, False),
    (f"{PREFIX}/replication/executions/{{execution_id}}", "GET", replication.get_execution, False),
    (f"{PREFIX}/replication/executions/{{execution_id}}", "PUT", replication.stop_execution, False),
    (f"{PREFIX}/replication/executions/{{execution_id}}/tasks", "GET", replication.list_tasks, False),
    (f"{PREFIX}/replication/executions/{{execution_id}}/tasks/{{task_id}}/log", "GET", replication.task_log, False),
    (f"{PREFIX}/replication/executions/{{execution_id}}/tasks/{{task_id}}/retry", "POST", replication.retry_task,
     False),
    (f"{PREFIX}/replication/adapters", "GET", registries.adapters, False),
    (f"{PREFIX}/replication/adapterinfos", "GET", registries.adapter_infos, False),
    (f"{PREFIX}/quotas", "GET", quotas.list_quotas, False),
    (f"{PREFIX}/quotas/{{quota_id}}", "GET", quotas.get_quota, False),
    (f"{PREFIX}/quotas/{{quota_id}}", "PUT", quotas.update_quota, False),
    (f"{PREFIX}/system/CVEAllowlist", "GET", cve_allowlists.get_system_allowlist, False),
    (f"{PREFIX}/system/CVEAllowlist", "PUT", cve_allowlists.put_system_allowlist, False),
    (f"{PREFIX}/system/gc", "GET", gc.list_history, False),
    (f"{PREFIX}/system/gc/schedule", "GET", gc.get_schedule, False),
    (f"{PREFIX}/system/gc/schedule", "POST", gc.create_schedule, False),
    (f"{PREFIX}/system/gc/schedule", "PUT", gc.update_schedule, False),
    (f"{PREFIX}/system/gc/{{gc_id}}", "GET", gc.get_run, False),
    (f"{PREFIX}/system/gc/{{gc_id}}/log", "GET", gc.run_log, False),
    (f"{PREFIX}/scanners", "GET", scanners.list_scanners, False),
    (f"{PREFIX}/scanners", "POST", scanners.create_scanner, False),
    (f"{PREFIX}/scanners/ping", "POST", scanners.ping_scanner, False),
    (f"{PREFIX}/scanners/{{registration_id}}", "GET", scanners.get_scanner, False),
    (f"{PREFIX}/scanners/{{registration_id}}", "PUT", scanners.update_scanner, False),
    (f"{PREFIX}/scanners/{{registration_id}}", "DELETE", scanners.delete_scanner, False),
    (f"{PREFIX}/scanners/{{registration_id}}", "PATCH", scanners.set_default_scanner, False),
    (f"{PREFIX}/scanners/{{registration_id}}/metadata", "GET", scanners.scanner_metadata, False),
    (f"{PREFIX}/system/scanAll/schedule", "GET", scans.get_scan_all_schedule, False),
    (f"{PREFIX}/system/scanAll/schedule", "POST", scans.create_scan_all_schedule, False),
    (f"{PREFIX}/system/scanAll/schedule", "PUT", scans.update_scan_all_schedule, False),
    (f"{PREFIX}/system/scanAll/stop", "POST", scans.stop_scan_all_job, False),
    (f"{PREFIX}/scans/all/metrics", "GET", scans.scan_all_metrics, False),
    (f"{PREFIX}/scans/schedule/metrics", "GET", scans.scheduled_scan_all_metrics, False),
    (f"{PREFIX}/retentions/metadatas", "GET", retention.metadata, False),
    (f"{PREFIX}/retentions", "POST", retention.create_policy, False),
    (f"{RET}", "GET", retention.get_policy, False),
    (f"{RET}", "PUT", retention.update_policy, False),
    (f"{RET}", "DELETE", retention.delete_policy, False),
    (f"{RET}/executions", "GET", retention.list_executions, False),
    (f"{RET}/executions", "POST", retention.start_execution, False),
    (f"{RET}/executions/{{eid}}", "PATCH", retention.stop_execution, False),
    (f"{RET}/executions/{{eid}}/tasks", "GET", retention.list_tasks, False),
    (f"{RET}/executions/{{eid}}/tasks/{{tid}}", "GET", retention.task_log, False),
]


def harbor_routes() -> list[Route]:
    routes = [Route(path, harbor_endpoint(handler, anonymous), methods=[method])
              for path, method, handler, anonymous in ROUTES]
    return routes + [Route(f"{PREFIX}/ping", ping, methods=["GET"]),
                     Route(f"{PREFIX}/{{rest:path}}", not_supported, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])]
