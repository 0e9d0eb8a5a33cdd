"""What a follower (a registry that ships the leader's log and applies it verbatim) needs to know
of events, without HTTP or storage: which stored bytes an event needs present before it is
applied, which bytes a batch of applied events lets it delete, which events a project filter
keeps, and the follower's lag (docs/time-travel.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.blob import Blob
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


def digests_to_delete(events: list[object]) -> list[str]:
    """The digests whose bytes a follower deletes once it has applied `events` (a batch, in log
    order): those a `Blob.Collected` says the leader deleted — unless an event after it in the
    batch needs them again. A digest re-pushed after its collection is such a case: its bytes were
    still stored when the follower read the later event, so it did not fetch them again; deleting
    them would leave that event without its bytes. (An event of a later batch is read after this
    batch's deletions, and fetches the bytes anew.)"""
    deleted: list[str] = []
    needed_later: set[str] = set()
    for event in reversed(events):
        if isinstance(event, Blob.Collected) and event.digest not in needed_later and event.digest not in deleted:
            deleted.append(event.digest)
        needed_later.update(digests_to_store(event))
    return deleted[::-1]


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
