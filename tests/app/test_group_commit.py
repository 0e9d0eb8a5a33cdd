"""Group commit: concurrent commands share saves, and a failing command fails alone."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from domain.application import Registry
from domain.context import RequestContext
from domain.errors import ManifestUnknownError, NameUnknownError
from domain.repository import Repository

pytestmark = pytest.mark.both_databases

CTX = RequestContext("ci", "req")


class SlowCountingRegistry(Registry):
    """Each save takes a while, so commands pile up behind it; saves are counted."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.saves = 0
        self._count_lock = threading.Lock()

    def save(self, *objs, **kwargs):
        with self._count_lock:
            self.saves += 1
        time.sleep(0.02)
        return super().save(*objs, **kwargs)


@pytest.fixture
def registry(services, settings):
    app = SlowCountingRegistry(services.blobs, env=settings.event_store_env)
    yield app
    app.close()


def link(registry, name: str, n: int) -> int | None:
    digest = f"sha256:{n:064x}"
    return registry.update(Repository.create_id(name), lambda r: r.link_blob(digest, n, CTX),
                           create=lambda: Repository.create(name, CTX))


def test_concurrent_commands_share_saves_and_all_land(registry):
    with ThreadPoolExecutor(16) as pool:
        positions = list(pool.map(lambda n: link(registry, f"team/r{n % 4}", n), range(64)))
    assert all(position is not None for position in positions)
    assert registry.saves < 32  # 64 commands, far fewer transactions
    blobs = sum(len(registry.get_repository(f"team/r{i}").blobs) for i in range(4))
    assert blobs == 64


def test_a_failing_command_fails_alone(registry):
    link(registry, "team/app", 1)

    def delete_missing_tag():
        return registry.update(Repository.create_id("team/app"), lambda r: r.delete_tag("nope", CTX))

    with ThreadPoolExecutor(8) as pool:
        good = [pool.submit(link, registry, "team/app", n) for n in range(2, 10)]
        bad = [pool.submit(delete_missing_tag) for _ in range(4)]
        for future in bad:
            with pytest.raises(ManifestUnknownError):
                future.result()
        assert all(future.result() for future in good)
    assert len(registry.get_repository("team/app").blobs) == 9


def test_a_failed_command_creates_nothing(registry):
    def failing_push():
        return registry.update(Repository.create_id("team/never"), lambda r: r.delete_tag("x", CTX),
                               create=lambda: Repository.create("team/never", CTX))

    with pytest.raises(ManifestUnknownError):
        failing_push()
    assert registry.get_repository("team/never") is None
    with pytest.raises(NameUnknownError):
        registry.update(Repository.create_id("team/never"), lambda r: None,
                        missing=lambda: NameUnknownError("no such repository"))


def test_a_change_issuing_another_command_is_refused_not_deadlocked(registry):
    def nested(repo):
        link(registry, "team/other", 1)

    with pytest.raises(RuntimeError, match="wait for itself"):
        registry.update(Repository.create_id("team/app"), nested,
                        create=lambda: Repository.create("team/app", CTX))
