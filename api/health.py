"""What Portlog depends on, checked for real each time it is asked: the database (the event log
and the read models), blob storage, the NATS relay and the default scanner when configured
(an external one's answer stands SCANNER_ANSWER_SECONDS).
Harbor's /api/v2.0/health (api/harbor/system.py) reports every component; /readyz, for
orchestrators, the ones a request cannot do without, plus whether the read models have caught
up with the log since the process started. /livez only says the process answers."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from api.management.common import json_response
from background.scan_jobs import adapter_of
from config.bootstrap import Services

HEALTHY, UNHEALTHY = "healthy", "unhealthy"
MAX_REASON = 300  # a driver's message can be long; the first part says what failed
CHECK_SECONDS = 5.0  # a probe gets its answer in time, even when a dependency never answers
# How long an external scanner's answer stands: /api/v2.0/health answers anyone, and however
# often it is asked, the scanner gets one request per interval from each process.
SCANNER_ANSWER_SECONDS = 10.0


@dataclass(frozen=True)
class ComponentHealth:
    name: str
    error: str | None = None  # None: healthy

    @property
    def healthy(self) -> bool:
        return self.error is None

    def to_json(self) -> dict:
        """Harbor's ComponentHealthStatus."""
        return {"name": self.name, "status": HEALTHY if self.healthy else UNHEALTHY,
                **({"error": self.error} if self.error else {})}


def reason(error: Exception) -> str:
    first_line = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {first_line}"[:MAX_REASON] if first_line else type(error).__name__


def bounded(check: Callable[[], object], seconds: float = CHECK_SECONDS) -> str | None:
    """None when `check` succeeded within `seconds`, else why not. A check still waiting (the
    event store's connection pool waits 30 s for a connection) ends in its daemon thread, unobserved."""
    outcome: list[str | None] = []

    def run() -> None:
        try:
            check()
            outcome.append(None)
        except Exception as error:
            outcome.append(reason(error))

    thread = threading.Thread(target=run, name="portlog-health-check", daemon=True)
    thread.start()
    thread.join(seconds)
    return outcome[0] if outcome else f"no answer within {seconds:g} seconds"


def database_health(services: Services) -> ComponentHealth:
    """The read models first: when they share the database with the event log, their driver
    tells why at once, where the event store's pool would only time out."""
    error = bounded(services.projections.positions) or bounded(services.log_store.head)
    return ComponentHealth("database", error)


def storage_health(services: Services) -> ComponentHealth:
    return ComponentHealth("storage", bounded(services.blobs.check))


def nats_health(services: Services) -> ComponentHealth | None:
    if not services.settings.events.nats_url:
        return None
    relay = services.event_relay
    if relay is None:
        return ComponentHealth("nats", "the event relay has not started")
    if not relay.connected:
        return ComponentHealth("nats", relay.last_error or "not connected to NATS")
    return ComponentHealth("nats")


def scanner_health(services: Services) -> ComponentHealth | None:
    """The default scanner's adapter answers its metadata: an external adapter is asked over HTTP,
    the built-in one runs in this process."""
    if services.scanner_registrations is None:
        return None
    try:
        row = services.scanner_registrations.default()
    except Exception as error:  # the database's failure (reported there too)
        return ComponentHealth("scanner", reason(error))
    if row is None:
        return None
    if row.url == services.built_in_scanner_url and services.scanner_adapter is not None:
        return ComponentHealth("scanner")  # Portlog's own adapter, in this process

    def ask_metadata() -> None:
        with adapter_of(services, services.scanners.get(row.uuid)) as adapter:
            adapter.metadata()

    error = _scanner_answers.get((row.uuid, row.url), lambda: bounded(ask_metadata))
    return ComponentHealth("scanner", f"the scanner {row.name} did not answer: {error}"[:MAX_REASON] if error else None)


class RecentAnswers:
    """Each key's last answer, asked again once it is SCANNER_ANSWER_SECONDS old; callers
    arriving while it is asked wait for that answer rather than asking too."""

    def __init__(self) -> None:
        self._answers: dict[tuple, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple, ask: Callable[[], str | None]) -> str | None:
        with self._lock:
            asked_at, answer = self._answers.get(key, (None, None))
            if asked_at is None or time.monotonic() - asked_at >= SCANNER_ANSWER_SECONDS:
                answer = ask()
                self._answers = {key: (time.monotonic(), answer)}  # only the default scanner's is kept
            return answer


_scanner_answers = RecentAnswers()


def components(services: Services) -> list[ComponentHealth]:
    """Every component, sorted by name as Harbor sorts them."""
    checked = [ComponentHealth("core"), database_health(services), storage_health(services),
               nats_health(services), scanner_health(services)]
    return sorted((c for c in checked if c is not None), key=lambda c: c.name)


def overall(checked: list[ComponentHealth]) -> str:
    return HEALTHY if all(c.healthy for c in checked) else UNHEALTHY


# Orchestrators' probes


def read_models_behind(services: Services) -> int:
    """How many events the slowest read model has still to apply."""
    head = services.log_store.head()
    current = {projection.name for projection in services.projections.projections}
    positions = [position for name, position in services.projections.positions().items() if name in current]
    return max(0, head - min(positions, default=head))  # rows of read models no longer built do not count


class Readiness:
    """Ready: the database and storage answer, and the read models have caught up with the log
    once since the process started (a node still rebuilding them is not ready). After that,
    the ordinary lag of a busy registry (events applied within milliseconds) does not count."""

    def __init__(self) -> None:
        self.caught_up = False

    def problems(self, services: Services) -> list[str]:
        checked = [database_health(services), storage_health(services)]
        problems = [f"{c.name}: {c.error}" for c in checked if not c.healthy]
        if not problems and not self.caught_up:
            behind = read_models_behind(services)
            if behind:
                problems.append(f"read models: {behind} events behind the log")
            self.caught_up = not behind
        return problems


async def livez(request: Request) -> Response:
    return json_response({"status": "alive"})


async def readyz(request: Request) -> Response:
    state = request.app.state
    problems = await run_in_threadpool(state.readiness.problems, state.services)
    if problems:
        return json_response({"status": "not ready", "problems": problems}, status=503)
    return json_response({"status": "ready"})
