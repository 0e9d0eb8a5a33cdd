"""Commands of the scanning policies: a project's scanning settings and CVE allowlist (Project
events), and the system's CVE allowlist (domain/cve_allowlist.py). The pull checks
(domain/pull_checks.py) apply them; the scan jobs read `auto_scan`."""

from __future__ import annotations

from domain.application import Registry
from domain.context import RequestContext
from domain.cve_allowlist import CveAllowlist, SystemCveAllowlist
from domain.project import Project
from domain.scanning_settings import ScanningSettings


class ScanningPolicy:
    def __init__(self, app: Registry) -> None:
        self.app = app

    def set_project(self, project: str, ctx: RequestContext, settings: ScanningSettings | None = None,
                    allowlist: CveAllowlist | None = None) -> int | None:
        """Sets the project's settings and its own allowlist (each when given) in one change."""

        def change(p: Project) -> None:
            if settings is not None:
                p.set_scanning_settings(settings, ctx)
            if allowlist is not None:
                p.set_cve_allowlist(allowlist, ctx)

        return self.app.change_project(project, change)

    def set_system_allowlist(self, allowlist: CveAllowlist, ctx: RequestContext) -> int | None:
        return self.app.update(SystemCveAllowlist.ID, lambda a: a.set(allowlist, ctx),
                               create=lambda: SystemCveAllowlist.create(ctx))
