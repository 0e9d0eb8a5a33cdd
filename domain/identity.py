"""Placeholder of the foundation's identity port (issue 20 design), until it lands on main."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import RegistryError


@dataclass(frozen=True)
class ExternalIdentity:
    username: str
    auth_source: str
    external_id: str
    email: str = ""
    realname: str = ""
    groups: tuple[str, ...] = ()


class DirectoryUnavailableError(RegistryError):
    pass
