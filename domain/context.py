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
