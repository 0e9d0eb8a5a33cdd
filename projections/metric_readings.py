"""What a Prometheus scrape reads from the read models (adapters/metrics.py exports it): each
project with its visibility, repositories, members, storage usage and quota, and recorded pulls;
webhook deliveries waiting, replication tasks by status, the scan queue, the last GC run and
the last backup. A handful of grouped queries per scrape, whatever the number of projects."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from domain.scans import SUCCESS, VULNERABILITY
from projections import access, backups, catalog, gc, pulls, quotas, replication_runs, scans, webhooks
from projections.database import ReadModelDatabase


@dataclass(frozen=True)
class ProjectReading:
    """One project as the read models see it at scrape time."""
    name: str
    public: bool
    repositories: int
    members: int
    storage_bytes: int
    storage_limit: int | None  # None: unlimited
    pulls: int  # recorded artifact pulls (the pull counts of the Harbor API)


class MetricReadings:
    def __init__(self, db: ReadModelDatabase) -> None:
        self.engine = db.reader

    def projects(self) -> list[ProjectReading]:
        with self.engine.connect() as conn:
            projects = conn.execute(select(access.projects.c.name, access.projects.c.public)).all()
            # a principal granted several repositories of a project is one member of it
            principals = select(access.members.c.project, access.members.c.kind,
                                access.members.c.principal).distinct().subquery()
            members = dict(conn.execute(select(principals.c.project, func.count())
                                        .group_by(principals.c.project)).all())
            usage = {row.project: row for row in conn.execute(
                select(quotas.usage.c.project, quotas.usage.c.storage_bytes, quotas.usage.c.storage_limit))}
            repository_project = self._project_of(catalog.repositories.c.name)
            repositories = dict(conn.execute(select(repository_project, func.count())
                                             .group_by(repository_project)).all())
            pulled_project = self._project_of(pulls.artifact_pulls.c.repository)
            pulled = dict(conn.execute(select(pulled_project, func.sum(pulls.artifact_pulls.c.pull_count))
                                       .group_by(pulled_project)).all())
        return [ProjectReading(name=name, public=bool(public), repositories=repositories.get(name, 0),
                               members=members.get(name, 0),
                               storage_bytes=usage[name].storage_bytes if name in usage else 0,
                               storage_limit=usage[name].storage_limit if name in usage else None,
                               pulls=int(pulled.get(name) or 0))
                for name, public in projects]

    def _project_of(self, repository):
        """SQL for domain.permissions.project_of: the name before the first slash (grouped in
        the database: a scrape does not read every repository's name)."""
        if self.engine.dialect.name == "postgresql":
            return func.split_part(repository, "/", 1)
        return func.substr(repository, 1, func.instr(repository, "/") - 1)

    def webhook_deliveries_by_status(self) -> dict[str, int]:
        return self._count_by(webhooks.deliveries.c.status)

    def replication_tasks_by_status(self) -> dict[str, int]:
        return self._count_by(replication_runs.tasks.c.status)

    def scans_by_status(self) -> dict[str, int]:
        return self._count_by(scans.artifacts.c.status)

    def artifacts_by_severity(self) -> dict[str, int]:
        """Artifacts whose current vulnerability scan succeeded, by the report's overall severity."""
        artifacts, reports = scans.artifacts, scans.reports
        query = (select(reports.c.severity, func.count())
                 .select_from(artifacts.join(reports, reports.c.report_id == artifacts.c.report_id))
                 .where(artifacts.c.status == SUCCESS, artifacts.c.scan_type == VULNERABILITY)
                 .group_by(reports.c.severity))
        with self.engine.connect() as conn:
            return dict(conn.execute(query).all())

    def last_gc_run(self):
        """The latest finished GC run (status, bytes, blobs), or None."""
        query = (select(gc.runs.c.status, gc.runs.c.bytes, gc.runs.c.blobs, gc.runs.c.started_at, gc.runs.c.finished_at)
                 .where(gc.runs.c.status != "running").order_by(gc.runs.c.id.desc()).limit(1))
        with self.engine.connect() as conn:
            return conn.execute(query).first()

    def webhook_attempts_by_outcome(self) -> dict[str, int]:
        finished = self._count_by(webhooks.attempts.c.succeeded)
        return {"succeeded": finished.get(True, 0), "failed": finished.get(False, 0)}

    def gc_totals(self) -> tuple[dict[str, int], int]:
        """Finished GC runs by status, and the bytes the real (not dry) runs freed."""
        runs = self._count_by(gc.runs.c.status)
        runs.pop("running", None)
        freed = select(func.coalesce(func.sum(gc.runs.c.bytes), 0)).where(gc.runs.c.dry_run.is_(False))
        with self.engine.connect() as conn:
            return runs, int(conn.execute(freed).scalar_one())

    def last_successful_backup(self):
        """The latest succeeded backup's row (finished_at, started_at, blob_count, bytes), or None."""
        table = backups.backups
        query = select(table).where(table.c.status == "succeeded").order_by(table.c.id.desc()).limit(1)
        with self.engine.connect() as conn:
            return conn.execute(query).first()

    def _count_by(self, column) -> dict[str, int]:
        with self.engine.connect() as conn:
            return dict(conn.execute(select(column, func.count()).group_by(column)).all())
