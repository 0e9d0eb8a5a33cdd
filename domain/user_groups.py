"""User groups (Harbor's `/usergroups`): an LDAP group, named by its DN, or an OpenID Connect
group, named as the provider's groups claim names it. A group is a project member like a user
(`Project.set_member("group", key, …)`); a user holds the roles of the groups the directory or
provider named at their last login (`User.GroupsObserved`). Topic
`domain.user_groups:UserGroup.<Event>`, id `uuid5("/usergroups/<type>/<key>")`. Events are a
public schema (fields only added, with defaults)."""

from __future__ import annotations

from dataclasses import KW_ONLY
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.context import RequestContext
from domain.errors import ConflictError, InvalidInputError, NotFoundError
from domain.identity import LDAP_GROUP, OIDC_GROUP, group_key

GROUP_TYPES = (LDAP_GROUP, OIDC_GROUP)
MAX_NAME = 255


class UserGroup(Aggregate):
    class Event(Aggregate.Event):
        key: str  # the group's key (domain/identity.py group_key)
        group_type: int
        actor: str
        request_id: str
        _: KW_ONLY
        source: str = ""

        def apply(self, aggregate: UserGroup) -> None:
            pass

    class Created(Event, Aggregate.Created):
        name: str
        ldap_dn: str = ""

    class Recreated(Event):
        name: str
        ldap_dn: str = ""

        def apply(self, group: UserGroup) -> None:
            group.name, group.deleted = self.name, False

    class Renamed(Event):
        name: str

        def apply(self, group: UserGroup) -> None:
            group.name = self.name

    class Deleted(Event):
        def apply(self, group: UserGroup) -> None:
            group.deleted = True

    def __init__(self, key: str, group_type: int, name: str, ldap_dn: str = "") -> None:
        self.key, self.group_type, self.name, self.ldap_dn = key, group_type, name, ldap_dn
        self.deleted = False

    @staticmethod
    def create_id(group_type: int, key: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/usergroups/{group_type}/{key}")

    @classmethod
    def create(cls, group_type: int, name: str, ldap_dn: str, ctx: RequestContext) -> UserGroup:
        key = group_key(group_type, ldap_dn if group_type == LDAP_GROUP else name)
        return cls._create(cls.Created, id=cls.create_id(group_type, key), key=key, group_type=group_type,
                           name=name, ldap_dn=ldap_dn, **ctx.event_fields())

    def recreate(self, name: str, ldap_dn: str, ctx: RequestContext) -> None:
        if not self.deleted:
            raise ConflictError("the group exists already", {"group_name": self.name})
        self._trigger(self.Recreated, name=name, ldap_dn=ldap_dn, ctx=ctx)

    def rename(self, name: str, ctx: RequestContext) -> None:
        self.check_exists()
        if name != self.name:
            self._trigger(self.Renamed, name=name, ctx=ctx)

    def delete(self, ctx: RequestContext) -> None:
        self.check_exists()
        self._trigger(self.Deleted, ctx=ctx)

    def check_exists(self) -> None:
        if self.deleted:
            raise NotFoundError("user group not found", {"group_name": self.name})

    def _trigger(self, event_class: type[UserGroup.Event], ctx: RequestContext, **fields) -> None:
        self.trigger_event(event_class, key=self.key, group_type=self.group_type, **ctx.event_fields(), **fields)


def check_group(group_type: object, name: object, ldap_dn: object) -> tuple[int, str, str]:
    """(group_type, name, ldap_dn) checked: LDAP groups need a DN, OIDC groups a name."""
    if group_type not in GROUP_TYPES or isinstance(group_type, bool):
        raise InvalidInputError("group_type is 1 (LDAP) or 3 (OIDC)", {"group_type": group_type})
    name = name if isinstance(name, str) else ""
    ldap_dn = ldap_dn if isinstance(ldap_dn, str) else ""
    if len(name) > MAX_NAME or len(ldap_dn) > 1024 or "\x00" in name + ldap_dn:
        raise InvalidInputError("group_name is at most 255 characters, ldap_group_dn at most 1024")
    if group_type == LDAP_GROUP and not ldap_dn.strip():
        raise InvalidInputError("an LDAP group needs ldap_group_dn")
    if group_type == OIDC_GROUP and not name.strip():
        raise InvalidInputError("an OIDC group needs group_name")
    return group_type, name.strip() or ldap_dn.strip(), ldap_dn.strip()
