"""Background work of a serving process, each on a thread of its own for the app's lifetime.

Every worker is a function of (services, stop event) that returns once `stop` is set. Several
processes or nodes may run the same workers: each one is safe to run in several places
(the log follower applies each event once; removing a stale upload twice is harmless).
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from adapters.nats_relay import relay_events
from api.bootstrap import Services
from background.replication_events import follow_for_replication
from background.replication_worker import run_replication
from background.scheduler import run_schedules
from background.webhook_dispatcher import dispatch_webhooks
from domain.context import SYSTEM
from domain.errors import NameUnknownError

log = logging.getLogger("portlog")
FOLLOW_INTERVAL_SECONDS = 1.0
JANITOR_INTERVAL_SECONDS = 600.0
LOGIN_JANITOR_INTERVAL_SECONDS = 300.0

Worker = Callable[[Services, threading.Event], None]


def workers_for(services: Services) -> dict[str, Worker]:
    """Thread name → worker, for this process."""
    return {"portlog-log-follower": follow_log, "portlog-upload-janitor": remove_stale_uploads,
            "portlog-pull-recorder": record_pulls, "portlog-webhook-dispatcher": dispatch_webhooks,
            "portlog-scheduler": run_schedules, "portlog-replication": run_replication,
            "portlog-replication-events": follow_for_replication, "portlog-login-janitor": forget_expired_logins,
            **({"portlog-nats-relay": relay_events} if services.settings.events.nats_url else {})}


def start(services: Services) -> Callable[[], None]:
    """Starts the workers; returns the function that stops them."""
    stop = threading.Event()
    threads = [threading.Thread(target=worker, args=(services, stop), name=name, daemon=True)
               for name, worker in workers_for(services).items()]
    for thread in threads:
        thread.start()

    def stop_all() -> None:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)

    return stop_all


def follow_log(services: Services, stop: threading.Event) -> None:
    """Picks up events written by other processes; our own writes catch up inline."""
    while not stop.wait(FOLLOW_INTERVAL_SECONDS):
        try:
            services.projections.catch_up()
            services.authenticator.flush_failed_logins()
        except Exception:
            log.exception("read models could not catch up with the event log")


def forget_expired_logins(services: Services, stop: threading.Event) -> None:
    """Failed-login counters and revoked tokens whose time is over leave the database."""
    while not stop.wait(LOGIN_JANITOR_INTERVAL_SECONDS):
        try:
            services.authenticator.failures.purge()
            if services.tokens.revoked is not None:
                services.tokens.revoked.purge()
        except Exception:
            log.exception("expired login counters or revoked tokens could not be removed")


def remove_stale_uploads(services: Services, stop: threading.Event) -> None:
    """Uploads that clients abandoned (S3 multipart uploads included) go after
    storage.upload_max_age_seconds."""
    max_age = services.settings.storage.upload_max_age_seconds
    while not stop.wait(min(JANITOR_INTERVAL_SECONDS, max_age / 2)):
        try:
            removed = services.blobs.abort_stale_uploads(max_age)
            if removed:
                log.info("removed %d uploads idle for more than %d s", removed, max_age)
        except Exception:
            log.exception("stale uploads could not be removed")


def record_pulls(services: Services, stop: threading.Event) -> None:
    """Writes what the pull counter counted, once per interval and once more on the way out."""
    interval = services.settings.events.pull_record_seconds
    while not stop.wait(interval):
        flush_pulls(services)
    flush_pulls(services)


def flush_pulls(services: Services) -> None:
    for repository, pulls in services.pull_counter.take().items():
        try:
            services.artifacts.record_pulls(repository, pulls, SYSTEM)
        except NameUnknownError:
            pass  # the repository went away meanwhile: nothing left to pull
        except Exception:
            services.pull_counter.give_back(repository, pulls)
            log.exception("pulls of %s could not be recorded; kept for the next interval", repository)
