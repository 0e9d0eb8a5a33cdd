"""Who caused an event, in which request, from where: carried into every event."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    actor: str = "anonymous"
    request_id: str = ""
    source: str = ""  # the client's address; empty for the system's own work

    def event_fields(self) -> dict[str, str]:
        return {"actor": self.actor, "request_id": self.request_id, "source": self.source}


SYSTEM = RequestContext("system", "system")

# The actors Portlog records its own work under (anonymous callers, the first start and the
# scheduler, replication workers, the proxy cache). No account may take one of these names, in
# any letter case, or the audit log and tokens could not tell it from the system. Actors with a
# ':' (`cli:<user>`, `replication:<policy>`, `retention:<project>`) are no account names anyway.
RESERVED_NAMES = frozenset({"anonymous", "system", "replication", "proxy-cache"})


def is_reserved_name(name: str) -> bool:
    return name.lower() in RESERVED_NAMES
