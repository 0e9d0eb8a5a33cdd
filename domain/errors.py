"""Domain errors. They carry no HTTP: the API maps them to wire codes in one table."""

from __future__ import annotations


class RegistryError(Exception):
    """Base of every error the domain raises on purpose."""

    def __init__(self, message: str, detail: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class NameInvalidError(RegistryError):
    pass


class TagInvalidError(RegistryError):
    pass


class DigestInvalidError(RegistryError):
    pass


class NameUnknownError(RegistryError):
    pass


class BlobUnknownError(RegistryError):
    pass


class ManifestUnknownError(RegistryError):
    pass


class ManifestInvalidError(RegistryError):
    pass


class ManifestBlobUnknownError(RegistryError):
    pass


class ManifestTooLargeError(RegistryError):
    pass


class UploadUnknownError(RegistryError):
    pass


class UploadInvalidError(RegistryError):
    pass


class RangeInvalidError(RegistryError):
    """A chunk does not continue the upload where it stands."""

    def __init__(self, message: str, current_size: int) -> None:
        super().__init__(message, {"size": current_size})
        self.current_size = current_size


class SizeInvalidError(RegistryError):
    pass


class ConcurrentUpdateError(RegistryError):
    """Optimistic concurrency kept failing: too many writers on one aggregate."""


class NotFoundError(RegistryError):
    """A management resource (project, user, robot, member) does not exist."""


class ConflictError(RegistryError):
    """The resource exists already, or its state forbids the change."""


class InvalidInputError(RegistryError):
    """A management request is malformed."""


class AuthenticationError(RegistryError):
    pass


class AccessDeniedError(RegistryError):
    pass


class TooManyAttemptsError(RegistryError):
    """Too many failed logins from one address; `retry_after` seconds until the next try."""

    def __init__(self, message: str, detail: object = None, retry_after: float | None = None) -> None:
        super().__init__(message, detail)
        self.retry_after = retry_after


class StorageUnavailableError(RegistryError):
    """The blob storage or the database cannot be reached or failed; nothing was published or
    recorded, a retry may succeed."""


class TagImmutableError(RegistryError):
    """An immutability rule protects the tag: it may not be moved to another manifest or
    deleted, nor may the manifest it points to. `detail` names the repository, the tag and the
    rule's id."""


class StillReferencedError(ConflictError):
    """A blob link or a manifest may not be deleted while a manifest of the repository
    references it (as its config, a layer, or a child of an index): that manifest would point
    at nothing."""


class BlobCondemnedError(RegistryError):
    """The garbage collector is deleting the blob's bytes right now (internal: writers wait)."""


class QuotaExceededError(RegistryError):
    """A push would take a project over one of its quotas; nothing was stored."""


class UpstreamUnavailableError(RegistryError):
    """A proxy-cache project's upstream registry could not answer, and nothing cached can."""


class UpstreamRateLimitedError(RegistryError):
    """A proxy-cache project's upstream registry rate-limits us (429), and nothing cached can
    answer; `retry_after` seconds, when the upstream said."""

    def __init__(self, message: str, detail: object = None, retry_after: float | None = None) -> None:
        super().__init__(message, detail)
        self.retry_after = retry_after


class PolicyViolationError(RegistryError):
    """A project's pull policy refuses the artifact (domain/pull_checks.py): it is vulnerable,
    not scanned, or not signed. Harbor answers 412."""


class DirectoryUnavailableError(RegistryError):
    """The directory (LDAP) or identity provider (OIDC) cannot be reached or answers nonsense: 503
    for its users, while the local administrator still signs in."""


class FollowerReadOnlyError(RegistryError):
    """This registry follows a leader (docs/time-travel.md): it records nothing of its own, and
    every write goes to the leader, which `detail` names."""
