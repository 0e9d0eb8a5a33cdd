"""Vulnerability data in the log: `portlog vulndb import` and `status`, the import event, the
stored file and the read model rebuilt from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.osv_files import osv_file
from domain.context import RequestContext
from domain.vulndb import VulnerabilityData
from projections import references
from projections import vulndb as vulndb_projection
from tests.support.server import ADMIN_PASSWORD, REPO_ROOT

OSV = REPO_ROOT / "tests" / "data" / "osv"
CTX = RequestContext("cli:tester", "req-vulndb")
ALL_ECOSYSTEMS = {"Alpine:v3.16": 1, "Debian:11": 1, "Debian:12": 2, "PyPI": 3, "npm": 1}


def portlog(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", *args, "--data-dir", str(data)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PORTLOG_ADMIN_PASSWORD": ADMIN_PASSWORD})


def imported(services, path: Path, name: str | None = None) -> str:
    with osv_file(path) as data:
        digest, position = services.vulnerability_imports.record(name or data.default_source_name(), data.chunks(),
                                                                 data.file_name, data.ecosystems, data.records, CTX)
    services.projections.wait_for(position)
    return digest


def zipped(tmp_path: Path, *names: str) -> Path:
    archive = tmp_path / "some.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for name in names:
            out.write(OSV / name, name)
    return archive


def dump(services) -> dict:
    with services.db.reader.connect() as conn:
        return {table.name: sorted(tuple(row) for row in conn.execute(select(table)))
                for table in vulndb_projection.metadata.sorted_tables}


def usage(services, digest: str):
    with services.db.reader.connect() as conn:
        return conn.execute(select(references.usage).where(references.usage.c.digest == digest)).one_or_none()


def test_the_cli_imports_a_directory_and_reports_its_status(tmp_path):
    data = tmp_path / "data"
    assert portlog(data, "init").returncode == 0
    result = portlog(data, "vulndb", "import", str(OSV))
    assert result.returncode == 0, result.stderr
    source = json.loads(result.stdout)
    assert (source["name"], source["records"], source["ecosystems"], source["file"]) == (
        "osv", 7, ALL_ECOSYSTEMS, "osv.zip")
    assert source["digest"].startswith("sha256:") and source["imported_by"].startswith("cli:")
    stored = data / "storage" / "blobs" / "sha256" / source["digest"][7:9] / source["digest"][7:]
    assert zipfile.ZipFile(stored).namelist() == sorted(p.name for p in OSV.glob("*.json"))
    status = json.loads(portlog(data, "vulndb", "status").stdout)
    assert status["ecosystems"] == ALL_ECOSYSTEMS and [s["name"] for s in status["sources"]] == ["osv"]
    audit = [json.loads(line) for line in portlog(data, "audit").stdout.splitlines()]
    assert [(a["operation"], a["resource"]) for a in audit if a["operation"].startswith("vulnerability")] == [
        ("vulnerability_data.created", "osv"), ("vulnerability_data.imported", f"osv@{source['digest']}")]


def test_the_cli_refuses_data_that_is_not_osv_and_records_nothing(tmp_path):
    data = tmp_path / "data"
    assert portlog(data, "init").returncode == 0
    bad = tmp_path / "bad.json"
    bad.write_text('{"summary": "no id"}')
    result = portlog(data, "vulndb", "import", str(bad))
    assert result.returncode == 1 and f"cannot import {bad}: bad.json: not an OSV record" in result.stderr
    missing = portlog(data, "vulndb", "import", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and "neither a file nor a directory" in missing.stderr
    assert json.loads(portlog(data, "vulndb", "status").stdout) == {"sources": [], "ecosystems": {}}


def test_records_are_indexed_by_ecosystem_and_package(services):
    imported(services, OSV)
    view = services.vulnerability_data
    assert sorted(r["id"] for r in view.records_for("PyPI", ["requests", "urllib3"])) == [
        "GHSA-34jh-p97f-mpxf", "GHSA-j8r2-6x86-q33q", "PYSEC-2023-74"]
    assert [r["id"] for r in view.records_for("Debian:12", ["glibc"])] == ["DEBIAN-CVE-2023-4911"]
    assert view.records_for("Debian:12", ["libc6"]) == [] and view.records_for("Go", ["requests"]) == []
    assert view.records_for("PyPI", []) == []


def test_a_new_import_of_a_source_replaces_it_and_releases_the_old_file(services, tmp_path):
    first = imported(services, OSV, "mixed")
    assert usage(services, first).referenced_by == 1
    second = imported(services, zipped(tmp_path, "GHSA-j8r2-6x86-q33q.json"), "mixed")
    [source] = services.vulnerability_data.sources()
    assert (source.name, source.records, source.stored_records, source.ecosystems, source.digest) == (
        "mixed", 1, 1, {"PyPI": 1}, second)
    assert services.vulnerability_data.records_for("Debian:12", ["glibc"]) == []
    assert (usage(services, first).referenced_by, usage(services, second).referenced_by) == (0, 1)
    event = services.registry.load(VulnerabilityData.create_id("mixed"))
    assert event.digest == second


def test_sources_are_kept_apart_and_a_record_two_hold_is_given_once(services, tmp_path):
    imported(services, OSV, "everything")
    imported(services, zipped(tmp_path, "GHSA-j8r2-6x86-q33q.json", "PYSEC-2023-74.json"))
    assert [s.name for s in services.vulnerability_data.sources()] == ["PyPI", "everything"]
    assert sorted(r["id"] for r in services.vulnerability_data.records_for("PyPI", ["requests"])) == [
        "GHSA-j8r2-6x86-q33q", "PYSEC-2023-74"]


def test_the_read_model_rebuilds_from_the_stored_files(services, tmp_path):
    imported(services, OSV, "one")
    imported(services, zipped(tmp_path, "ALPINE-CVE-2022-37434.json"), "two")
    before = dump(services)
    assert len(before["vulndb_records"]) == 8 and len(before["vulndb_affected"]) == 9  # glibc: Debian 11 and 12
    services.projections.rebuild()
    assert dump(services) == before


def test_a_stored_file_gone_missing_leaves_the_source_empty_with_the_reason(services, tmp_path):
    digest = imported(services, zipped(tmp_path, "GHSA-j8r2-6x86-q33q.json"), "lost")
    services.blobs.delete(digest)
    services.projections.rebuild()  # the other read models are rebuilt all the same
    [source] = services.vulnerability_data.sources()
    assert (source.records, source.stored_records, source.error) == (1, 0, "blob unknown to registry")
    assert services.catalog.repository_count("team") == 0


def test_garbage_collection_keeps_the_imported_file(services, client):
    digest = imported(services, OSV)
    with services.blobs.open(digest) as stored:
        os.utime(stored.name, (0, 0))  # old enough to be taken for an orphan, were it one
    services.gc_jobs.start(0, False, "cli", CTX, background=False)
    assert services.blobs.stat(digest) is not None


@pytest.mark.parametrize("name", ["", "-x", "a b", "x" * 101, "über"])
def test_source_names_are_checked(services, name):
    from domain.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="vulnerability data source"):
        services.vulnerability_imports.record(name, iter([b"[]"]), "x.json", {}, 0, CTX)
