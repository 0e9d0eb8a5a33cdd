"""What runs in the background of a serving process, and when: each worker below on a thread
of its own for the app's lifetime (the app's lifespan, api/app.py, starts and stops them).

Every worker is a function of (services, stop event) that returns once `stop` is set. Several
processes or nodes may run the same workers: each one is safe to run in several places
(the log follower applies each event once; removing a stale upload twice is harmless).

A follower (docs/time-travel.md) runs only the log shipper, the read models' follower and the
janitors: nothing that writes or delivers (its log is the leader's, and the leader delivers).
Promoted (`portlog follow promote`), it starts the leader's other workers within a second.

Not started here: a garbage collection run started through the API runs on a thread of its own
(background/gc_jobs.py).
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from adapters.nats_relay import NatsRelay
from background.housekeeping import follow_log, forget_expired_logins, remove_stale_uploads
from background.log_shipper import ship_log
from background.pulls import forget_pulls, record_pulls
from background.replication_events import follow_for_replication
from background.replication_worker import run_replication
from background.scan_jobs import follow_for_auto_scan, run_scans
from background.scheduler import run_schedules
from background.vulndb_rescans import follow_for_rescans
from background.webhook_dispatcher import dispatch_webhooks
from config.bootstrap import Services, register_built_in_scanner

log = logging.getLogger("portlog")
Worker = Callable[[Services, threading.Event], None]
# The leader's workers a follower runs too: they write nothing to the log.
FOLLOWER_KEEPS = ("portlog-log-follower", "portlog-upload-janitor", "portlog-login-janitor")
PROMOTION_CHECK_SECONDS = 0.5


def workers_for(services: Services) -> dict[str, Worker]:
    """Thread name → worker, for this process."""
    return {
        # every second: events other processes wrote reach the read models
        "portlog-log-follower": follow_log,
        # every 10 minutes (or half of storage.upload_max_age_seconds): abandoned uploads go
        "portlog-upload-janitor": remove_stale_uploads,
        # every events.pull_record_seconds, and on the way out: counted pulls are recorded
        "portlog-pull-recorder": record_pulls,
        # follows the log: deliveries for the webhook policies an event matches, sent and retried
        "portlog-webhook-dispatcher": dispatch_webhooks,
        # every 20 seconds: GC, retention and replication whose cron slot has come
        "portlog-scheduler": run_schedules,
        # every second: due replication tasks, `replication.workers` at a time
        "portlog-replication": run_replication,
        # follows the log: executions of event-based replication policies
        "portlog-replication-events": follow_for_replication,
        # every second: requested scans, a few at a time, each polling its scanner adapter
        "portlog-scans": run_scans,
        # follows the log: a scan requested for each image pushed into an auto-scan project
        "portlog-auto-scan": follow_for_auto_scan,
        # follows the log: after a vulnerability data import, rescans of the artifacts it names, a page at a time
        "portlog-vulndb-rescans": follow_for_rescans,
        # every 5 minutes: expired failed-login counters and revoked tokens go
        "portlog-login-janitor": forget_expired_logins,
        # follows the log, when events.nats_url names NATS: public events to JetStream
        **({"portlog-nats-relay": relay_events} if services.settings.events.nats_url else {}),
    }


def follower_workers(services: Services) -> dict[str, Worker]:
    """Thread name → worker, for a follower."""
    leader = workers_for(services)
    shipper = {}
    if services.leader_client is not None:
        # follows the leader's log: the bytes each event needs, then the events, verbatim
        shipper["portlog-log-shipper"] = ship_log
    else:
        log.warning("this registry follows %s but was started without --follow: it serves reads and ships "
                    "nothing (give --follow, or `portlog follow promote` it)", services.follow.leader)
    # every events.pull_record_seconds: pulls counted are dropped, not recorded (until promoted)
    return {**shipper, "portlog-pull-forgetter": forget_pulls, **{name: leader[name] for name in FOLLOWER_KEEPS}}


def start(services: Services) -> Callable[[], None]:
    """Starts the workers; returns the function that stops them."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def launch(workers: dict[str, Worker]) -> None:
        for name, worker in workers.items():
            thread = threading.Thread(target=worker, args=(services, stop), name=name, daemon=True)
            thread.start()
            threads.append(thread)

    def lead_once_promoted(services: Services, stop: threading.Event) -> None:
        while services.follow.following():
            if stop.wait(PROMOTION_CHECK_SECONDS):
                return
        if services.scanners is not None:
            register_built_in_scanner(services, serving=True)
        launch({name: worker for name, worker in workers_for(services).items() if name not in FOLLOWER_KEEPS})

    if services.follow.following():
        launch({**follower_workers(services), "portlog-promotion-watch": lead_once_promoted})
    else:
        launch(workers_for(services))

    def stop_all() -> None:
        stop.set()
        for thread in list(threads):
            thread.join(timeout=5)

    return stop_all


def relay_events(services: Services, stop: threading.Event) -> None:
    events, metrics = services.settings.events, services.metrics
    progress = (lambda position: metrics.nats_relayed(position, services.log_store.head())) if metrics else None
    services.event_relay = NatsRelay(services.registry, events.nats_url.split(","), events.source, on_progress=progress)
    services.event_relay.run(stop)
