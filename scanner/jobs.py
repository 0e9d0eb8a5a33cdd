"""The adapter's scan jobs, in a table of the database it is given (Portlog's read-model
database): a scan runs in the process that accepted it, and its state, reports or failure are
visible to every process that may be asked for them (`portlog serve --workers N`, other nodes).

Not events: a job is the adapter's working state, as Trivy's adapter keeps it in Redis; Portlog
records what it asked and what it got (domain/scans.py). Rows are forgotten after
KEEP_SECONDS. A job whose process stopped stays queued or running past its `expires_at`, and
is then reported failed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Column, Engine, Float, Index, MetaData, String, Table, Text, delete, select, update

KEEP_SECONDS = 24 * 3600
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"

_metadata = MetaData()
_jobs = Table(
    "scanner_jobs", _metadata,
    Column("id", String(36), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("capabilities", String(64), nullable=False),  # "vulnerability,sbom"
    Column("created_at", Float, nullable=False),  # epoch seconds
    Column("expires_at", Float, nullable=False),  # past this, a queued or running job is dead
    Column("vulnerability_report", Text),
    Column("sbom_report", Text),
    Column("error", Text),
    Index("scanner_jobs_created", "created_at"),
)


@dataclass(frozen=True)
class Job:
    id: str
    status: str
    capabilities: tuple[str, ...]
    created_at: float
    expires_at: float
    vulnerability_report: str | None
    sbom_report: str | None
    error: str | None


class ScanJobs:
    def __init__(self, engine: Engine, reader: Engine | None = None, clock=time.time) -> None:
        """`reader`: an engine for reads that need no write lock (SQLite's autocommit reader)."""
        self.engine, self.reader = engine, reader or engine
        self.clock = clock
        _metadata.create_all(engine)

    def create(self, job_id: str, capabilities: tuple[str, ...], expires_in: float) -> None:
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(delete(_jobs).where(_jobs.c.created_at < now - KEEP_SECONDS))
            conn.execute(_jobs.insert().values(id=job_id, status=QUEUED, capabilities=",".join(capabilities),
                                               created_at=now, expires_at=now + expires_in))

    def start(self, job_id: str, expires_in: float) -> None:
        self._set(job_id, status=RUNNING, expires_at=self.clock() + expires_in)

    def finish(self, job_id: str, vulnerability_report: str | None, sbom_report: str | None) -> None:
        self._set(job_id, status=DONE, vulnerability_report=vulnerability_report, sbom_report=sbom_report)

    def fail(self, job_id: str, reason: str) -> None:
        self._set(job_id, status=FAILED, error=reason)

    def fail_unfinished(self, job_ids: list[str], reason: str) -> None:
        """Jobs this process will not run after all (it is stopping)."""
        for job_id in job_ids:
            self.fail(job_id, reason)

    def get(self, job_id: str) -> Job | None:
        with self.reader.connect() as conn:
            row = conn.execute(select(_jobs).where(_jobs.c.id == job_id)).first()
        if row is None:
            return None
        job = Job(**{**row._mapping, "capabilities": tuple(row.capabilities.split(","))})
        if job.status in (QUEUED, RUNNING) and job.expires_at < self.clock():
            reason = "the scan did not finish in time (the process running it may have stopped)"
            self.fail(job_id, reason)
            return Job(**{**vars(job), "status": FAILED, "error": reason})
        return job

    def _set(self, job_id: str, **values) -> None:
        """A queued or running job moves on; a finished one (or one declared dead) stays as it is."""
        with self.engine.begin() as conn:
            conn.execute(update(_jobs).where(_jobs.c.id == job_id, _jobs.c.status.in_((QUEUED, RUNNING)))
                         .values(**values))
