"""The composition root: the only place that knows which adapters are in use."""

from __future__ import annotations

import hashlib
import hmac
import socket
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping
from urllib.parse import urlsplit
from uuid import UUID

import httpx
from eventsourcing.persistence import IntegrityError

from adapters.backup_destinations import Destination
from adapters.follow_state import FollowMode, FollowStateTable
from adapters.log_store import LogStore, log_store_for
from adapters.login_failures import LoginFailureTable
from adapters.metrics import (
    Metrics,
    Readings,
    follower_readings,
    last_run_readings,
    outcome_readings,
    queue_readings,
)
from adapters.outbound import OutboundGuard, OwnService
from adapters.passwords import Argon2SecretHasher
from adapters.private_files import keep_private, private_file
from adapters.revoked_tokens import RevokedTokenTable
from adapters.run_locks import FileRunLocks, PostgresRunLocks, RunLocks
from adapters.secret_box import AesGcmSecretBox, NoSecretBox, key_file_text
from adapters.signing_keys import SigningKeyFile, SigningKeyTable
from adapters.storage.filesystem import FilesystemBlobStore
from adapters.storage.traced import TracedBlobStore
from adapters.tracing import Tracing, tracing_from_environment
from api.auth import RegistryAuthorizer
from api.authn import Authenticator
from api.proxy_cache import ProxyCache
from api.tokens import TokenIssuer
from api.v2.manifest_cache import ManifestCache
from background.backups import BackupJobs
from background.gc_jobs import GcJobs
from background.replication_local import LocalSide
from config.settings import Settings
from domain.administration import Administration
from domain.application import Registry
from domain.artifacts import Artifacts
from domain.as_of import AsOfReads
from domain.blob import GcFence
from domain.collector import Collector
from domain.configuration import Configuration, Configurations, effective
from domain.errors import InvalidInputError
from domain.identity import LDAP_GROUP, OIDC_GROUP, group_key
from domain.labels import Labelling
from domain.ports import BlobStore, SecretBox, SecretHasher
from domain.project_rules import ProjectRules
from domain.pull_checks import PullChecks
from domain.pulls import PullCounter
from domain.push_checks import PushChecks
from domain.registries import Endpoints
from domain.replication import Policies
from domain.replicator import Replicator
from domain.restore import Restores
from domain.retention_runs import RetentionRunner
from domain.scanners import API_KEY_HEADER, BUILT_IN_NAME, Scanners, ScannerSettings
from domain.scanning_policy import ScanningPolicy
from domain.scans import ScanRequests
from domain.trash import Trash
from domain.uploads import Uploads
from domain.vulndb import VulnerabilityImports
from projections.access import AccessProjection, AccessView
from projections.audit import AuditProjection, AuditView
from projections.backups import BackupsProjection, BackupsView
from projections.catalog import CatalogProjection, CatalogView
from projections.configurations import ConfigurationProjection, ConfigurationView
from projections.database import ReadModelDatabase
from projections.gc import GcProjection, GcView
from projections.history import HistoryProjection, HistoryView
from projections.immutability import ImmutabilityProjection, ImmutabilityView, rule_id_lookup
from projections.labels import LabelsProjection, LabelsView
from projections.metric_readings import MetricReadings
from projections.pulls import PullsProjection, PullsView
from projections.quotas import QuotaProjection, QuotaView
from projections.references import ReferencesProjection, ReferencesView
from projections.registries import RegistriesProjection, RegistriesView
from projections.replication import ReplicationProjection, ReplicationView
from projections.replication_runs import ReplicationRunsProjection, ReplicationRunsView
from projections.retention import RetentionProjection, RetentionView
from projections.runner import ProjectionRunner
from projections.scanned_packages import ScannedPackagesProjection, ScannedPackagesView
from projections.scanners import ScannersProjection, ScannersView
from projections.scanning_policies import ScanningPoliciesProjection, ScanningPoliciesView
from projections.scans import ScansProjection, ScansView
from projections.vulndb import VulnerabilityDataProjection, VulnerabilityDataView
from projections.webhooks import WebhooksProjection, WebhooksView
from scanner.adapter_app import ScannerAdapter
from scanner.jobs import ScanJobs
from scanner.reports import ScannerInfo

PROXY_UPSTREAM_TIMEOUT_SECONDS = 10.0
SCANNER_PULL_TIMEOUT = httpx.Timeout(30.0, connect=10.0)  # the built-in scanner's reads of Portlog's /v2/
NATS_PORT = 4222  # a NATS URL's port when it names none

if TYPE_CHECKING:
    from adapters.ldap_directory import LdapDirectory


@dataclass
class Services:
    settings: Settings
    registry: Registry
    uploads: Uploads
    artifacts: Artifacts
    trash: Trash
    restores: Restores
    project_rules: ProjectRules
    admin: Administration
    blobs: BlobStore
    manifests: ManifestCache
    db: ReadModelDatabase
    projections: ProjectionRunner
    catalog: CatalogView
    access: AccessView
    audit: AuditView
    history: HistoryView
    pulls: PullsView
    pull_counter: PullCounter
    webhooks: WebhooksView
    immutability: ImmutabilityView
    references: ReferencesView
    quotas: QuotaView
    retention: RetentionView
    retention_runner: RetentionRunner
    registries: RegistriesView
    endpoints: Endpoints
    remote_registry: Callable  # (url, username, password, insecure) -> a client of that registry
    outbound: OutboundGuard  # what user-supplied addresses (webhooks, registry endpoints) may reach
    replication: ReplicationView
    policies: Policies
    replication_runs: ReplicationRunsView
    gc: GcView
    collector: Collector
    authenticator: Authenticator
    tokens: TokenIssuer
    authorizer: RegistryAuthorizer
    scanning_policy: ScanningPolicy  # project scanning settings, CVE allowlists (commands)
    scanning_policies: ScanningPoliciesView  # the same, read; auto_scan_enabled(project) for the scan jobs
    pull_checks: PullChecks  # what every manifest pull passes (domain/pull_checks.py)
    configuration: Callable[[], Configuration]  # the system configuration in force (domain/configuration.py)
    configurations: Configurations  # its commands: keys set through the API
    secret_box: SecretBox  # seals and opens stored secrets (adapters/secret_box.py)
    log_store: LogStore  # the log as stored rows with their positions (backups, followers, as-of reads)
    follow: FollowMode  # whether this registry follows a leader (read-only) or leads
    follow_state: FollowStateTable  # a follower's position, lag and state (adapters/follow_state.py)
    leader_client: Callable[[], httpx.Client] | None = None  # a follower's client of its leader
    as_of: AsOfReads | None = None  # repositories as of a moment (the as-of view, `as_of` of the read APIs)
    generated_admin_password: str | None = None
    scanners: Scanners | None = None  # scanner registrations' commands (set once the read model exists)
    scanner_registrations: ScannersView | None = None
    scans: ScansView | None = None
    scanned_packages: ScannedPackagesView | None = None  # the packages each artifact's report names
    scan_requests: ScanRequests | None = None
    # (url, auth, credential in clear, skip_cert_verify) -> a client of that scanner adapter
    scanner_client: Callable | None = None
    auto_scan_enabled: Callable[[str], bool] = lambda project: False  # a project's auto_scan setting
    built_in_scanner_url: str = ""  # Portlog's own adapter (scanner/adapter_app.py), at <url>/scanner
    built_in_scanner_key: str = ""  # the X-ScannerAdapter-API-Key it takes
    run_locks: RunLocks | None = None  # a GC's, a backup's: exclusive across processes and nodes
    gc_jobs: GcJobs | None = None  # set once the services exist (it runs on them)
    backups: BackupsView | None = None  # backups and their schedule (read model)
    backup_jobs: BackupJobs | None = None  # likewise
    # (url, outbound guard or None) -> the backup destination it names (backup_destination below)
    backup_destination: Callable | None = None
    replicator: Replicator | None = None  # likewise
    proxy_cache: ProxyCache | None = None  # likewise
    labels: LabelsView | None = None  # likewise
    labelling: Labelling | None = None  # likewise
    vulnerability_data: VulnerabilityDataView | None = None  # likewise
    vulnerability_imports: VulnerabilityImports | None = None  # likewise
    scanner_adapter: ScannerAdapter | None = None  # the built-in scanner's adapter, mounted at /scanner
    # Exceptions of the database drivers that mean "unavailable, try again" (a restart, a
    # failover, a full connection pool): answered 503, not 500.
    unavailable_errors: tuple[type[Exception], ...] = ()
    inline_reads: bool = False  # pull-path lookups may run on the event loop (local read models)
    # (configuration, overrides of ldap_* keys) -> the LDAP directory it names (adapters/ldap_directory.py)
    directory_for: Callable | None = None
    event_relay: Any = None  # the NATS relay of this process, once it runs (adapters/nats_relay.py; /health)
    metrics: Metrics | None = None  # Prometheus instruments and readings (adapters/metrics.py); None: metrics off
    tracing: Tracing | None = None  # OpenTelemetry, when the OTEL_* variables turn it on (adapters/tracing.py)

    def close(self) -> None:
        if self.proxy_cache is not None:
            self.proxy_cache.close()
        if self.scanner_adapter is not None:
            self.scanner_adapter.close()
        self.registry.close()
        self.db.dispose()
        if self.tracing is not None:
            self.tracing.shutdown()  # sends the spans still waiting


def blob_store_for(settings: Settings) -> BlobStore:
    storage = settings.storage
    if storage.kind == "s3":
        from adapters.storage.s3 import S3BlobStore  # only deployments on S3 load the SDK

        region = {"region": storage.region} if storage.region else {}  # else the adapter's default
        return S3BlobStore(storage.endpoint, storage.bucket, storage.access_key, storage.secret_key,
                           **region, secure=storage.secure, spool_dir=settings.spool_dir,
                           redirect=storage.redirect, upload_hashers=settings.cache.upload_hashers)
    return FilesystemBlobStore(settings.blob_root, upload_hashers=settings.cache.upload_hashers)


def _database_unavailable_errors() -> tuple[type[Exception], ...]:
    import sqlite3

    import psycopg
    import sqlalchemy.exc
    from eventsourcing import persistence

    return (persistence.OperationalError, persistence.InterfaceError, persistence.ConnectionUnavailableError,
            sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, psycopg.OperationalError,
            sqlite3.OperationalError)


def signing_keys_for(settings: Settings, db: ReadModelDatabase) -> SigningKeyFile | SigningKeyTable:
    """A file beside the embedded data; the shared database when nodes share one."""
    if settings.event_database.kind == "postgres":
        return SigningKeyTable(db.writer)
    return SigningKeyFile(settings.signing_keys_path)


def run_locks_for(settings: Settings) -> RunLocks:
    """Lock files in the data directory, or advisory locks in the database nodes share."""
    if settings.event_database.kind == "postgres":
        return PostgresRunLocks(settings.event_database.dsn.url(with_pool_size=False))
    return FileRunLocks(settings.data_dir / "locks")


def outbound_guard_for(settings: Settings) -> OutboundGuard:
    return OutboundGuard(settings.outbound_allow, settings.outbound_deny, own=own_services(settings))


def own_services(settings: Settings) -> list[OwnService]:
    """Where Portlog listens and the infrastructure it uses: no user-supplied address may reach them."""
    own = [OwnService(settings.host, settings.port, "Portlog's own listen address")]
    for database in dict.fromkeys((settings.event_database, settings.read_model_database)):
        if database.kind == "postgres" and database.dsn.host:
            own.append(OwnService(database.dsn.host, database.dsn.port, "Portlog's database"))
    if settings.storage.kind == "s3":
        endpoint = urlsplit(f"//{settings.storage.endpoint}")
        own.append(OwnService(endpoint.hostname, endpoint.port or (443 if settings.storage.secure else 80),
                              "Portlog's S3 endpoint"))
    for server in (settings.events.nats_url or "").split(","):
        if server:
            parts = urlsplit(server)
            own.append(OwnService(parts.hostname, parts.port or NATS_PORT, "Portlog's NATS server"))
    return own


def builtin_scanner(settings: Settings, vulnerability_data: VulnerabilityDataView, jobs: ScanJobs,
                    api_key: str) -> ScannerAdapter:
    """The built-in scanner's adapter. It pulls the images to scan from Portlog's own /v2/ over
    HTTP, as an external adapter does: its outbound guard reaches Portlog's own host:port pairs
    (the listen address, the external URL's), and nothing else the common guard refuses."""
    own = [OwnService(settings.host, settings.port, "Portlog's own listen address")]
    if settings.external_url:
        external = urlsplit(settings.external_url)
        own.append(OwnService(external.hostname, external.port or (443 if external.scheme == "https" else 80),
                              "Portlog's external URL"))
    guard = OutboundGuard(settings.outbound_allow, settings.outbound_deny, own=own_services(settings), reachable=own)
    return ScannerAdapter(
        vulnerabilities=vulnerability_data, jobs=jobs, scanner=ScannerInfo("Portlog", "Portlog", portlog_version()),
        http_client=lambda: httpx.Client(transport=guard.httpx_transport(), timeout=SCANNER_PULL_TIMEOUT,
                                         follow_redirects=True),
        api_key=api_key, data_updated_at=vulnerability_data.updated_at)


def portlog_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("portlog")
    except PackageNotFoundError:  # run from a checkout without installing
        return "dev"


LEADER_TIMEOUT = httpx.Timeout(30.0, connect=10.0)  # a stream sends a heartbeat every second


def leader_client(settings: Settings, tracing: Tracing | None = None) -> httpx.Client:
    """A follower's client of its leader, through the outbound guard: the leader the operator
    named is reachable (even on a loopback or private address), this registry's own services
    are not, and no redirect is followed (the credentials go to the leader only)."""
    follow = settings.follow
    parts = urlsplit(follow.url)
    leader = OwnService(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), "the leader")
    guard = OutboundGuard(settings.outbound_allow, settings.outbound_deny, own=own_services(settings),
                          reachable=[leader])
    guard.tracing = tracing
    auth = (follow.username, follow.password or "") if follow.username else None
    return httpx.Client(base_url=follow.url, auth=auth, transport=guard.httpx_transport(), timeout=LEADER_TIMEOUT,
                        follow_redirects=False)


def remote_registry_client(outbound: OutboundGuard, url: str, username: str | None, password: str | None,
                           insecure: bool, timeout: float | None = None):
    from adapters.registry_client import DEFAULT_TIMEOUT, RegistryClient  # only where a peer is used

    return RegistryClient(url, username, password, insecure=insecure, timeout=timeout or DEFAULT_TIMEOUT,
                          outbound=outbound)


def secret_box_for(settings: Settings) -> SecretBox:
    """The configured key; without one, a key file beside embedded data, and no stored
    credentials in scale-out (nodes would not share a generated key)."""
    if settings.secret_key:
        return AesGcmSecretBox(settings.secret_key)
    if settings.event_database.kind == "postgres":
        return NoSecretBox()
    return AesGcmSecretBox(key_file_text(settings.data_dir / "secret.key"))


def configuration_reader(settings: Settings, view: ConfigurationView, box: SecretBox) -> Callable[[], Configuration]:
    """The configuration in force, read afresh at each call (the operator's pinned keys, then the
    values set through the API, then the defaults)."""
    pinned = settings.pinned_configuration
    return lambda: effective(pinned, view.stored(), box.open)


def admin_groups(configuration: Configuration) -> frozenset[str]:
    """The group keys whose members are system administrators."""
    keys = set()
    if configuration.ldap_group_admin_dn:
        keys.add(group_key(LDAP_GROUP, configuration.ldap_group_admin_dn))
    if configuration.oidc_admin_group:
        keys.add(group_key(OIDC_GROUP, configuration.oidc_admin_group))
    return frozenset(keys)


def directory_for(outbound: OutboundGuard, configuration: Configuration,
                  overrides: Mapping[str, Any] | None = None) -> LdapDirectory:
    """The LDAP directory the configuration names (`overrides`: ldap_* keys a form holds before
    they are saved), reached through the outbound guard."""
    # ldap3 takes 150 ms to import: loaded by the first LDAP login, not by every process at start
    from adapters.ldap_directory import LdapConfig, LdapDirectory

    return LdapDirectory(LdapConfig.from_configuration(configuration).with_values(overrides or {}), outbound)


def registry_exists(settings: Settings) -> bool:
    """Whether a registry was initialised there (its event log exists), creating nothing."""
    events = settings.event_database
    if events.kind == "sqlite":
        return events.sqlite_path.is_file() and events.sqlite_path.stat().st_size > 0
    from sqlalchemy import create_engine, inspect

    engine = create_engine(events.sqlalchemy_url())
    try:
        return inspect(engine).has_table(f"{Registry.name.lower()}_events")  # eventsourcing's table name
    finally:
        engine.dispose()


def backup_destination(url: str, outbound: OutboundGuard | None = None) -> Destination:
    """The backup destination a URL names: `s3://ACCESS:SECRET@HOST:PORT/BUCKET[/PREFIX]?secure=false`
    or a directory (a path, or file:///PATH). `outbound`: the guard an S3 server a user named is
    reached through (None: the operator's own, from the command line)."""
    if not isinstance(url, str) or not url.strip() or ("://" in url and not url.startswith(("s3://", "file://"))):
        raise InvalidInputError("a backup destination is a directory or an s3:// URL", {"field": "destination"})
    if url.startswith("s3://"):
        from adapters.backup_destinations.s3 import S3Destination  # only S3 destinations load the SDK

        return S3Destination.from_url(url, outbound)
    from adapters.backup_destinations.directory import DirectoryDestination

    return DirectoryDestination(Path(url.removeprefix("file://")).absolute())


def empty_event_store(settings: Settings):
    """A new registry's event store with its tables created and nothing written — not the first
    start's events: a restore brings its own (`bootstrap` then finds its admin and projects there
    and writes nothing). The eventsourcing application; its log store is `log_store_for(.recorder)`."""
    from eventsourcing.application import Application

    class EmptyStore(Application):
        name = Registry.name

    keep_private(settings.data_dir)
    if settings.event_database.kind == "sqlite":
        private_file(settings.event_database.sqlite_path)
    return EmptyStore(env=settings.event_store_env)


def trace_writes(tracing: Tracing, registry: Registry, projections: ProjectionRunner) -> None:
    """Spans around event-store commits and read-model batches (the domain knows only a hook)."""
    registry.around_commit = lambda aggregates: tracing.span(
        "event store commit", **{"portlog.aggregates": len(aggregates),
                                 "portlog.events": sum(len(getattr(a, "pending_events", ())) for a in aggregates)})
    projections.around_batch = lambda count, last: tracing.span(
        "read models batch", **{"portlog.notifications": count, "portlog.position": last})


def bootstrap(settings: Settings, *, hasher: SecretHasher | None = None) -> Services:
    tracing = tracing_from_environment()  # None unless OTEL_* turn it on: then no hook is set below
    keep_private(settings.data_dir)
    for database in (settings.event_database, settings.read_model_database):
        if database.kind == "sqlite":
            private_file(database.sqlite_path)
    blobs = blob_store_for(settings) if tracing is None else TracedBlobStore(blob_store_for(settings), tracing)
    db = ReadModelDatabase.from_url(settings.read_model_url, settings.workers)
    with db.schema_lock():  # nodes and worker processes starting together create tables once
        registry = Registry(blobs, env=settings.event_store_env)
        log_store = log_store_for(registry.recorder)
        registry.log_positions = log_store
        projections = ProjectionRunner(
            db, registry, [CatalogProjection(), ReferencesProjection(), AccessProjection(),
                           AuditProjection(), HistoryProjection(), PullsProjection(),
                           WebhooksProjection(), ImmutabilityProjection(), GcProjection(), QuotaProjection(),
                           RetentionProjection(), RegistriesProjection(), ReplicationProjection(),
                           ReplicationRunsProjection(), LabelsProjection(), ScannersProjection(),
                           ScansProjection(), ScanningPoliciesProjection(), VulnerabilityDataProjection(blobs),
                           ScannedPackagesProjection(blobs), ConfigurationProjection(), BackupsProjection()])
        if tracing is not None:
            trace_writes(tracing, registry, projections)
        projections.create_tables()
        key_source = signing_keys_for(settings, db)
        signing_keys = key_source.load()
        login_failures, revoked_tokens = LoginFailureTable(db), RevokedTokenTable(db)
        scan_jobs = ScanJobs(db.writer, db.reader)
        follow_state = FollowStateTable(db)
    follow = FollowMode(settings.follow.url, follow_state)
    registry.write_guard = follow.check_write  # a follower records nothing of its own
    secret_box = secret_box_for(settings)
    admin = Administration(registry, hasher or Argon2SecretHasher(concurrent=1 if settings.workers > 1 else 2),
                           seal=secret_box.seal)
    # A follower's accounts and projects are the leader's: its first start creates none.
    generated = None if follow.following() else admin.bootstrap(settings.admin_password)
    projections.catch_up()
    access = AccessView(db)
    immutability = ImmutabilityView(db)
    references = ReferencesView(db)
    quotas = QuotaView(db)
    checks = PushChecks(
        registry, proxy_registry_of=lambda project: getattr(access.project(project), "proxy_registry", None),
        rule_id=rule_id_lookup(immutability, projections.catch_up), quotas=quotas,
        collectable=references.collectable)
    catalog = CatalogView(db)
    history = HistoryView(db)
    backups = BackupsView(db)
    endpoints = Endpoints(registry, secret_box)
    artifacts = Artifacts(registry, checks)
    scanning_policies = ScanningPoliciesView(db)
    scans = ScansView(db, blobs)
    pull_checks = PullChecks(scanning_policies.settings, catalog, scans,
                             allowlist_of=scanning_policies.effective_allowlist)
    configuration = configuration_reader(settings, ConfigurationView(db), secret_box)
    access.admin_groups = lambda: admin_groups(configuration())
    outbound = outbound_guard_for(settings)
    outbound.tracing = tracing
    authenticator = Authenticator(access, admin.hasher, admin, login_failures, configuration=configuration,
                                  directory=partial(directory_for, outbound), open_secret=secret_box.open,
                                  settle=projections.wait_for)
    tokens = TokenIssuer(signing_keys, settings.token_lifetime_seconds, revoked_tokens, reload_keys=key_source.load)
    services = Services(
        settings=settings,
        registry=registry,
        log_store=log_store,
        follow=follow,
        follow_state=follow_state,
        leader_client=partial(leader_client, settings, tracing) if settings.follow.url else None,
        uploads=Uploads(registry, checks),
        artifacts=artifacts,
        trash=Trash(registry, checks),
        restores=Restores(registry, checks, repositories_at=lambda position, project: history.repositories_as_of(
            position, project), robots_at=lambda position, project: [
                r["name"] for r in history.robots_as_of(position) if r["project"] == project]),
        project_rules=ProjectRules(registry),
        admin=admin,
        blobs=blobs,
        manifests=ManifestCache(blobs, settings.cache.manifest_bytes),
        db=db,
        projections=projections,
        catalog=catalog,
        access=access,
        audit=AuditView(db),
        history=history,
        pulls=PullsView(db),
        pull_counter=PullCounter(),
        webhooks=WebhooksView(db),
        immutability=immutability,
        references=references,
        quotas=quotas,
        retention=RetentionView(db),
        retention_runner=RetentionRunner(registry, history.repositories_as_of, artifacts),
        registries=RegistriesView(db),
        endpoints=endpoints,
        remote_registry=partial(remote_registry_client, outbound),
        outbound=outbound,
        replication=ReplicationView(db),
        policies=Policies(registry, endpoints),
        replication_runs=ReplicationRunsView(db),
        gc=GcView(db),
        collector=Collector(registry, references, catalog, projections.wait_for, checks.immutable_tags.refuse,
                            earliest_running_backup=backups.earliest_running_start),
        authenticator=authenticator,
        tokens=tokens,
        authorizer=RegistryAuthorizer(authenticator, tokens, access),
        scanning_policy=ScanningPolicy(registry),
        scanning_policies=scanning_policies,
        pull_checks=pull_checks,
        directory_for=partial(directory_for, outbound),
        configuration=configuration,
        configurations=Configurations(registry, configuration, secret_box.seal,
                                      other_users_exist=lambda: access.users(0, 2)[1] > 1),
        secret_box=secret_box,
        scans=scans,
        scanned_packages=ScannedPackagesView(db),
        generated_admin_password=generated,
        # Only local lookups may run on the event loop: a remote database or object store would block it.
        inline_reads=db.reader.dialect.name == "sqlite" and blobs.local_files,
        unavailable_errors=_database_unavailable_errors(),
        tracing=tracing,
    )
    services.as_of = AsOfReads(registry, services.audit.position_at, log_store.head)
    services.run_locks = run_locks_for(settings)
    services.gc_jobs = GcJobs(services)
    services.backups = backups
    services.backup_destination = backup_destination
    services.backup_jobs = BackupJobs(services)
    services.proxy_cache = proxy_cache(services)
    services.labels = LabelsView(db)
    services.labelling = Labelling(registry, services.labels.labelled_repositories)
    wire_scanning(services, signing_keys[-1].secret)  # the oldest key: kept across rotations
    services.vulnerability_data = VulnerabilityDataView(db)
    services.vulnerability_imports = VulnerabilityImports(registry, GcFence(registry, references.collectable))
    services.scanner_adapter = builtin_scanner(settings, services.vulnerability_data, scan_jobs,
                                               services.built_in_scanner_key)
    services.replicator = Replicator(
        registry, services.policies, local_side=lambda ctx: LocalSide(services, ctx),
        remote_side=lambda name: remote_side(services, name),
        local_repositories=lambda: _all(catalog.repositories), local_tags=lambda name: _all(
            lambda limit, last: catalog.tags(name, limit, last)),
        failed_tasks=lambda policy: [UUID(t.task) for t in services.replication_runs.failed_tasks(policy)],
        local_tag_labels=services.labels.tag_labels, lease_seconds=settings.replication_lease_seconds)
    services.metrics = metrics_for(services) if settings.metrics.enabled else None
    return services


def metrics_for(services: Services) -> Metrics:
    """The instruments, and what a scrape reads from the read models and the follow state."""
    readings = MetricReadings(services.db)
    return Metrics(Readings(
        log_head=services.log_store.head, read_model_positions=services.projections.positions,
        projects=readings.projects,
        extra=[partial(queue_readings, readings), partial(follower_readings, services.follow_state.status),
               partial(last_run_readings, readings), partial(outcome_readings, readings)]))


def wire_scanning(services: Services, key_material: bytes) -> None:
    """Scanner registrations, scans, the adapter client, and the built-in scanner registered (and
    made the default) on first start."""
    settings, registry, db = services.settings, services.registry, services.db
    views = ScannersView(db)
    services.scanner_registrations = views
    key = hmac.new(key_material, b"portlog built-in scanner adapter", hashlib.sha256).hexdigest()
    services.scanners = Scanners(registry, services.secret_box, views.name_taken, views.default_uuid, key)
    services.scan_requests = ScanRequests(registry)
    services.auto_scan_enabled = services.scanning_policies.auto_scan_enabled
    services.built_in_scanner_url = built_in_scanner_url(settings)
    services.built_in_scanner_key = key
    built_in = built_in_guard(settings, services.built_in_scanner_url)
    built_in.tracing = services.tracing
    services.scanner_client = partial(scanner_client, services.outbound, built_in, services.built_in_scanner_url)
    if not services.follow.following():  # a follower has the leader's registration, from the log
        register_built_in_scanner(services)


def built_in_scanner_url(settings: Settings) -> str:
    from background.scan_jobs import registry_url

    return f"{registry_url(settings, internal=False)}/scanner"


def built_in_guard(settings: Settings, url: str) -> OutboundGuard:
    """The outbound guard of the built-in scanner's one URL: Portlog's own address (which every
    user-supplied address is refused) allowed, for this URL only (its registration cannot be
    changed, and the client follows no redirect)."""
    parts = urlsplit(url)
    try:
        own = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port, type=socket.SOCK_STREAM)}
    except (socket.gaierror, UnicodeError):
        own = set()
    return OutboundGuard((*settings.outbound_allow, *own), settings.outbound_deny, own=own_services(settings)[1:])


def scanner_client(outbound: OutboundGuard, built_in: OutboundGuard, built_in_url: str, url: str, auth: str,
                   credential: str | None, skip_cert_verify: bool):
    from adapters.scanner_client import ScannerClient  # only where an adapter is used

    guard = built_in if url == built_in_url else outbound
    return ScannerClient(url, auth, credential, skip_cert_verify=skip_cert_verify, outbound=guard)


def register_built_in_scanner(services: Services, serving: bool = False) -> None:
    """Portlog's own adapter, registered `Portlog` and made the default on first start; its URL
    follows the settings of a serving process (`serving`: the app's lifespan, api/app.py) on later
    starts (a changed port) — not those of a command line process beside it, whose settings may
    not name the port it serves on. Its key is derived from the oldest signing key (shared by
    every node), never stored."""
    from uuid import NAMESPACE_URL, uuid5

    from domain.context import SYSTEM

    registration_id = uuid5(NAMESPACE_URL, "/scanners/built-in")
    settings = ScannerSettings(services.built_in_scanner_url, "Portlog's built-in scanner", API_KEY_HEADER)
    scanners = services.scanners
    existing = services.registry.load(registration_id)
    if existing is None:
        if services.scanner_registrations.name_taken(BUILT_IN_NAME):
            return  # an administrator's registration took the name first
        try:
            _, position = scanners.register(BUILT_IN_NAME, settings, SYSTEM, immutable=True,
                                             registration_id=registration_id)
        except IntegrityError:  # another node starting at the same time registered it
            services.projections.catch_up()
            return
    elif existing.deleted or not serving:
        return
    else:
        position = scanners.refresh_built_in(str(registration_id), settings.url, SYSTEM)
    services.projections.wait_for(position)


def proxy_cache(services: Services) -> ProxyCache:
    from adapters.registry_client import RegistryClientError

    def client_for(endpoint: str):
        settings = services.endpoints.get(endpoint).settings
        username, password = services.endpoints.credentials(endpoint)
        # A cached pull waits for the upstream's freshness answer: not for long.
        return services.remote_registry(settings.url, username, password, settings.insecure,
                                        timeout=PROXY_UPSTREAM_TIMEOUT_SECONDS)

    return ProxyCache(services, client_for, (RegistryClientError,))


def remote_side(services: Services, endpoint: str):
    """A remote endpoint as one end of a copy (domain/transfer.py Side)."""
    from adapters.remote_side import RemoteSide  # the HTTP client only where a peer is used

    settings = services.endpoints.get(endpoint).settings
    username, password = services.endpoints.credentials(endpoint)
    return RemoteSide(services.remote_registry(settings.url, username, password, settings.insecure))


def _all(page, size: int = 1000) -> list[str]:
    """Every name a `page(limit, last)` listing gives, page after page."""
    found: list[str] = []
    while batch := page(size, found[-1] if found else None):
        found += batch
        if len(batch) < size:
            break
    return found
