"""Identities Portlog does not keep itself: a person as a directory (LDAP, Active Directory) or an
OpenID Connect provider describes them at login. The adapters (adapters/ldap_directory.py,
adapters/oidc_provider.py) produce an `ExternalIdentity`; the authenticator onboards the account
on the first login and records the groups it saw (domain/administration.py)."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import DirectoryUnavailableError  # noqa: F401  (raised by the adapters)

DB, LDAP, OIDC = "db", "ldap", "oidc"  # a user's auth_source
LDAP_GROUP, OIDC_GROUP = 1, 3  # Harbor's group_type numbers


@dataclass(frozen=True)
class ExternalIdentity:
    username: str
    auth_source: str  # LDAP or OIDC
    external_id: str  # LDAP: the entry's DN; OIDC: "<issuer>|<sub>"
    email: str = ""
    realname: str = ""
    groups: tuple[str, ...] = ()  # group keys (group_key below)


def group_key(group_type: int, name_or_dn: str) -> str:
    """How a group is named in memberships: an LDAP group by its DN (case does not matter in a
    DN, so lower-cased, spaces after commas dropped), an OIDC group by its name as the claim has it."""
    if group_type == LDAP_GROUP:
        return ",".join(part.strip() for part in name_or_dn.split(",")).lower()
    return name_or_dn
