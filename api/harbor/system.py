"""Harbor's system endpoints: /health (every component, api/health.py), /systeminfo,
/systeminfo/volumes and /statistics, in Harbor's shapes (OverallHealthStatus, GeneralInfo,
SystemInfo, Statistic)."""

from __future__ import annotations

from datetime import datetime, timezone

from starlette.responses import Response

from api import health
from api.management.common import Call, json_response
from api.management.problems import Problem
from config.bootstrap import portlog_version
from domain.configuration import OIDC_AUTH


def get_health(call: Call) -> Response:
    """Open to anyone, as Harbor's: 200 whatever the status (a probe that needs a failing status
    code asks /readyz)."""
    checked = health.components(call.services)
    return json_response({"status": health.overall(checked), "components": [c.to_json() for c in checked]})


def system_info(call: Call) -> Response:
    """Anonymous callers get what a login page needs; signed-in ones the rest, as Harbor splits
    them — except the version, which Portlog tells only signed-in callers (it helps attackers)."""
    services = call.services
    config = services.configuration()
    info = {"auth_mode": config.auth_mode, "primary_auth_mode": False, "self_registration": config.self_registration,
            "banner_message": "", "oidc_provider_name": config.oidc_name if config.auth_mode == OIDC_AUTH else ""}
    if call.principal.is_anonymous:
        return json_response(info)
    settings = services.settings
    external_url = settings.external_url or str(call.request.base_url).rstrip("/")
    return json_response({
        **info, "harbor_version": portlog_version(), "current_time": datetime.now(timezone.utc),
        "registry_url": settings.external_url.split("://", 1)[1] if settings.external_url else call.request.url.netloc,
        "external_url": external_url, "project_creation_restriction": config.project_creation_restriction,
        "has_ca_root": False, "registry_storage_provider_name": services.blobs.name,
        "read_only": bool(config.read_only) or services.follow.following(),
        "notification_enable": True, "with_chartmuseum": False,
    })


def volumes(call: Call) -> Response:
    """System administrators only, as Harbor. S3 has no volume to measure: an empty list."""
    if not call.principal.system_admin:
        raise Problem(403, "forbidden", "only system administrators may read the storage volumes")
    capacity = call.services.blobs.capacity()
    storage = [] if capacity is None else [{"total": capacity[0], "free": capacity[1]}]
    return json_response({"storage": storage})


def statistics(call: Call) -> Response:
    """Counts of the projects and repositories the caller can see (public ones, and private ones
    it is a member of); totals and the storage consumed (the projects' quota usage) for system
    administrators only, as Harbor."""
    if call.principal.is_anonymous:
        raise Problem(401, "unauthorized", "sign in to read the statistics")
    services = call.services
    rows, _ = services.access.projects(0, 1 << 31, visible_to=call.principal)
    counts = {"public": [0, 0], "private": [0, 0]}  # projects, repositories
    for row in rows:
        tally = counts["public" if row.public else "private"]
        tally[0] += 1
        tally[1] += services.catalog.repository_count(row.name)
    body = {"public_project_count": counts["public"][0], "public_repo_count": counts["public"][1],
            "private_project_count": counts["private"][0], "private_repo_count": counts["private"][1]}
    if call.principal.system_admin:
        body.update(total_project_count=len(rows), total_repo_count=counts["public"][1] + counts["private"][1],
                    total_storage_consumption=sum(usage.storage_bytes for usage, _ in services.quotas.all_usage()))
    return json_response(body)
