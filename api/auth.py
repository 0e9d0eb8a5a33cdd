"""The one authorizer every route goes through.

Until accounts exist every request is the anonymous principal and is allowed; the
token service replaces `OpenAuthorizer` without touching the routes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from starlette.requests import Request

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Access:
    """What a request needs, in Docker token scope terms: `repository:team/app:pull`."""

    resource_type: str
    name: str
    action: str

    def __str__(self) -> str:
        return f"{self.resource_type}:{self.name}:{self.action}"


class Authorizer(Protocol):
    def authorize(self, request: Request, access: Access | None) -> str:
        """Returns the principal's name, or raises OciError(UNAUTHORIZED | DENIED)."""


class OpenAuthorizer:
    def authorize(self, request: Request, access: Access | None) -> str:
        return ANONYMOUS
