"""Docker token authentication, the way docker, skopeo and containerd do it.

The first request of a connection meets a `401` with `WWW-Authenticate: Bearer realm=...,
service=...`; from then on the client asks the realm for a token per repository (with Basic
credentials and `scope=repository:<name>:pull,push`, plus `repository:<source>:pull` for a
cross-repository mount, `:delete` for a DELETE, or `registry:catalog:*`), keeps it, and sends it as
`Authorization: Bearer`. A registry that never challenges (Distribution as configured here)
costs nothing.
"""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import parse_qs, quote, urlsplit

_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_REPOSITORY_PATH = re.compile(r"^/v2/(.+)/(?:blobs|manifests|tags|referrers)/")  # the last such segment


def scopes_for(target: str, method: str = "GET") -> tuple[str, ...]:
    """The token scopes a request needs; empty for paths outside a repository."""
    path, _, query = target.partition("?")
    if path.startswith("/v2/_catalog"):
        return ("registry:catalog:*",)
    match = _REPOSITORY_PATH.match(path)
    if not match:
        return ()
    scopes = [f"repository:{match[1]}:{'delete' if method == 'DELETE' else 'pull,push'}"]
    source = parse_qs(query).get("from")
    if source:
        scopes.append(f"repository:{source[0]}:pull")
    return tuple(scopes)


class TokenAuth:
    def __init__(self, username: str, password: str) -> None:
        self.basic = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.realm: str | None = None  # path and query of the token endpoint, once challenged
        self.service = ""
        self.tokens: dict[tuple[str, ...], str] = {}

    def headers(self, conn, target: str, method: str = "GET") -> dict[str, str]:
        scopes = scopes_for(target, method)
        if self.realm is None or not scopes:
            return {}
        token = self.tokens.get(scopes) or self._fetch(conn, scopes)
        return {"Authorization": f"Bearer {token}"}

    def challenged(self, response, target: str, method: str = "GET") -> bool:
        """After a 401: learns the realm, forgets the stale token; True when a retry may pass."""
        challenge = response.header("www-authenticate")
        if not challenge.lower().startswith("bearer "):
            return False
        params = dict(_CHALLENGE_PARAM.findall(challenge))
        first_time = self.realm is None
        realm = urlsplit(params.get("realm", ""))
        self.realm, self.service = realm.path + (f"?{realm.query}" if realm.query else ""), params.get("service", "")
        stale = self.tokens.pop(scopes_for(target, method), None)
        return first_time or stale is not None

    def _fetch(self, conn, scopes: tuple[str, ...]) -> str:
        query = "&".join([f"service={quote(self.service)}"] + [f"scope={quote(s)}" for s in scopes])
        separator = "&" if "?" in self.realm else "?"
        response = conn.request("GET", f"{self.realm}{separator}{query}", {"Authorization": self.basic})
        if response.status != 200:
            raise RuntimeError(f"token endpoint answered {response.status}: {response.body[:200]!r}")
        document = json.loads(response.body)
        token = document.get("token") or document["access_token"]
        self.tokens[scopes] = token
        return token
