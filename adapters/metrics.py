"""Every metric Portlog exports, defined in this one module (docs/operations.md, Monitoring).

Two kinds. Instruments are counted as things happen (requests, blob bytes, pushes, pulls, the
NATS relay's progress): `Metrics` holds them in a private registry, or — when `portlog serve
--workers N` runs several processes — in prometheus_client's multiprocess files, summed at
scrape time. Readings are taken from the read models when Prometheus scrapes (projects,
repositories, quotas, the log's head and each read model's position, work queued and done:
webhooks, replication, scans, GC, backups; a follower's lag): `Readings` is what the composition
root hands over for that, so a scrape costs a few queries, the counts survive restarts and
nothing is counted twice. Harbor's names where Harbor exports the same metric, `portlog_*` otherwise.

Labels are bounded: method, route template (never a raw path), status, project; nothing per
digest, tag or repository.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.gc_collector import GCCollector
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client reads it when it is imported
_SEVERITIES = ("None", "Unknown", "Low", "Medium", "High", "Critical")  # Harbor's, in order
# Request latencies: manifest GETs take a millisecond, blob transfers minutes.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


@dataclass
class Readings:
    """Callables reading the current state, each called once per scrape; `extra` yield further
    metric families (queues, outcomes, the last runs, a follower's position)."""
    log_head: Callable[[], int]
    read_model_positions: Callable[[], dict[str, int]]
    # each project: name, public, repositories, members, storage_bytes, storage_limit (None:
    # unlimited, Harbor's -1) and pulls (projections/metric_readings.py's ProjectReading)
    projects: Callable[[], list]
    extra: list[Callable[[], Iterable[GaugeMetricFamily]]] = field(default_factory=list)


class Metrics:
    """The instruments, and the exposition of them with the readings."""

    def __init__(self, readings: Readings | None = None) -> None:
        self.multiprocess_dir = os.environ.get(MULTIPROCESS_ENV) or None
        self.readings = readings
        self._instruments = CollectorRegistry(auto_describe=True)
        registry = self._instruments
        self.http_requests = Counter(
            "portlog_http_requests", "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"], registry=registry)
        self.http_duration = Histogram(
            "portlog_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by method and route template.",
            ["method", "route"], buckets=_LATENCY_BUCKETS, registry=registry)
        self.blob_bytes_received = Counter(
            "portlog_blob_received_bytes", "Blob bytes uploaded (pushed) by clients, by project.",
            ["project"], registry=registry)
        self.blob_bytes_sent = Counter(
            "portlog_blob_sent_bytes", "Blob bytes downloaded (pulled) by clients, by project.",
            ["project"], registry=registry)
        self.manifest_pushes = Counter(
            "portlog_manifest_pushes", "Manifests pushed (PUT answered 201), by project.", ["project"],
            registry=registry)
        self.manifest_pulls = Counter(
            "portlog_manifest_pulls", "Manifests pulled (GET answered 200), by project.", ["project"],
            registry=registry)
        self.nats_relay_position = Gauge(
            "portlog_nats_relay_position", "The last log position the NATS relay published to JetStream.",
            multiprocess_mode="livemax", registry=registry)
        self.nats_relay_lag = Gauge(
            "portlog_nats_relay_lag_events", "Events in the log the NATS relay has not published yet.",
            multiprocess_mode="livemax", registry=registry)

    def nats_relayed(self, position: int, head: int) -> None:
        self.nats_relay_position.set(position)
        self.nats_relay_lag.set(max(0, head - position))

    # -- exposition ----------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The Prometheus text format of everything: the instruments (summed over the worker
        processes in multiprocess mode), the readings, process and runtime metrics."""
        return generate_latest(self._scrape_registry())

    def _scrape_registry(self) -> CollectorRegistry:
        registry = CollectorRegistry(auto_describe=False)
        if self.multiprocess_dir:
            MultiProcessCollector(registry, path=self.multiprocess_dir)
        else:
            registry.register(_Forward(self._instruments))
        if self.readings is not None:
            registry.register(_ReadingsCollector(self.readings))
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        return registry


def prepare_multiprocess_dir(path: Path) -> None:
    """Multiprocess mode for `serve --workers N`: a private, empty directory (files of a previous
    run would add old counts), named in the environment the workers inherit. The parent calls it
    before any worker imports prometheus_client."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROCESS_ENV] = str(path)


class _Forward:
    """The instruments' registry as one collector of the scrape registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator:
        return self.registry.collect()


class _ReadingsCollector:
    def __init__(self, readings: Readings) -> None:
        self.readings = readings

    def describe(self) -> list:
        return []  # not collected at registration: that would query the read models

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from _log_positions(self.readings)
        yield from _projects(self.readings.projects())
        for extra in self.readings.extra:
            yield from extra()


def _log_positions(readings: Readings) -> Iterator[GaugeMetricFamily]:
    head = readings.log_head()
    yield GaugeMetricFamily("portlog_event_log_head_position",
                            "The position of the last event in the log (the notification id).", value=head)
    positions = GaugeMetricFamily("portlog_read_model_position", "The last log position each read model applied.",
                                  labels=["read_model"])
    lag = GaugeMetricFamily("portlog_read_model_lag_events", "How many events each read model is behind the log.",
                            labels=["read_model"])
    for name, position in sorted(readings.read_model_positions().items()):
        positions.add_metric([name], position)
        lag.add_metric([name], max(0, head - position))
    yield positions
    yield lag


def _projects(projects: list) -> Iterator[GaugeMetricFamily]:
    total = GaugeMetricFamily("harbor_project_total", "Projects, by visibility.", labels=["public"])
    for public in (True, False):
        total.add_metric([str(public).lower()], sum(1 for p in projects if p.public == public))
    families = {
        "repo": GaugeMetricFamily("harbor_project_repo_total", "Repositories of each project.",
                                  labels=["project_name", "public"]),
        "member": GaugeMetricFamily("harbor_project_member_total", "Members of each project.",
                                    labels=["project_name"]),
        "usage": GaugeMetricFamily("harbor_project_quota_usage_byte", "Storage each project uses (its quota usage).",
                                   labels=["project_name"]),
        "limit": GaugeMetricFamily("harbor_project_quota_byte", "Each project's storage quota (-1: unlimited).",
                                   labels=["project_name"]),
        "pulled": GaugeMetricFamily("harbor_artifact_pulled", "Recorded artifact pulls of each project.",
                                    labels=["project_name"]),
    }
    for p in projects:
        families["repo"].add_metric([p.name, str(p.public).lower()], p.repositories)
        families["member"].add_metric([p.name], p.members)
        families["usage"].add_metric([p.name], p.storage_bytes)
        families["limit"].add_metric([p.name], -1 if p.storage_limit is None else p.storage_limit)
        families["pulled"].add_metric([p.name], p.pulls)
    yield total
    yield from families.values()


# -- readings beyond projects and positions (wired in config/bootstrap.py) -----------------------

def queue_readings(source) -> Iterator[GaugeMetricFamily]:
    """Work waiting and done, from the read models: `source` is projections/metric_readings.py's
    MetricReadings. Harbor's task queue by Harbor's job types, and each kind of work by status."""
    webhooks = source.webhook_deliveries_by_status()
    replication = source.replication_tasks_by_status()
    scans = source.scans_by_status()
    queue = GaugeMetricFamily("harbor_task_queue_size", "Jobs waiting to run, by type.", labels=["type"])
    queue.add_metric(["WEBHOOK"], webhooks.get("pending", 0) + webhooks.get("retrying", 0))
    queue.add_metric(["REPLICATION"], replication.get("pending", 0))
    queue.add_metric(["IMAGE_SCAN"], scans.get("Pending", 0))
    yield queue
    yield _by_status("portlog_webhook_deliveries", "Webhook deliveries, by status.", webhooks,
                     ("pending", "sending", "retrying", "delivered", "failed"))
    yield _by_status("portlog_replication_tasks", "Replication tasks, by status.", replication,
                     ("pending", "running", "succeeded", "failed", "stopped"))
    yield _by_status("portlog_scans", "Scans of artifacts, by status (Harbor's scan statuses).", scans,
                     ("Pending", "Running", "Success", "Error", "Stopped"))
    severities = GaugeMetricFamily("portlog_scanned_artifacts", "Artifacts with a vulnerability report, by its "
                                   "overall severity (Harbor's: None, Unknown, Low, Medium, High, Critical).",
                                   labels=["severity"])
    found = source.artifacts_by_severity()
    for severity in (*_SEVERITIES, *sorted(set(found) - set(_SEVERITIES))):
        severities.add_metric([severity], found.get(severity, 0))
    yield severities


def _by_status(name: str, documentation: str, counts: dict[str, int], known: tuple[str, ...]) -> GaugeMetricFamily:
    """Every known status, 0 when none is in it (an alert on a status compares with 0, not absent)."""
    family = GaugeMetricFamily(name, documentation, labels=["status"])
    for status in sorted({*known, *counts}):
        family.add_metric([status], counts.get(status, 0))
    return family


def follower_readings(status: Callable) -> Iterator[GaugeMetricFamily]:
    """A follower registry's position behind its leader (docs/time-travel.md); nothing when leading."""
    current = status()
    if current is None or current.state == "promoted":
        return
    yield GaugeMetricFamily("portlog_follower_position", "The leader's last log position this follower applied.",
                            value=current.position)
    yield GaugeMetricFamily("portlog_follower_leader_head_position", "The leader's log head, as last seen.",
                            value=current.leader_head)
    yield GaugeMetricFamily("portlog_follower_lag_events", "Events the follower is behind its leader.",
                            value=current.lag_events)
    yield GaugeMetricFamily("portlog_follower_lag_seconds", "How long the follower has been behind its leader.",
                            value=current.lag_seconds)
    state = GaugeMetricFamily("portlog_follower_state", "1 for the follower's state.", labels=["state"])
    state.add_metric([current.state], 1)
    yield state


def outcome_readings(source) -> Iterator:
    """Counts of finished work kept in the read models (so they survive restarts and need no
    summing over processes): webhook delivery attempts by outcome, GC runs by status and the
    bytes they freed."""
    attempts = CounterMetricFamily("portlog_webhook_delivery_attempts", "Webhook delivery attempts, by outcome.",
                                   labels=["outcome"])
    for outcome, count in sorted(source.webhook_attempts_by_outcome().items()):  # succeeded and failed, always
        attempts.add_metric([outcome], count)
    yield attempts
    runs, freed = source.gc_totals()
    family = CounterMetricFamily("portlog_gc_runs", "Garbage collection runs, by status.", labels=["status"])
    for status in sorted({"succeeded", "failed", *runs}):
        family.add_metric([status], runs.get(status, 0))
    yield family
    yield CounterMetricFamily("portlog_gc_freed_bytes", "Bytes garbage collection runs deleted (not dry runs).",
                              value=freed)


def last_run_readings(source) -> Iterator[GaugeMetricFamily]:
    """The last garbage collection and the last successful backup, from the read models."""
    gc = source.last_gc_run()
    if gc is not None:
        yield GaugeMetricFamily("portlog_gc_last_freed_bytes", "Bytes the last finished GC run freed.",
                                value=gc.bytes)
        yield GaugeMetricFamily("portlog_gc_last_freed_blobs", "Blobs the last finished GC run deleted.",
                                value=gc.blobs)
        yield GaugeMetricFamily("portlog_gc_last_duration_seconds", "How long the last finished GC run took.",
                                value=(gc.finished_at - gc.started_at).total_seconds() if gc.finished_at else 0)
    backup = source.last_successful_backup()
    if backup is not None:
        yield GaugeMetricFamily("portlog_backup_last_success_timestamp_seconds",
                                "When the last successful backup finished (Unix time).",
                                value=backup.finished_at.timestamp())
        yield GaugeMetricFamily("portlog_backup_last_duration_seconds", "How long the last successful backup took.",
                                value=(backup.finished_at - backup.started_at).total_seconds())
        yield GaugeMetricFamily("portlog_backup_last_blobs", "Blobs in the last successful backup.",
                                value=backup.blob_count or 0)
        yield GaugeMetricFamily("portlog_backup_last_bytes", "Bytes in the last successful backup.",
                                value=backup.bytes or 0)
