"""Scanner registrations: the vulnerability scanners (Harbor Scanner Adapter API servers)
Portlog sends artifacts to, Harbor's way. Topic `domain.scanners:ScannerRegistration.<Event>`;
events are a public schema (fields only added, with defaults).

A registration's public id is Harbor's `uuid`: the aggregate's own id, random (a registration may
be renamed, so the name cannot make the id; names are unique, which the commands check against
the read model, as webhook policies' are). The access credential is recorded only sealed
(domain/ports.py SecretBox). Which registration is the system default is told by its `DefaultSet`:
the last one recorded wins. The built-in scanner is registered `immutable`: it is Portlog's own
and can be neither changed nor deleted (Harbor does the same with its bundled Trivy).
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, replace
from typing import Callable
from urllib.parse import urlsplit
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from domain.context import RequestContext
from domain.errors import AccessDeniedError, ConflictError, InvalidInputError, NotFoundError

# Harbor's registration auth kinds: none, Basic (base64 of the credential), Bearer, an API key header.
API_KEY_HEADER = "X-ScannerAdapter-API-Key"
AUTH_TYPES = ("", "Basic", "Bearer", API_KEY_HEADER)
BUILT_IN_NAME = "Portlog"
MAX_NAME_LENGTH = 128  # Harbor's column
MAX_URL_LENGTH = 512
MAX_DESCRIPTION_LENGTH = 1024
MAX_CREDENTIAL_LENGTH = 4096


class ForbiddenChangeError(AccessDeniedError):
    """A change of the built-in (immutable) registration."""


@dataclass(frozen=True)
class ScannerSettings:
    """A registration as an administrator writes it (the credential in clear until sealed)."""

    url: str
    description: str = ""
    auth: str = ""
    access_credential: str | None = None
    skip_cert_verify: bool = False
    use_internal_addr: bool = False
    disabled: bool = False

    def checked(self, credential_required: bool = True) -> ScannerSettings:
        """`credential_required`: False for the built-in scanner, whose key is derived, never stored."""
        parts = urlsplit(self.url) if isinstance(self.url, str) and len(self.url) <= MAX_URL_LENGTH else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
                or parts.fragment or parts.username or parts.password:
            raise InvalidInputError("the scanner URL must be http(s)://HOST[:PORT][/PATH]", {"url": self.url})
        if self.auth not in AUTH_TYPES:
            raise InvalidInputError(f"auth type {self.auth!r} is not supported; one of "
                                    f"{', '.join(repr(a) for a in AUTH_TYPES)}", {"auth": self.auth})
        credential = self.access_credential or None
        if credential is not None and (not isinstance(credential, str) or len(credential) > MAX_CREDENTIAL_LENGTH):
            raise InvalidInputError(f"access_credential must be a string of at most {MAX_CREDENTIAL_LENGTH} "
                                    "characters")
        if self.auth and credential is None and credential_required:
            raise InvalidInputError(f"access_credential is required for auth type {self.auth}", {"auth": self.auth})
        for name in ("skip_cert_verify", "use_internal_addr", "disabled"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidInputError(f"{name} must be true or false", {name: getattr(self, name)})
        description = self.description or ""
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION_LENGTH:
            raise InvalidInputError(f"description must be a string of at most {MAX_DESCRIPTION_LENGTH} characters")
        return replace(self, url=self.url.rstrip("/"), description=description,
                       access_credential=credential if self.auth else None)

    def fields(self) -> dict:
        return {"url": self.url, "description": self.description, "auth": self.auth,
                "access_credential": self.access_credential, "skip_cert_verify": self.skip_cert_verify,
                "use_internal_addr": self.use_internal_addr, "disabled": self.disabled}


def check_scanner_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise InvalidInputError(f"a scanner registration needs a name of 1 to {MAX_NAME_LENGTH} characters",
                                {"name": name})
    return name


class ScannerRegistration(Aggregate):
    class Event(Aggregate.Event):
        scanner: str  # its name
        actor: str
        request_id: str
        _: KW_ONLY
        source: str = ""

        def apply(self, aggregate: ScannerRegistration) -> None:
            pass

    class Created(Event, Aggregate.Created):
        url: str
        description: str
        auth: str
        access_credential: str | None  # sealed
        skip_cert_verify: bool
        use_internal_addr: bool
        disabled: bool
        immutable: bool = False  # the built-in scanner

    class Updated(Event):
        """The registration as it is now, every field (`scanner` is its name now)."""

        url: str
        description: str
        auth: str
        access_credential: str | None
        skip_cert_verify: bool
        use_internal_addr: bool
        disabled: bool

        def apply(self, registration: ScannerRegistration) -> None:
            registration.name, registration.settings = self.scanner, _settings(self)

    class Deleted(Event):
        def apply(self, registration: ScannerRegistration) -> None:
            registration.deleted = True

    class DefaultSet(Event):
        """This registration is the system default from now on (any other one no longer is)."""

    def __init__(self, scanner: str, url: str, description: str, auth: str, access_credential: str | None,
                 skip_cert_verify: bool, use_internal_addr: bool, disabled: bool, immutable: bool = False) -> None:
        self.name = scanner
        self.settings = ScannerSettings(url, description, auth, access_credential, skip_cert_verify,
                                        use_internal_addr, disabled)
        self.immutable = immutable
        self.deleted = False

    @property
    def uuid(self) -> str:
        return str(self.id)

    @classmethod
    def create(cls, name: str, settings: ScannerSettings, ctx: RequestContext, immutable: bool = False,
               registration_id: UUID | None = None) -> ScannerRegistration:
        return cls._create(cls.Created, id=registration_id or uuid4(), scanner=check_scanner_name(name),
                           **settings.checked(credential_required=not immutable).fields(), immutable=immutable,
                           **ctx.event_fields())

    def update(self, name: str, settings: ScannerSettings, ctx: RequestContext, is_default: bool = False) -> None:
        """`is_default`: whether it is the system default now (the read model knows)."""
        self._check_changeable("update")
        checked = settings.checked()
        if checked.disabled and is_default:
            raise ConflictError(f"the default scanner {self.name} cannot be deactivated", {"scanner": self.name})
        if check_scanner_name(name) != self.name or checked != self.settings:
            self.trigger_event(self.Updated, scanner=name, **checked.fields(), **ctx.event_fields())

    def refresh(self, url: str, ctx: RequestContext) -> None:
        """The built-in scanner's address as the settings give it now (only the composition root
        changes an immutable registration)."""
        self.check_exists()
        settings = replace(self.settings, url=url)
        if settings != self.settings:
            self.trigger_event(self.Updated, scanner=self.name, **settings.fields(), **ctx.event_fields())

    def delete(self, ctx: RequestContext) -> None:
        self._check_changeable("delete")
        self._trigger(self.Deleted, ctx)

    def set_default(self, ctx: RequestContext) -> None:
        self.check_exists()
        if self.settings.disabled:
            raise ConflictError(f"the scanner {self.name} is deactivated: it cannot be the default",
                                {"scanner": self.name})
        self._trigger(self.DefaultSet, ctx)

    def check_exists(self) -> None:
        if self.deleted:
            raise NotFoundError("scanner registration not found", {"scanner": self.uuid})

    def _check_changeable(self, action: str) -> None:
        self.check_exists()
        if self.immutable:
            raise ForbiddenChangeError(f"the registration {self.name} is Portlog's built-in scanner: it is not "
                                       f"allowed to {action} it", {"scanner": self.uuid})

    def _trigger(self, event_class, ctx: RequestContext, **fields) -> None:
        self.trigger_event(event_class, scanner=self.name, **ctx.event_fields(), **fields)


def _settings(event) -> ScannerSettings:
    return ScannerSettings(event.url, event.description, event.auth, event.access_credential,
                           event.skip_cert_verify, event.use_internal_addr, event.disabled)


class Scanners:
    """Commands on registrations: credentials are sealed before they are recorded.
    `name_taken(name, other_than_uuid)` and `default_uuid()` read the registrations read model."""

    def __init__(self, app, secrets, name_taken: Callable[[str, str | None], bool],
                 default_uuid: Callable[[], str | None], built_in_key: str = "") -> None:
        self.app = app
        self.secrets = secrets
        self.name_taken = name_taken
        self.default_uuid = default_uuid
        self.built_in_key = built_in_key  # the built-in scanner's: derived by the composition root

    def register(self, name: str, settings: ScannerSettings, ctx: RequestContext, immutable: bool = False,
                 registration_id: UUID | None = None) -> tuple[str, int | None]:
        """(the new registration's uuid, position); the first registration becomes the default."""
        self._check_name_free(name, None)
        sealed = self._sealed(settings.checked(credential_required=not immutable))
        registration = ScannerRegistration.create(name, sealed, ctx, immutable, registration_id)
        if self.default_uuid() is None:
            registration.set_default(ctx)
        return registration.uuid, self.app.save(registration)[-1].notification.id

    def update(self, uuid: str, change: Callable[[str, ScannerSettings], tuple[str, ScannerSettings]],
               ctx: RequestContext) -> int | None:
        """`change(current name, current settings with the credential sealed)` gives the new name
        and settings, the credential in clear where it changed (the sealed one kept otherwise)."""
        def apply(registration: ScannerRegistration) -> None:
            registration.check_exists()
            name, wanted = change(registration.name, registration.settings)
            self._check_name_free(name, uuid)
            if wanted.access_credential is not None and wanted.access_credential != \
                    registration.settings.access_credential:
                wanted = self._sealed(wanted.checked())
            registration.update(name, wanted, ctx, is_default=self.default_uuid() == uuid)

        return self.app.update(_id(uuid), apply, missing=lambda: _not_found(uuid))

    def refresh_built_in(self, uuid: str, url: str, ctx: RequestContext) -> int | None:
        """Records the built-in registration's URL when it changed."""
        return self.app.update(_id(uuid), lambda registration: registration.refresh(url, ctx),
                               missing=lambda: _not_found(uuid))

    def delete(self, uuid: str, ctx: RequestContext) -> int | None:
        return self.app.update(_id(uuid), lambda registration: registration.delete(ctx),
                               missing=lambda: _not_found(uuid))

    def set_default(self, uuid: str, ctx: RequestContext) -> int | None:
        return self.app.update(_id(uuid), lambda registration: registration.set_default(ctx),
                               missing=lambda: _not_found(uuid))

    def get(self, uuid: str) -> ScannerRegistration:
        registration = self.app.load(_id(uuid))
        if not isinstance(registration, ScannerRegistration) or registration.deleted:
            raise _not_found(uuid)
        return registration

    def credential(self, uuid: str) -> str | None:
        """The access credential in clear, to talk to the adapter."""
        registration = self.get(uuid)
        if registration.immutable:
            return self.built_in_key
        sealed = registration.settings.access_credential
        return self.secrets.open(sealed) if sealed else None

    def _check_name_free(self, name: str, other_than: str | None) -> None:
        if self.name_taken(check_scanner_name(name), other_than):
            raise ConflictError(f"a scanner registration named {name} exists already", {"name": name})

    def _sealed(self, settings: ScannerSettings) -> ScannerSettings:
        credential = settings.access_credential
        return replace(settings, access_credential=self.secrets.seal(credential) if credential else None)


def _id(uuid: str) -> UUID:
    try:
        return UUID(uuid)
    except (ValueError, TypeError, AttributeError):
        raise _not_found(uuid) from None


def _not_found(uuid: str) -> NotFoundError:
    return NotFoundError(f"scanner registration {uuid} not found", {"scanner": str(uuid)[:64]})
