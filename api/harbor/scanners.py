"""Scanner registrations, Harbor's way (/api/v2.0/scanners…) and each project's scanner
(/api/v2.0/projects/{project_name_or_id}/scanner…). Registrations are for system
administrators (Harbor's `scanner` resource); access credentials are stored sealed and never
shown. A registration's id is its uuid. The built-in `Portlog` registration can be neither
changed nor deleted (403), as Harbor's bundled Trivy."""

from __future__ import annotations

from starlette.responses import Response

from adapters.scanner_client import ScannerError, harbor_capabilities
from api.harbor.common import (
    bad_request,
    body_of,
    empty,
    filter_items,
    not_found,
    paged_list,
    parse_q,
    project_of,
    sort_items,
)
from api.management.common import Call, json_response
from api.management.problems import Problem
from background.scan_jobs import adapter_of
from domain.scanners import ScannerSettings
from projections.scanners import RegistrationRow

Q_FIELDS = {"name": "name", "description": "description", "url": "url", "uuid": "uuid", "isdefault": "is_default",
            "disabled": "disabled", "auth": "auth"}
SORTS = {"name", "url", "create_time", "update_time", "is_default", "disabled"}
HEALTHY, UNHEALTHY = "healthy", "unhealthy"


def scanner_json(row: RegistrationRow, metadata: dict | None = None, pinged: bool = False) -> dict:
    """Harbor's ScannerRegistration (never the credential); with the adapter's metadata when it
    was asked (`pinged`)."""
    body = {"uuid": row.uuid, "name": row.name, "description": row.description, "url": row.url,
            "disabled": row.disabled, "is_default": row.is_default, "auth": row.auth,
            "skip_certVerify": row.skip_cert_verify, "use_internal_addr": row.use_internal_addr,
            "create_time": row.created_at, "update_time": row.updated_at}
    if pinged:
        body["health"] = HEALTHY if metadata else UNHEALTHY
    if metadata:
        scanner = metadata["scanner"]
        body.update(adapter=scanner["name"], vendor=scanner["vendor"], version=scanner["version"],
                    capabilities=harbor_capabilities(metadata))
    return body


def list_scanners(call: Call) -> Response:
    """Registrations; `q` (name, description, url, uuid, is_default, disabled, auth), Harbor's
    older `name`, `description`, `url` (fuzzy) and `ex_name`, `ex_url` (exact), `sort`."""
    call.require_system("scanner", "list")
    return _registration_page(call)


def create_scanner(call: Call) -> Response:
    """ScannerRegistrationReq; the adapter must answer its metadata first (as Harbor checks)."""
    call.require_system("scanner", "create")
    body = body_of(call)
    name, settings = _text(body, "name"), _settings(body)
    call.require_outbound(settings.url)
    _metadata_or_400(call, settings)
    uuid, position = call.services.scanners.register(name, settings, call.context)
    call.settle(position)
    return empty(201, {"Location": f"{call.request.url.path.rstrip('/')}/{uuid}"})


def get_scanner(call: Call) -> Response:
    call.require_system("scanner", "read")
    row = _row(call)
    return json_response(scanner_json(row, _metadata_or_none(call, row), pinged=True))


def update_scanner(call: Call) -> Response:
    """ScannerRegistrationReq; an empty or absent `access_credential` keeps the stored one while
    the auth kind needs one (Harbor's rule)."""
    call.require_system("scanner", "update")
    row = _row(call)
    body = body_of(call)

    def change(name: str, current: ScannerSettings) -> tuple[str, ScannerSettings]:
        wanted = _settings(body, current)
        if not body.get("access_credential") and wanted.auth:
            wanted = ScannerSettings(**{**wanted.fields(), "access_credential": current.access_credential})
        return _text(body, "name", name), wanted

    call.require_outbound(body.get("url", row.url))
    call.settle(call.services.scanners.update(row.uuid, change, call.context))
    return empty()


def delete_scanner(call: Call) -> Response:
    """Deletes the registration; answers it as it was."""
    call.require_system("scanner", "delete")
    row = _row(call)
    call.settle(call.services.scanners.delete(row.uuid, call.context))
    return json_response(scanner_json(row))


def set_default_scanner(call: Call) -> Response:
    """`{"is_default": true}` makes it the system default; false changes nothing (as Harbor)."""
    call.require_system("scanner", "update")
    row = _row(call)
    is_default = body_of(call).get("is_default")
    if not isinstance(is_default, bool):
        raise bad_request("is_default must be true or false")
    if is_default and not row.is_default:
        call.settle(call.services.scanners.set_default(row.uuid, call.context))
    return empty()


def scanner_metadata(call: Call) -> Response:
    """The adapter's own metadata (503 when it does not answer)."""
    call.require_system("scanner", "read")
    row = _row(call)
    try:
        with adapter_of(call.services, call.services.scanners.get(row.uuid)) as adapter:
            metadata = adapter.metadata()
    except ScannerError as error:
        raise Problem(503, "scanner-unavailable", f"the scanner {row.name} did not answer: {error.message}") from None
    return json_response({"scanner": metadata["scanner"], "capabilities": [
        {"type": c.get("type") or "", "consumes_mime_types": c["consumes_mime_types"],
         "produces_mime_types": c["produces_mime_types"]} for c in metadata["capabilities"]],
        "properties": metadata.get("properties") or {}})


def ping_scanner(call: Call) -> Response:
    """ScannerRegistrationSettings (`name`, `url`, `auth`, `access_credential`): 200 when the
    adapter answers valid metadata with those settings, 400 with its answer otherwise."""
    call.require_system("scanner", "read")
    body = body_of(call)
    _text(body, "name")
    settings = _settings(body)
    call.require_outbound(settings.url)
    _metadata_or_400(call, settings)
    return empty()


# A project's scanner


def project_scanner(call: Call) -> Response:
    """The project's own scanner, or the system default (with the adapter's health)."""
    project = project_of(call, "scanner", "read")
    row = call.services.scanner_registrations.of_project(project.name)
    if row is None:
        raise not_found("no scanner is configured")
    return json_response(scanner_json(row, _metadata_or_none(call, row), pinged=True))


def set_project_scanner(call: Call) -> Response:
    """`{"uuid": …}`: one of the registrations scans the project's artifacts from now on."""
    project = project_of(call, "scanner", "create")
    uuid = body_of(call).get("uuid")
    if not isinstance(uuid, str) or not uuid:
        raise bad_request("uuid (a scanner registration's) is required")
    row = call.services.scanner_registrations.by_uuid(uuid)
    if row is None:
        raise not_found(f"scanner {uuid} not found")
    call.settle(call.services.registry.change_project(
        project.name, lambda aggregate: aggregate.choose_scanner(row.uuid, call.context)))
    return empty()


def scanner_candidates(call: Call) -> Response:
    """The registrations a project may choose from."""
    project_of(call, "scanner", "create")
    return _registration_page(call)


# Helpers


def _registration_page(call: Call) -> Response:
    params = call.request.query_params
    items = [scanner_json(row) for row in call.services.scanner_registrations.all()]
    for key in ("name", "description", "url"):
        if params.get(key):
            items = [item for item in items if params[key] in item[key]]
    for key in ("ex_name", "ex_url"):
        if params.get(key):
            items = [item for item in items if item[key[3:]] == params[key]]
    items = filter_items(items, parse_q(params.get("q")), Q_FIELDS)
    return paged_list(call.request, sort_items(items, params.get("sort"), SORTS))


def _row(call: Call) -> RegistrationRow:
    uuid = call.param("registration_id")
    row = call.services.scanner_registrations.by_uuid(uuid)
    if row is None:
        raise not_found(f"scanner {uuid} not found")
    return row


def _settings(body: dict, current: ScannerSettings | None = None) -> ScannerSettings:
    current = current or ScannerSettings("")
    settings = ScannerSettings(
        url=body.get("url", current.url), description=_text(body, "description", current.description),
        auth=body.get("auth", current.auth) or "", access_credential=body.get("access_credential") or None,
        # Harbor's JSON says skip_certVerify; clients that serialise by field name send skip_cert_verify.
        skip_cert_verify=_flag(body, "skip_certVerify", _flag(body, "skip_cert_verify", current.skip_cert_verify)),
        use_internal_addr=_flag(body, "use_internal_addr", current.use_internal_addr),
        disabled=_flag(body, "disabled", current.disabled))
    if current.url and not body.get("access_credential"):
        return settings  # the stored credential is put back by the caller
    return settings.checked()


def _metadata_or_400(call: Call, settings: ScannerSettings) -> dict:
    try:
        with call.services.scanner_client(settings.url, settings.auth, settings.access_credential,
                                          settings.skip_cert_verify) as adapter:
            return adapter.metadata()
    except ScannerError as error:
        raise bad_request(f"failed to ping the scanner at {settings.url}: {error.message}") from None


def _metadata_or_none(call: Call, row: RegistrationRow) -> dict | None:
    try:
        with adapter_of(call.services, call.services.scanners.get(row.uuid)) as adapter:
            return adapter.metadata()
    except ScannerError:
        return None


def _flag(body: dict, name: str, default: bool) -> bool:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad_request(f"{name} must be true or false")
    return value


def _text(body: dict, name: str, default: str | None = None) -> str:
    value = body.get(name, default)
    if value is None:
        raise bad_request(f"{name} is required")
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a string")
    return value
