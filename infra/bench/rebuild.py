"""`python -m infra.bench.rebuild --events N [--database sqlite|postgres] [--data-dir DIR] [--keep]`:
how fast `portlog projections rebuild` replays the log into every read model (issue 23, goal 5).

Writes a realistic event store of about N events through the domain services (no HTTP): projects
with members and robots, a quota, an immutability rule and a retention policy each; images of
several layers (a few base layers shared by many repositories) pushed into many repositories, tags
moved to newer images, old manifests deleted, blobs unlinked, pulls recorded by the pull recorder's
event, labels put on artifacts. Then runs the same rebuild as the command (`ProjectionRunner.rebuild`)
and prints events, seconds and events/s, and the time each read model took in a second pass that
replays the log into one read model at a time.

`--data-dir DIR` keeps the store there and reuses it when it is already there (generating 10^6
events takes a while: generate once, rebuild many times); `--keep` keeps a temporary one (its path
is printed). `--database postgres` puts the event store and the read models on a throw-away
PostgreSQL database (infra/services/postgres.py), dropped at the end unless `--keep`;
`--copy-from DIR` fills it with the log of a store generated before (on SQLite), verbatim.
A benchmark, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from adapters.passwords import Argon2SecretHasher
from config.bootstrap import Services, bootstrap
from config.settings import Settings
from domain.context import RequestContext
from domain.errors import ConflictError
from domain.immutability import ImmutableRule, Selector
from domain.labels import LabelKey
from domain.permissions import Role
from domain.quotas import QuotaLimits
from domain.retention import RetentionRule

ADMIN_PASSWORD = "Bench-Pass-1"
PROJECTS = 8
REPOSITORIES_PER_PROJECT = 12
USERS = 24
LABELS = 4
BASE_LAYERS = 6  # shared by many images, as distro base layers are
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infra.bench.rebuild", description=(
        "Events per second of `portlog projections rebuild` on a realistic generated event store."))
    parser.add_argument("--events", type=int, default=100_000, help="about how many events to write (default 10^5)")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite",
                        help="sqlite: embedded (default); postgres: a throw-away PostgreSQL database")
    parser.add_argument("--data-dir", type=Path, help="keep the store here; reused when already there")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory / database")
    parser.add_argument("--rounds", type=int, default=1, help="rebuilds to time (default 1)")
    parser.add_argument("--per-read-model", action="store_true",
                        help="also time each read model alone (one more replay per read model)")
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--copy-from", type=Path, help=(
        "instead of generating, copy the event log of this data directory (a store this command generated "
        "on SQLite) verbatim: the same events on PostgreSQL without generating them again"))
    return parser.parse_args(argv)


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


class StoreWriter:
    """Writes a registry's history through the domain services, as its API would."""

    def __init__(self, services: Services, rng: random.Random) -> None:
        self.services = services
        self.rng = rng
        self.admin = RequestContext("admin", "bench")
        self.users = [f"dev{i}" for i in range(USERS)]
        self.projects = [f"proj{i}" for i in range(PROJECTS)]
        self.repositories = [f"{p}/app{r}" for p in self.projects for r in range(REPOSITORIES_PER_PROJECT)]
        self.base_layers = [f"base-layer-{i}".encode() * 40 for i in range(BASE_LAYERS)]
        self.images: dict[str, list[str]] = {name: [] for name in self.repositories}  # digests, oldest first
        self.linked: dict[str, set[str]] = {name: set() for name in self.repositories}
        self.configs: dict[str, str] = {}  # manifest digest: its config's, a blob no other image has
        self.pushes = 0

    def set_up(self) -> None:
        """Accounts, projects, members, robots and each project's rules."""
        admin = self.services.admin
        for user in self.users:
            admin.create_user(user, "Dev-Pass-1", f"{user}@example.org", False, self.admin)
        for number, project in enumerate(self.projects):
            admin.create_project(project, number % 3 == 0, self.admin, owner=self.users[number])
            for offset, role in ((1, Role.DEVELOPER), (2, Role.DEVELOPER), (3, Role.GUEST), (4, Role.MAINTAINER)):
                admin.set_member(project, self.users[(number + offset) % USERS], role, None, self.admin)
            admin.create_robot("ci", project, [{"project": project, "resource": "repository", "action": "push"},
                                               {"project": project, "resource": "repository", "action": "pull"}],
                               None, "pushes from CI", self.admin)
            rules = self.services.project_rules
            rules.set_quota(project, QuotaLimits(storage_bytes=10 ** 12, artifacts=10 ** 6), self.admin)
            rules.add_immutable_rule(project, ImmutableRule(Selector("**"), Selector("release-*")), self.admin)
            rules.set_retention(project, [RetentionRule("latestPushedK", 10, Selector("**"), Selector("**"),
                                                        False, False)], "0 3 * * *", self.admin)
        for number in range(LABELS):
            self.services.labelling.create(LabelKey("g", None, f"label-{number}"), "#00ff00", "", self.admin)
        self.services.projections.catch_up()  # the pushes' checks read the projects' read models

    def step(self) -> None:
        """One thing a registry sees: mostly pushes, sometimes a tag moved, an old image
        deleted, pulls recorded, a label, a member changed."""
        roll = self.rng.random()
        repository = self.rng.choice(self.repositories)
        if roll < 0.55 or len(self.images[repository]) < 2:
            self.push_image(repository)
        elif roll < 0.70:
            self.record_pulls(repository)
        elif roll < 0.80:
            self.move_tag(repository)
        elif roll < 0.92:
            self.delete_oldest(repository)
        elif roll < 0.96:
            self.label(repository)
        else:
            self.change_member()

    def push_image(self, repository: str) -> None:
        self.pushes += 1
        ctx = RequestContext(self.rng.choice(self.users), "bench")
        bases = self.rng.sample(self.base_layers, self.rng.randint(1, 3))
        own = [f"layer {self.pushes} {i}".encode() * 20 for i in range(self.rng.randint(1, 3))]
        config = json.dumps({"architecture": "amd64", "os": "linux", "push": self.pushes}).encode()
        for blob in [config, *bases, *own]:
            if digest_of(blob) not in self.linked[repository]:
                self.upload(repository, blob, ctx)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": CONFIG, "digest": digest_of(config), "size": len(config)},
            "layers": [{"mediaType": LAYER, "digest": digest_of(b), "size": len(b)} for b in [*bases, *own]],
            "annotations": {"org.opencontainers.image.revision": str(self.pushes)},
        }).encode()
        tag = self.rng.choice(["latest", f"1.{self.pushes}", "main", f"release-{self.pushes}"])
        parsed, _ = self.services.artifacts.push_manifest(repository, tag, manifest, OCI_MANIFEST, ctx)
        self.images[repository].append(parsed.digest)
        self.configs[parsed.digest] = digest_of(config)

    def upload(self, repository: str, blob: bytes, ctx: RequestContext) -> None:
        uploads = self.services.uploads
        info = uploads.start_upload(repository)
        writer = self.services.blobs.upload_writer(info.upload_id)
        writer.write(blob)
        info = replace(info, size=writer.commit())
        uploads.complete_upload(repository, info, digest_of(blob), ctx)
        self.linked[repository].add(digest_of(blob))

    def record_pulls(self, repository: str) -> None:
        moment = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
        pulls = [{"digest": digest, "tag": None, "actor": self.rng.choice(self.users),
                  "count": self.rng.randint(1, 50), "last_pulled_at": moment}
                 for digest in self.rng.sample(self.images[repository], min(3, len(self.images[repository])))]
        self.services.artifacts.record_pulls(repository, pulls, RequestContext("system", "bench"))

    def move_tag(self, repository: str) -> None:
        digest = self.rng.choice(self.images[repository])
        self.services.artifacts.point_tag(repository, self.rng.choice(["latest", "stable", "main"]), digest,
                                          RequestContext(self.rng.choice(self.users), "bench"))

    def delete_oldest(self, repository: str) -> None:
        """The oldest image, unless an immutable tag holds it; and now and then a blob of it
        unlinked (as garbage collection of the repository would)."""
        repo = self.services.registry.get_repository(repository)
        for digest in list(self.images[repository][:-1]):
            if any(t.startswith("release-") for t, d in repo.tags.items() if d == digest):
                continue
            self.services.artifacts.delete_manifest(repository, digest, self.admin)
            self.images[repository].remove(digest)
            if self.rng.random() < 0.5:
                self.services.uploads.unlink_blob(repository, self.configs[digest], self.admin)
                self.linked[repository].discard(self.configs[digest])
            return

    def label(self, repository: str) -> None:
        digest = self.rng.choice(self.images[repository])
        key = LabelKey("g", None, f"label-{self.rng.randrange(LABELS)}")
        try:
            self.services.labelling.add_to_artifact(repository, digest, key, self.admin)
        except ConflictError:  # already there
            self.services.labelling.remove_from_artifact(repository, digest, key, self.admin)

    def change_member(self) -> None:
        project, user = self.rng.choice(self.projects), self.rng.choice(self.users)
        role = self.rng.choice([Role.DEVELOPER, Role.GUEST, Role.MAINTAINER])
        self.services.admin.set_member(project, user, role, None, self.admin)


def settings_for(data_dir: Path, dsn: str | None) -> Settings:
    settings = Settings(data_dir=data_dir, admin_password=ADMIN_PASSWORD)
    if dsn is not None:
        settings = replace(settings, database=Settings.from_env({"PORTLOG_DATABASE_URL": dsn}).database)
    return settings


def generate(settings: Settings, events: int, seed: int) -> int:
    services = bootstrap(settings, hasher=Argon2SecretHasher(fast=True))
    try:
        writer = StoreWriter(services, random.Random(seed))
        started = time.perf_counter()
        writer.set_up()
        while services.log_store.head() < events:
            writer.step()
            if writer.pushes % 2000 == 0 and writer.pushes:
                services.projections.catch_up()  # bounded: a real registry's read models follow
        head = services.log_store.head()
        print(f"generated {head:,} events in {time.perf_counter() - started:.1f} s")
        return head
    finally:
        services.close()


def copy_log(source_dir: Path, settings: Settings) -> int:
    """Fills the (empty) event store of `settings` with the SQLite log of `source_dir`, event for
    event (positions, ids, versions, states as they are), as a follower's log shipping does."""
    from adapters.log_store import log_store_for, read_all
    from domain.application import Registry

    source = Registry(None, env=settings_for(source_dir, None).event_store_env)
    target = Registry(None, env=settings.event_store_env)
    shutil.copy(source_dir / "secret.key", settings.data_dir / "secret.key")
    reader, writer = log_store_for(source.recorder), log_store_for(target.recorder)
    batch: list = []
    for event in read_all(reader, batch=5000):
        batch.append(event)
        if len(batch) == 5000:
            writer.append_verbatim(batch)
            batch = []
    head = writer.append_verbatim(batch)
    print(f"copied {head:,} events from {source_dir}")
    return head


def rebuild(settings: Settings) -> tuple[int, float, float]:
    """(events, wall seconds, this process's CPU seconds): on a shared machine the CPU time is
    the steadier figure (on PostgreSQL it leaves out the server's)."""
    services = bootstrap(settings, hasher=Argon2SecretHasher(fast=True))
    try:
        head = services.log_store.head()
        started, cpu = time.perf_counter(), time.process_time()
        services.projections.rebuild()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        behind = {name: position for name, position in services.projections.positions().items() if position < head}
        if behind:
            raise SystemExit(f"read models short of the log's head {head} after the rebuild: {behind}")
        return head, seconds, cpu
    finally:
        services.close()


def per_read_model(settings: Settings) -> dict[str, float]:
    """Seconds each read model takes replayed alone (each pays the log reading and decoding)."""
    from projections.runner import ProjectionRunner

    services = bootstrap(settings, hasher=Argon2SecretHasher(fast=True))
    seconds = {}
    try:
        for projection in services.projections.projections:
            runner = ProjectionRunner(services.db, services.registry, [projection])
            started = time.perf_counter()
            runner.rebuild()
            seconds[projection.name] = time.perf_counter() - started
    finally:
        services.close()
    return seconds


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    temporary = args.data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix="portlog-rebuild-")) / "data" if temporary else args.data_dir
    pg = dsn = None
    if args.database == "postgres":
        from infra.services import postgres

        pg = postgres.server()
        marker = data_dir / "postgres-dsn"
        dsn = marker.read_text().strip() if marker.exists() else pg.create_database("portlog_rebuild")
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(dsn)
    settings = settings_for(data_dir, dsn)
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)  # as `portlog serve` wants its data directory
    try:
        if not (data_dir / "generated").exists():
            if args.copy_from is not None:
                copy_log(args.copy_from, settings)
            else:
                generate(settings, args.events, args.seed)
            (data_dir / "generated").write_text(str(args.events))
        for _ in range(args.rounds):
            events, seconds, cpu = rebuild(settings)
            print(f"rebuild ({args.database}): {events:,} events in {seconds:.2f} s: {events / seconds:,.0f} events/s"
                  f" ({cpu:.2f} s CPU in this process: {events / cpu:,.0f} events per CPU second)")
        if args.per_read_model:
            for name, seconds in sorted(per_read_model(settings).items(), key=lambda item: -item[1]):
                print(f"  {name:20} {seconds:7.2f} s")
    finally:
        if args.keep or not temporary:
            print(f"kept: {data_dir}" + (f" (database {dsn})" if dsn else ""))
        else:
            shutil.rmtree(data_dir.parent, ignore_errors=True)
            if pg is not None and dsn is not None:
                pg.drop_database(dsn)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
