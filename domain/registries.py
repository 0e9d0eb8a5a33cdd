"""Remote registry endpoints, the peers of replication and proxy-cache projects. Topic
`domain.registries:RegistryEndpoint.<Event>`; events are a public schema (fields only added,
with defaults).

An endpoint is found by its name (id `uuid5("/registries/<name>")`); its public id is the log
position of its creation (the read model, projections/registries.py). The password is recorded
only sealed (domain/ports.py SecretBox): the log never holds it in clear.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, replace
from urllib.parse import urlsplit
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.context import RequestContext
from domain.errors import ConflictError, InvalidInputError, NotFoundError

# Harbor's adapter names for the peers Portlog speaks to (all through the registry API).
REGISTRY_TYPES = ("docker-registry", "harbor", "portlog")
MAX_NAME_LENGTH = 255


@dataclass(frozen=True)
class EndpointSettings:
    url: str
    type: str
    insecure: bool = False  # do not verify the peer's TLS certificate
    description: str = ""
    access_key: str | None = None
    access_secret: str | None = None  # sealed

    def checked(self) -> EndpointSettings:
        if self.type not in REGISTRY_TYPES:
            raise InvalidInputError(f"unknown registry type {self.type!r}; one of {', '.join(REGISTRY_TYPES)}",
                                    {"type": self.type})
        parts = urlsplit(self.url) if isinstance(self.url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.query or \
                parts.fragment or parts.path.strip("/"):
            raise InvalidInputError("the registry URL must be http(s)://HOST[:PORT], without a path",
                                    {"url": self.url})
        if not isinstance(self.insecure, bool):
            raise InvalidInputError("insecure must be true or false", {"insecure": self.insecure})
        return EndpointSettings(self.url.rstrip("/"), self.type, self.insecure, self.description or "",
                                self.access_key or None, self.access_secret or None)

    def fields(self) -> dict:
        return {"url": self.url, "type": self.type, "insecure": self.insecure, "description": self.description,
                "access_key": self.access_key, "access_secret": self.access_secret}


class RegistryEndpoint(Aggregate):
    class Event(Aggregate.Event):
        registry: str  # its name
        actor: str
        request_id: str
        _: KW_ONLY
        source: str = ""

        def apply(self, aggregate: RegistryEndpoint) -> None:
            pass

    class Created(Event, Aggregate.Created):
        url: str
        type: str
        insecure: bool
        description: str
        access_key: str | None
        access_secret: str | None  # sealed

    class Recreated(Event):
        """A deleted endpoint's name taken again."""

        url: str
        type: str
        insecure: bool
        description: str
        access_key: str | None
        access_secret: str | None

        def apply(self, endpoint: RegistryEndpoint) -> None:
            endpoint.settings, endpoint.deleted = _settings(self), False

    class Updated(Event):
        """The endpoint as it is now, every field."""

        url: str
        type: str
        insecure: bool
        description: str
        access_key: str | None
        access_secret: str | None

        def apply(self, endpoint: RegistryEndpoint) -> None:
            endpoint.settings = _settings(self)

    class Deleted(Event):
        def apply(self, endpoint: RegistryEndpoint) -> None:
            endpoint.deleted = True

    def __init__(self, registry: str, url: str, type: str, insecure: bool, description: str,
                 access_key: str | None, access_secret: str | None) -> None:
        self.name = registry
        self.settings = EndpointSettings(url, type, insecure, description, access_key, access_secret)
        self.deleted = False

    @staticmethod
    def create_id(name: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/registries/{name}")

    @classmethod
    def create(cls, name: str, settings: EndpointSettings, ctx: RequestContext) -> RegistryEndpoint:
        return cls._create(cls.Created, id=cls.create_id(check_endpoint_name(name)), registry=name,
                           **settings.checked().fields(), **ctx.event_fields())

    def recreate(self, settings: EndpointSettings, ctx: RequestContext) -> None:
        if not self.deleted:
            raise ConflictError("a registry endpoint with this name exists already", {"name": self.name})
        self._trigger(self.Recreated, **settings.checked().fields(), ctx=ctx)

    def update(self, settings: EndpointSettings, ctx: RequestContext) -> None:
        self.check_exists()
        checked = settings.checked()
        if checked != self.settings:
            self._trigger(self.Updated, **checked.fields(), ctx=ctx)

    def delete(self, ctx: RequestContext) -> None:
        self.check_exists()
        self._trigger(self.Deleted, ctx=ctx)

    def check_exists(self) -> None:
        if self.deleted:
            raise NotFoundError("registry endpoint not found", {"name": self.name})

    def _trigger(self, event_class, ctx: RequestContext, **fields) -> None:
        self.trigger_event(event_class, registry=self.name, **ctx.event_fields(), **fields)


def check_endpoint_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise InvalidInputError(f"a registry endpoint needs a name of 1 to {MAX_NAME_LENGTH} characters",
                                {"name": name})
    return name


def _settings(event) -> EndpointSettings:
    return EndpointSettings(event.url, event.type, event.insecure, event.description, event.access_key,
                            event.access_secret)


class Endpoints:
    """Commands on endpoints: passwords are sealed before they are recorded."""

    def __init__(self, app, secrets) -> None:
        self.app = app
        self.secrets = secrets

    def add(self, name: str, settings: EndpointSettings, ctx: RequestContext) -> int | None:
        sealed = self._sealed(settings)

        def change(endpoint: RegistryEndpoint) -> None:
            if not endpoint.pending_events:  # not created by this command: a name used before
                endpoint.recreate(sealed, ctx)

        return self.app.update(RegistryEndpoint.create_id(check_endpoint_name(name)), change,
                               create=lambda: RegistryEndpoint.create(name, sealed, ctx))

    def update(self, name: str, change, ctx: RequestContext) -> int | None:
        """`change(current settings, with the secret sealed)` gives the new settings, a secret in
        clear where it changed (None keeps the current one)."""
        def apply(endpoint: RegistryEndpoint) -> None:
            endpoint.check_exists()
            wanted = change(endpoint.settings)
            if wanted.access_secret is not None and wanted.access_secret != endpoint.settings.access_secret:
                wanted = self._sealed(wanted)
            endpoint.update(wanted, ctx)

        return self.app.update(RegistryEndpoint.create_id(name), apply, missing=lambda: NotFoundError(
            "registry endpoint not found", {"name": name}))

    def delete(self, name: str, ctx: RequestContext) -> int | None:
        return self.app.update(RegistryEndpoint.create_id(name), lambda endpoint: endpoint.delete(ctx),
                               missing=lambda: NotFoundError("registry endpoint not found", {"name": name}))

    def credentials(self, name: str) -> tuple[str | None, str | None]:
        """(username, password in clear) to talk to the endpoint."""
        endpoint = self.get(name)
        secret = endpoint.settings.access_secret
        return endpoint.settings.access_key, self.secrets.open(secret) if secret else None

    def get(self, name: str) -> RegistryEndpoint:
        endpoint = self.app.load(RegistryEndpoint.create_id(name))
        if endpoint is None or endpoint.deleted:
            raise NotFoundError("registry endpoint not found", {"name": name})
        return endpoint

    def _sealed(self, settings: EndpointSettings) -> EndpointSettings:
        secret = settings.access_secret
        return replace(settings, access_secret=self.secrets.seal(secret) if secret else None)
