"""Pull counting's writer: what the in-memory pull counter counted becomes `PullsRecorded` events."""

from __future__ import annotations

import logging
import threading

from config.bootstrap import Services
from domain.context import SYSTEM
from domain.errors import NameUnknownError

log = logging.getLogger("portlog")


def record_pulls(services: Services, stop: threading.Event) -> None:
    """Writes what the pull counter counted, once per interval and once more on the way out."""
    interval = services.settings.events.pull_record_seconds
    while not stop.wait(interval):
        flush_pulls(services)
    flush_pulls(services)


def forget_pulls(services: Services, stop: threading.Event) -> None:
    """A follower's pulls are not recorded (its log is the leader's): what the counter counted is
    dropped once per interval, until the follower is promoted and the recorder takes over."""
    interval = services.settings.events.pull_record_seconds
    while not stop.wait(interval) and services.follow.following():
        services.pull_counter.take()


def flush_pulls(services: Services) -> None:
    for repository, pulls in services.pull_counter.take().items():
        try:
            services.artifacts.record_pulls(repository, pulls, SYSTEM)
        except NameUnknownError:
            pass  # the repository went away meanwhile: nothing left to pull
        except Exception:
            services.pull_counter.give_back(repository, pulls)
            log.exception("pulls of %s could not be recorded; kept for the next interval", repository)
