"""Property-based: odd path and query parameters and odd JSON bodies, on every route of every
surface, as the administrator and anonymously, never get a 5xx."""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route

ODD = ["²", "١٢", "1" * 30, "9223372036854775807", "9223372036854775808", "-1", "0", "1e9", "1.5", "+1",
       "0x10", "id=x", "", " ", "x", "é", "💥", "null", "true", "%", "..", "[1~2]", "{a b}", "(a b)", "~x",
       "sha256:x", "a,b", "q=x=y", "\x00", "9" * 5000]
SENSIBLE = ["team", "team/app", "1", "latest", "sha256:" + "0" * 64]
QUERY_NAMES = ["n", "last", "page", "page_size", "q", "sort", "since", "until", "after", "before", "limit",
               "as_of", "digest", "mount", "from", "scope", "service", "with_tag", "with_accessory", "project_id",
               "policy_id", "execution", "run", "status", "relative", "format", "username", "public", "type",
               "reference", "artifactType", "event_type", "operation", "order", "resource_type"]
BODY_FIELDS = ["name", "id", "duration", "level", "access", "permissions", "priority", "project_id",
               "registry_id", "disable", "disabled", "public", "metadata", "role_id", "member_user", "rules",
               "params", "trigger", "schedule", "count", "as_of", "storage_limit", "hard", "password",
               "username", "event_types", "targets", "url", "enabled", "scope_selectors", "tag_selectors"]
WRITE_METHODS = {"POST", "PUT", "PATCH"}

odd_text = st.one_of(st.sampled_from(ODD), st.sampled_from(SENSIBLE), st.text(max_size=8),
                     st.integers(min_value=-(10 ** 30), max_value=10 ** 30).map(str))
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10 ** 30), max_value=10 ** 30),
                         st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([1e9, 1e300, -0.0]),
                         odd_text)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(BODY_FIELDS + ["x"]), inner, max_size=3)),
    max_leaves=6)
bodies = st.dictionaries(st.sampled_from(BODY_FIELDS), json_values, max_size=5)


def endpoints(app) -> list[tuple[str, str]]:
    """(path template, method) of every route: /v2/, /api/v1, /api/v2.0, /c/, /service/token."""
    return sorted((route.path, method) for route in app.routes if isinstance(route, Route)
                  for method in route.methods if method != "HEAD")


def fill(template: str, draw) -> str:
    def value(match: re.Match) -> str:
        text = draw(odd_text)
        return quote(text, safe="/" if match[2] == "path" else "") or "x"
    return re.sub(r"\{(\w+)(?::(\w+))?\}", value, template)


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.data())
def test_odd_parameters_never_get_a_server_error(client, data):
    template, method = data.draw(st.sampled_from(endpoints(client.app)), label="route")
    path = fill(template, lambda strategy: data.draw(strategy))
    names = data.draw(st.lists(st.sampled_from(QUERY_NAMES), max_size=3, unique=True), label="query names")
    query = urlencode([(name, data.draw(odd_text, label=name)) for name in names])
    body = data.draw(bodies, label="body") if method in WRITE_METHODS else None
    auth = client.auth if data.draw(st.booleans(), label="as admin") else None
    response = client.request(method, f"{path}?{query}" if query else path, json=body, auth=auth)
    assert response.status_code < 500, (method, path, query, body, response.status_code, response.text)
