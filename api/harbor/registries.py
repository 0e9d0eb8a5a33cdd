"""Registry endpoints, Harbor's way (/api/v2.0/registries…, /api/v2.0/replication/adapters):
the peers of replication and proxy-cache projects. System administrators only (Harbor's
`registry` resource). Passwords are stored sealed and never shown (`*****`)."""

from __future__ import annotations

from starlette.responses import Response

from api.harbor.common import bad_request, body_of, empty, filter_items, not_found, paged_list, parse_q, sort_items
from api.management.common import Call, json_response
from api.management.problems import Problem
from api.request_input import by_id
from domain.registries import REGISTRY_TYPES, EndpointSettings
from projections.registries import EndpointRow

MASK = "*****"
Q_FIELDS = {"name": "name", "id": "id", "url": "url", "type": "type"}
SORTS = {"id", "name", "creation_time", "update_time"}
DESCRIPTIONS = {"docker-registry": "a registry speaking the Distribution API (CNCF Distribution, Zot, …)",
                "harbor": "a Harbor instance", "portlog": "another Portlog"}


def registry_json(row: EndpointRow) -> dict:
    return {"id": row.id, "name": row.name, "url": row.url, "type": row.type, "insecure": row.insecure,
            "description": row.description,
            "credential": {"type": "basic", "access_key": row.access_key or "",
                           "access_secret": MASK if row.has_secret else ""},
            "creation_time": row.created_at, "update_time": row.updated_at}


def list_registries(call: Call) -> Response:
    """Endpoints; `q` (name, id, url, type), `name` (fuzzy), `sort`."""
    call.require_system("registry", "list")
    params = call.request.query_params
    items = [registry_json(row) for row in call.services.registries.all()]
    if params.get("name"):
        items = [item for item in items if params["name"] in item["name"]]
    items = filter_items(items, parse_q(params.get("q")), Q_FIELDS)
    return paged_list(call.request, sort_items(items, params.get("sort"), SORTS))


def create_registry(call: Call) -> Response:
    """`name`, `url`, `type`, `insecure`, `description`, `credential` {`access_key`, `access_secret`}."""
    call.require_system("registry", "create")
    body = body_of(call)
    credential = _credential(body.get("credential"))
    settings = EndpointSettings(body.get("url"), body.get("type"), body.get("insecure", False),
                                _text(body, "description"), *credential)
    name = body.get("name")
    call.require_outbound(settings.url)
    call.settle(call.services.endpoints.add(name, settings, call.context))
    row = call.services.registries.by_name(name)
    return empty(201, {"Location": f"{call.request.url.path.rstrip('/')}/{row.id}"})


def get_registry(call: Call) -> Response:
    call.require_system("registry", "read")
    return json_response(registry_json(_row(call)))


def update_registry(call: Call) -> Response:
    """Harbor's RegistryUpdate: `name` (no renames), `url`, `description`, `insecure`,
    `access_key`, `access_secret` (left out: kept)."""
    call.require_system("registry", "update")
    row = _row(call)
    body = body_of(call)
    if body.get("name") not in (None, row.name):
        raise bad_request("a registry endpoint cannot be renamed; create another one")

    def change(current: EndpointSettings) -> EndpointSettings:
        return EndpointSettings(
            body.get("url", current.url), current.type, body.get("insecure", current.insecure),
            _text(body, "description", current.description), body.get("access_key", current.access_key),
            body.get("access_secret") if body.get("access_secret") not in (None, MASK) else current.access_secret)

    call.require_outbound(body.get("url", row.url))
    call.settle(call.services.endpoints.update(row.name, change, call.context))
    return empty()


def delete_registry(call: Call) -> Response:
    call.require_system("registry", "delete")
    row = _row(call)
    users = call.services.replication.using_endpoint(row.name)
    if users:
        raise Problem(409, "conflict", f"the registry {row.name} is used by replication policies: {', '.join(users)}")
    projects = call.services.access.proxy_projects(row.name)
    if projects:
        raise Problem(409, "conflict", f"the registry {row.name} is the upstream of proxy-cache projects: "
                                       f"{', '.join(projects)}")
    call.settle(call.services.endpoints.delete(row.name, call.context))
    return empty()


def ping_registry(call: Call) -> Response:
    """Test a connection: an endpoint by `id`, or `url`, `type`, `access_key`, `access_secret`,
    `insecure` (what the form holds before it is saved). 200 when the peer answered and took the
    credentials; 400 with the peer's answer otherwise."""
    call.require_system("registry", "create")
    body = body_of(call)
    services = call.services
    if body.get("id") is not None:
        row = services.registries.by_id(body["id"]) if type(body["id"]) is int else None  # not a bool
        if row is None:
            raise not_found(f"registry {body['id']} not found")
        username, password = services.endpoints.credentials(row.name)
        url, insecure = body.get("url", row.url), body.get("insecure", row.insecure)
        if body.get("access_secret") not in (None, MASK):
            username, password = body.get("access_key", username), body["access_secret"]
    else:
        settings = EndpointSettings(body.get("url"), body.get("type", "docker-registry"),
                                    body.get("insecure", False)).checked()
        url, insecure = settings.url, settings.insecure
        username, password = body.get("access_key") or None, body.get("access_secret") or None
    call.require_outbound(url)
    with services.remote_registry(url, username, password, insecure) as remote:
        result = remote.ping()
    if not result.ok:
        raise bad_request(f"failed to ping the registry {url}: {result.message}")
    return empty()


def registry_info(call: Call) -> Response:
    """What replication can filter on and how it can be triggered for this endpoint."""
    call.require_system("registry", "read")
    row = _row(call)
    return json_response({"type": row.type, "description": DESCRIPTIONS[row.type],
                          "supported_resource_filters": [
                              {"type": "name", "style": "input"}, {"type": "tag", "style": "input"}],
                          "supported_triggers": ["manual", "scheduled", "event_based"]})


def adapters(call: Call) -> Response:
    """The endpoint types Portlog speaks to."""
    call.require_system("registry", "list")
    return json_response(list(REGISTRY_TYPES))


def adapter_infos(call: Call) -> Response:
    call.require_system("registry", "list")
    return json_response({kind: {"type": kind, "description": DESCRIPTIONS[kind],
                                 "endpoint_pattern": {"endpoint_type": "EndpointPatternTypeStandard"},
                                 "credential_pattern": {"access_key_type": "AccessKeyTypeStandard",
                                                        "access_secret_type": "AccessSecretTypePassword"}}
                          for kind in REGISTRY_TYPES})


def _row(call: Call) -> EndpointRow:
    text = call.param("registry_id")
    row = by_id(call.services.registries.by_id, text)
    if row is None:
        raise not_found(f"registry {text} not found")
    return row


def _credential(value: object) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    if not isinstance(value, dict) or value.get("type", "basic") != "basic":
        raise bad_request("credential must be {type: basic, access_key, access_secret}")
    key, secret = value.get("access_key") or None, value.get("access_secret") or None
    for name, text in (("access_key", key), ("access_secret", secret)):
        if text is not None and not isinstance(text, str):
            raise bad_request(f"credential.{name} must be a string")
    return key, secret


def _text(body: dict, name: str, default: str = "") -> str:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a string")
    return value
