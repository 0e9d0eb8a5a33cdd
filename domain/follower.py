"""What a follower (a registry that ships the leader's log and applies it verbatim) needs to know
of events, without HTTP or storage: which stored bytes an event needs present before it is
applied, which events a project filter keeps, and the follower's lag (docs/time-travel.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.event_catalog import describe, is_public
from domain.repository import Repository
from domain.scans import Scan
from domain.vulndb import VulnerabilityData

FOLLOWING, STOPPED, PROMOTED = "following", "stopped", "promoted"

# Event class -> the fields naming bytes of the blob store the event refers to. `Undeleted` is
# followed by the BlobLinked / ManifestPushed that refill the repository; an SBOM referrer is a
# ManifestPushed of its own.
_STORED_BYTES = {
    Repository.BlobLinked: ("digest",),
    Repository.ManifestPushed: ("digest",),
    Scan.Completed: ("report_digest",),
    VulnerabilityData.Imported: ("digest",),
}


def digests_to_store(event: object) -> list[str]:
    """The digests whose bytes must be in the blob store before `event` is applied."""
    fields = next((names for cls, names in _STORED_BYTES.items() if isinstance(event, cls)), ())
    return [value for name in fields if isinstance(value := getattr(event, name, None), str) and value]


def kept_by(projects: frozenset[str] | None, event: object) -> bool:
    """Whether a follower of `projects` (None: all) takes the event: those of its projects, and
    every event of no project (accounts, robots, system settings, internal bookkeeping)."""
    if projects is None or not is_public(event):
        return True
    project = describe(event).project
    return project is None or project in projects


@dataclass(frozen=True)
class FollowStatus:
    leader: str
    state: str  # following | stopped | promoted
    position: int  # the last leader position applied or passed over (filtered out)
    leader_head: int
    lag_seconds: float
    last_error: str | None

    @property
    def lag_events(self) -> int:
        return max(self.leader_head - self.position, 0)

    def to_json(self) -> dict:
        return {"leader": self.leader, "state": self.state, "position": self.position,
                "leader_head": self.leader_head, "lag_events": self.lag_events,
                "lag_seconds": round(self.lag_seconds, 3), "last_error": self.last_error}
