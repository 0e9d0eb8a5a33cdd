"""The system configuration, `/api/v2.0/configurations` (system administrators): Harbor's keys
(domain/configuration.py), each `{"value", "editable"}` as Harbor answers, plus `source` (where the
value comes from: "default", "api", "config file" or the `PORTLOG_*` variable). Secrets are never
answered: `has_value` says whether one is set. PUT takes a flat object of keys and values; a change
is an event (audited, time-travelable)."""

from __future__ import annotations

from starlette.responses import Response

from api.harbor.common import body_of, empty
from api.management.common import Call, json_response


def get_configurations(call: Call) -> Response:
    call.require_system("configuration", "read")
    return json_response(call.services.configuration().public())


def update_configurations(call: Call) -> Response:
    call.require_system("configuration", "update")
    call.settle(call.services.configurations.update(body_of(call), call.context))
    return empty()
