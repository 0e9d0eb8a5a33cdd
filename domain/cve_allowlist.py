"""CVE allowlists: the vulnerabilities a project's pull policy lets through (domain/pull_checks.py).

There is one list for the whole system, the aggregate here (topic
`domain.cve_allowlist:SystemCveAllowlist.<Event>`, id `uuid5("/cve-allowlist/system")`), and one
per project, recorded on the project (`Project.CveAllowlistSet`); a project whose
`reuse_sys_cve_allowlist` setting is on (the default) uses the system's list instead of its own,
as in Harbor. A list may expire (`expires_at`, Unix seconds, as Harbor has it): once that moment
is past it exempts nothing, and it may be set in the past on purpose.

Items are vulnerability ids as scanners report them: CVE ids (`CVE-2019-10164`), and also the
ids of advisories without one (`GHSA-8r8j-xvfj-36f9`, `PYSEC-2023-74`), which Harbor's allowlist
takes too. Events are a public schema (fields only added, with defaults).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import KW_ONLY, dataclass
from uuid import NAMESPACE_URL, uuid5

from eventsourcing.domain import Aggregate

from domain.context import RequestContext
from domain.errors import InvalidInputError

MAX_ITEMS = 1000
MAX_ID_LENGTH = 64
# A scheme (CVE, GHSA, PYSEC, RUSTSEC, GO, DSA…) and dash-separated parts.
VULNERABILITY_ID_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9._:]+)+")
LAST_EXPIRY = 253402300799  # 9999-12-31T23:59:59Z: every expiry stays a date


@dataclass(frozen=True)
class CveAllowlist:
    items: tuple[str, ...] = ()
    expires_at: int | None = None  # Unix seconds; None: never expires

    def checked(self) -> CveAllowlist:
        """The list with its ids trimmed; InvalidInputError for a malformed or repeated id, too
        many ids, or an expiry that is no moment."""
        if isinstance(self.items, (str, bytes)) or not isinstance(self.items, (list, tuple)):
            raise InvalidInputError("items must be a list of vulnerability ids")
        if len(self.items) > MAX_ITEMS:
            raise InvalidInputError(f"an allowlist holds at most {MAX_ITEMS} vulnerability ids",
                                    {"items": len(self.items)})
        items = tuple(check_vulnerability_id(item) for item in self.items)
        repeated = next((item for item, count in Counter(items).items() if count > 1), None)
        if repeated is not None:
            raise InvalidInputError(f"duplicate CVE ID in allowlist: {repeated}", {"cve_id": repeated})
        expires_at = self.expires_at
        if expires_at is not None and (not isinstance(expires_at, int) or isinstance(expires_at, bool)
                                       or not 0 <= expires_at <= LAST_EXPIRY):
            raise InvalidInputError("expires_at must be a time in seconds since 1970 (or null: never)",
                                    {"expires_at": expires_at})
        return CveAllowlist(items, expires_at)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def exempted(self, now: float) -> frozenset[str]:
        """The ids it exempts at `now`: none once expired."""
        return frozenset() if self.expired(now) else frozenset(self.items)

    def fields(self) -> dict:
        return {"items": list(self.items), "expires_at": self.expires_at}

    @classmethod
    def from_fields(cls, fields: dict | None) -> CveAllowlist:
        return cls() if fields is None else cls(tuple(fields["items"]), fields["expires_at"])


def check_vulnerability_id(value: object) -> str:
    text = value.strip() if isinstance(value, str) else None
    if not text or len(text) > MAX_ID_LENGTH or not VULNERABILITY_ID_RE.fullmatch(text):
        raise InvalidInputError(f"invalid CVE ID {value!r}: a vulnerability id such as CVE-2019-10164 or "
                                f"GHSA-8r8j-xvfj-36f9, at most {MAX_ID_LENGTH} characters", {"cve_id": value})
    return text


class SystemCveAllowlist(Aggregate):
    """The system's allowlist, the one projects reuse by default."""

    class Event(Aggregate.Event):
        actor: str
        request_id: str
        _: KW_ONLY
        source: str = ""

        def apply(self, aggregate: SystemCveAllowlist) -> None:
            pass

    class Created(Event, Aggregate.Created):
        pass

    class Set(Event):
        """The whole list as it is now."""

        items: list
        expires_at: int | None = None

        def apply(self, allowlist: SystemCveAllowlist) -> None:
            allowlist.items, allowlist.expires_at = list(self.items), self.expires_at

    ID = uuid5(NAMESPACE_URL, "/cve-allowlist/system")

    def __init__(self) -> None:
        self.items: list[str] = []
        self.expires_at: int | None = None

    @classmethod
    def create(cls, ctx: RequestContext) -> SystemCveAllowlist:
        return cls._create(cls.Created, id=cls.ID, **ctx.event_fields())

    def set(self, allowlist: CveAllowlist, ctx: RequestContext) -> None:
        fields = allowlist.checked().fields()
        if fields != self.allowlist().fields():
            self.trigger_event(self.Set, **fields, **ctx.event_fields())

    def allowlist(self) -> CveAllowlist:
        return CveAllowlist(tuple(self.items), self.expires_at)
