"""Pulls, counted in memory and recorded in the log once per interval.

An event per pull would put a database write on the pull path and grow the log by every
`docker pull`. Instead each serving process counts manifest pulls by (repository, digest,
tag, actor) — a dictionary update under a lock — and a background worker records what it
counted as one `Repository.PullsRecorded` event per repository per interval
(`events.pull_record_seconds`, default 60 s). "Last pulled" (retention needs it), pull counts
and pull webhooks come from those events; a crash loses at most one interval's counts.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone


class PullCounter:
    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, str | None, str], list] = {}
        self._lock = threading.Lock()

    def count(self, repository: str, digest: str, tag: str | None, actor: str) -> None:
        now = datetime.now(timezone.utc)
        key = (repository, digest, tag, actor)
        with self._lock:
            entry = self._counts.get(key)
            if entry is None:
                self._counts[key] = [1, now]
            else:
                entry[0] += 1
                entry[1] = now

    def take(self) -> dict[str, list[dict]]:
        """Everything counted since the last take, by repository."""
        with self._lock:
            counts, self._counts = self._counts, {}
        by_repository: dict[str, list[dict]] = {}
        for (repository, digest, tag, actor), (count, last) in counts.items():
            by_repository.setdefault(repository, []).append(
                {"digest": digest, "tag": tag, "actor": actor, "count": count,
                 "last_pulled_at": last.isoformat()})
        return by_repository

    def give_back(self, repository: str, pulls: list[dict]) -> None:
        """Counts that could not be recorded, to be recorded with the next ones."""
        with self._lock:
            for pull in pulls:
                key = (repository, pull["digest"], pull["tag"], pull["actor"])
                entry = self._counts.setdefault(key, [0, datetime.fromisoformat(pull["last_pulled_at"])])
                entry[0] += pull["count"]
