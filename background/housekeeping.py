"""The small workers of a serving process: the read models' follower and two janitors."""

from __future__ import annotations

import logging
import threading

from config.bootstrap import Services
from domain.errors import FollowerReadOnlyError

log = logging.getLogger("portlog")
FOLLOW_INTERVAL_SECONDS = 1.0
JANITOR_INTERVAL_SECONDS = 600.0
LOGIN_JANITOR_INTERVAL_SECONDS = 300.0


def follow_log(services: Services, stop: threading.Event) -> None:
    """Picks up events written by other processes; our own writes catch up inline."""
    while not stop.wait(FOLLOW_INTERVAL_SECONDS):
        try:
            services.projections.catch_up()
            services.authenticator.flush_failed_logins()
        except FollowerReadOnlyError:
            pass  # a follower records no failed logins (its login_failures table still locks attackers out)
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
