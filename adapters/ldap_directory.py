"""An LDAP directory (OpenLDAP, Active Directory) as the source of users and groups, through
ldap3: search-then-bind (the search account finds the user's entry by the uid attribute, then a
second connection binds as that entry with the given password), groups from the entry's
membership attribute (AD's memberOf) or else a search for the groups naming the entry as member.

Every connection goes through the outbound guard: the configured host is resolved and each of
its addresses checked before connecting, the socket goes to a checked address, and TLS still
verifies the configured host name. Every value put in a filter is escaped.
"""

from __future__ import annotations

import logging
import socket
import ssl
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from typing import Any, Iterator, Mapping
from urllib.parse import urlsplit

import ldap3
from ldap3.core.exceptions import LDAPAttributeError, LDAPException, LDAPInvalidFilterError
from ldap3.utils.conv import escape_filter_chars

from adapters.outbound import OutboundGuard, OutboundRefused
from domain.errors import DirectoryUnavailableError
from domain.identity import LDAP, LDAP_GROUP, ExternalIdentity, group_key

log = logging.getLogger(__name__)

SCOPES = {0: ldap3.BASE, 1: ldap3.LEVEL, 2: ldap3.SUBTREE}
DEFAULT_PORTS = {"ldap": 389, "ldaps": 636}
DEFAULT_USER_FILTER = "(objectClass=*)"
DEFAULT_GROUP_FILTER = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=group))"
SEARCH_SIZE_LIMIT = 1000


@dataclass(frozen=True)
class LdapConfig:
    """The ldap_* configuration keys (without their prefix)."""

    url: str = ""
    base_dn: str = ""
    search_dn: str = ""
    search_password: str = ""
    filter: str = ""
    uid: str = "uid"
    scope: int = 2
    timeout: int = 5
    verify_cert: bool = True
    start_tls: bool = False
    ca_file: str = ""
    group_base_dn: str = ""
    group_search_filter: str = ""
    group_attribute_name: str = "cn"
    group_admin_dn: str = ""
    group_membership_attribute: str = "memberof"
    group_search_scope: int = 2

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> LdapConfig:
        """From configuration keys (`ldap_url`, …); keys that are missing keep their default."""
        names = {f.name for f in fields(cls)}
        return cls(**{key[len("ldap_"):]: value for key, value in values.items()
                      if key.startswith("ldap_") and key[len("ldap_"):] in names})

    @classmethod
    def from_configuration(cls, configuration: Any) -> LdapConfig:
        """From the effective configuration (its `ldap_*` attributes, secrets in clear)."""
        return cls(**{f.name: getattr(configuration, f"ldap_{f.name}", f.default) for f in fields(cls)})

    def with_values(self, values: Mapping[str, Any]) -> LdapConfig:
        return replace(self, **{f.name: getattr(LdapConfig.from_values(values), f.name) for f in fields(self)
                               if f"ldap_{f.name}" in values})


@dataclass(frozen=True)
class DirectoryUser:
    username: str
    dn: str
    email: str = ""
    realname: str = ""


@dataclass(frozen=True)
class DirectoryGroup:
    name: str
    dn: str


class LdapDirectory:
    def __init__(self, config: LdapConfig, guard: OutboundGuard) -> None:
        self.config = config
        self.guard = guard

    # --- the port ---

    def authenticate(self, username: str, password: str) -> ExternalIdentity | None:
        """The person, when the directory accepts the password; None when it does not (or no
        single entry has that uid). DirectoryUnavailableError when it cannot be asked."""
        if not username or not password:  # an empty password would be an anonymous bind
            return None
        with self._searching() as connection:
            entry = self._single_user_entry(connection, username)
            if entry is None:
                return None
            if not self._password_binds(entry.entry_dn, password):
                return None
            user = self._user_of(entry, username)
            groups = self._groups_of(connection, entry)
        return ExternalIdentity(username=user.username, auth_source=LDAP, external_id=user.dn,
                                email=user.email, realname=user.realname, groups=groups)

    def ping(self) -> None:
        """Returns when the search account binds and the base DN is there; raises
        DirectoryUnavailableError saying why not."""
        with self._searching() as connection:
            if self.config.base_dn:
                self._search(connection, self.config.base_dn, "(objectClass=*)", ldap3.BASE, [])
                if not connection.entries:
                    raise DirectoryUnavailableError(f"the base DN {self.config.base_dn} is not in the directory")

    def search_users(self, username: str = "") -> list[DirectoryUser]:
        with self._searching() as connection:
            self._search(connection, self.config.base_dn, self._user_filter(username),
                         self._scope(self.config.scope), self._user_attributes())
            return [self._user_of(entry, username) for entry in connection.entries]

    def user(self, username: str) -> DirectoryUser | None:
        if not username:
            return None
        with self._searching() as connection:
            entry = self._single_user_entry(connection, username)
            return None if entry is None else self._user_of(entry, username)

    def search_groups(self, name: str = "", dn: str = "") -> list[DirectoryGroup]:
        attribute = self.config.group_attribute_name or "cn"
        with self._searching() as connection:
            if dn:
                self._search(connection, dn, self._group_filter(), ldap3.BASE, [attribute])
            else:
                value = escape_filter_chars(name) if name else "*"
                self._search(connection, self._group_base(), f"(&{self._group_filter()}({attribute}={value}))",
                             self._scope(self.config.group_search_scope), [attribute])
            return [DirectoryGroup(_first(entry, attribute), entry.entry_dn) for entry in connection.entries]

    # --- users and groups ---

    def _user_attributes(self) -> list[str]:
        wanted = [self.config.uid or "uid", "mail", "cn", "displayName"]
        if self.config.group_membership_attribute:
            wanted.append(self.config.group_membership_attribute)
        return wanted

    def _user_filter(self, username: str) -> str:
        value = escape_filter_chars(username) if username else "*"
        return f"(&{_parenthesized(self.config.filter) or DEFAULT_USER_FILTER}({self.config.uid or 'uid'}={value}))"

    def _single_user_entry(self, connection: ldap3.Connection, username: str):
        self._search(connection, self.config.base_dn, self._user_filter(username),
                     self._scope(self.config.scope), self._user_attributes())
        if len(connection.entries) != 1:
            if len(connection.entries) > 1:
                log.warning("LDAP: %d entries have the uid asked for; none is used", len(connection.entries))
            return None
        return connection.entries[0]

    def _user_of(self, entry, typed: str) -> DirectoryUser:
        """The username is the entry's (first) uid value as the directory spells it, whichever
        of its values was typed: one account per entry."""
        return DirectoryUser(username=_first(entry, self.config.uid or "uid") or typed, dn=entry.entry_dn,
                             email=_first(entry, "mail"),
                             realname=_first(entry, "displayName") or _first(entry, "cn"))

    def _groups_of(self, connection: ldap3.Connection, entry) -> tuple[str, ...]:
        """Group keys (domain/identity.py): each group's DN, normalized."""
        attribute = self.config.group_membership_attribute
        listed = _values(entry, attribute) if attribute else []
        if listed:
            return tuple(sorted({group_key(LDAP_GROUP, dn) for dn in listed}))
        if not self.config.group_base_dn:
            return ()
        dn = escape_filter_chars(entry.entry_dn)
        self._search(connection, self._group_base(), f"(&{self._group_filter()}(|(member={dn})(uniqueMember={dn})))",
                     self._scope(self.config.group_search_scope), [])
        return tuple(sorted({group_key(LDAP_GROUP, found.entry_dn) for found in connection.entries}))

    def _group_filter(self) -> str:
        return _parenthesized(self.config.group_search_filter) or DEFAULT_GROUP_FILTER

    def _group_base(self) -> str:
        return self.config.group_base_dn or self.config.base_dn

    # --- connections ---

    @contextmanager
    def _searching(self) -> Iterator[ldap3.Connection]:
        """A connection bound as the search account (anonymous without one)."""
        if self.config.search_dn and not self.config.search_password:
            raise DirectoryUnavailableError("ldap_search_dn is set without ldap_search_password")
        connection, bound = self._bound(self.config.search_dn, self.config.search_password)
        try:
            if not bound:
                raise DirectoryUnavailableError(f"the directory refused the search account: {_reason(connection)}")
            yield connection
        finally:
            _unbind(connection)

    def _password_binds(self, dn: str, password: str) -> bool:
        connection, bound = self._bound(dn, password)
        _unbind(connection)
        return bound

    def _bound(self, dn: str, password: str) -> tuple[ldap3.Connection, bool]:
        """A connection (StartTLS done when configured) and whether the bind succeeded."""
        parts = self._url()
        timeout = max(int(self.config.timeout or 0), 1)
        try:
            checked = self.guard.addresses(parts.hostname, parts.port)
        except OutboundRefused as refused:
            raise DirectoryUnavailableError(str(refused)) from refused
        except (OSError, UnicodeError) as error:
            raise DirectoryUnavailableError(f"the LDAP host {parts.hostname} does not resolve: {error}") from error
        server = _CheckedServer(checked, parts.hostname, port=parts.port, use_ssl=parts.scheme == "ldaps",
                                tls=self._tls(parts.hostname), connect_timeout=timeout, get_info=ldap3.NONE)
        connection = ldap3.Connection(server, user=dn or None, password=password or None,
                                      authentication=ldap3.SIMPLE if dn else ldap3.ANONYMOUS,
                                      receive_timeout=timeout, raise_exceptions=False, read_only=True,
                                      auto_referrals=False)  # a referral names a host the guard never saw
        try:
            connection.open()
            if parts.scheme == "ldap" and self.config.start_tls:
                connection.start_tls()
            return connection, connection.bind()
        except LDAPException as error:
            _unbind(connection)
            raise _unavailable(error) from error

    def _tls(self, host: str) -> ldap3.Tls:
        try:
            return ldap3.Tls(ca_certs_file=self.config.ca_file or None, sni=host,
                             validate=ssl.CERT_REQUIRED if self.config.verify_cert else ssl.CERT_NONE)
        except LDAPException as error:
            raise DirectoryUnavailableError(f"the LDAP CA file cannot be used: {error}") from error

    def _url(self) -> _Url:
        url = (self.config.url or "").strip()
        if not url:
            raise DirectoryUnavailableError("no LDAP URL is configured (ldap_url)")
        parts = urlsplit(url if "://" in url else f"ldap://{url}")
        try:
            port = parts.port
        except ValueError as error:
            raise DirectoryUnavailableError(f"the LDAP URL is not valid: {error}") from error
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise DirectoryUnavailableError("the LDAP URL must be ldap://host[:port] or ldaps://host[:port]")
        return _Url(parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme])

    def _search(self, connection: ldap3.Connection, base: str, search_filter: str, scope: str,
                attributes: list[str]) -> None:
        try:
            connection.search(base, search_filter, scope, attributes=attributes or ldap3.NO_ATTRIBUTES,
                              size_limit=SEARCH_SIZE_LIMIT)
        except (LDAPInvalidFilterError, LDAPAttributeError) as error:  # the configured filter or attributes
            raise DirectoryUnavailableError(f"the LDAP search settings are not valid: {error}") from error
        except LDAPException as error:
            raise _unavailable(error) from error
        code = connection.result.get("result") if connection.result else None
        if code not in (0, 4, 32, None):  # success, size limit exceeded, no such object (nothing found)
            raise DirectoryUnavailableError(f"the directory refused a search: {_reason(connection)}")

    @staticmethod
    def _scope(value: int | str) -> str:
        try:
            return SCOPES[int(value)]
        except (KeyError, ValueError, TypeError):
            return ldap3.SUBTREE


@dataclass(frozen=True)
class _Url:
    scheme: str
    hostname: str
    port: int


class _CheckedServer(ldap3.Server):
    """An ldap3 server whose addresses are the guard's checked ones: ldap3 connects to them
    instead of resolving the name again, while `host` (TLS's name check) stays the configured one."""

    def __init__(self, checked: list[tuple[socket.AddressFamily, tuple]], host: str, **options) -> None:
        super().__init__(host, **options)
        self._checked = [[family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr, None, None]
                         for family, sockaddr in checked]

    @property
    def address_info(self):
        return self._checked


def _parenthesized(text: str) -> str:
    text = (text or "").strip()
    return text if not text or text.startswith("(") else f"({text})"


def _values(entry, attribute: str) -> list[str]:
    if attribute not in entry:
        return []
    return [str(value) for value in entry[attribute].values]


def _first(entry, attribute: str) -> str:
    found = _values(entry, attribute)
    return found[0] if found else ""


def _reason(connection: ldap3.Connection) -> str:
    result = connection.result or {}
    return f"{result.get('description', 'error')} {result.get('message', '')}".strip()


def _unavailable(error: LDAPException) -> DirectoryUnavailableError:
    return DirectoryUnavailableError(f"the LDAP directory cannot be reached: {error}")


def _unbind(connection: ldap3.Connection) -> None:
    try:
        connection.unbind()
    except LDAPException:
        pass
