"""OpenTelemetry tracing, configured by the standard OTEL_* variables, off by default.

On when an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
or `OTEL_TRACES_EXPORTER=otlp`; `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` keep it off.
When off, nothing of OpenTelemetry is imported: `tracing_from_environment` answers None, and the
composition root then installs no middleware, no hook and no wrapper (zero cost, no exporter
thread). When on, the SDK reads the rest of the variables itself (endpoint, headers, timeout,
`OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`, `OTEL_RESOURCE_ATTRIBUTES`); the service name is
`OTEL_SERVICE_NAME`, else `portlog`.

Spans leave through the OTLP/HTTP exporter's own connection: the collector is infrastructure the
operator configures, like the database, so it does not go through the outbound guard.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any, Iterator, Mapping
from urllib.parse import urlsplit

SERVICE_NAME = "portlog"
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def enabled(environ: Mapping[str, str]) -> bool:
    """Whether the OTEL_* variables ask for traces (read without importing OpenTelemetry)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = {name.strip().lower() for name in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if name.strip()}
    if "none" in exporters:
        return False
    return "otlp" in exporters or any(environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def tracing_from_environment(environ: Mapping[str, str] | None = None) -> Tracing | None:
    """The process's tracing when the variables turn it on; None (and no import) otherwise."""
    environ = os.environ if environ is None else environ
    return Tracing(environ) if enabled(environ) else None


class Tracing:
    """A tracer provider of this process with the OTLP/HTTP exporter behind a batch processor,
    and the spans Portlog's hooks open. Not the global provider: each `bootstrap` has its own."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        named = environ.get("OTEL_SERVICE_NAME") or "service.name=" in environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
        self.provider = TracerProvider(resource=Resource.create({} if named else {"service.name": SERVICE_NAME}))
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self.tracer = self.provider.get_tracer("portlog")
        self.propagator = TraceContextTextMapPropagator()
        self._trace = trace
        self._previous_factory = logging.getLogRecordFactory()
        logging.setLogRecordFactory(self._record)

    @contextlib.contextmanager
    def span(self, name: str, kind: str = "INTERNAL", **attributes: Any) -> Iterator[Any]:
        """A child of the current span (a root span when there is none)."""
        with self.tracer.start_as_current_span(name, kind=getattr(self._trace.SpanKind, kind),
                                               attributes=attributes) as span:
            yield span

    @contextlib.contextmanager
    def server_span(self, name: str, headers: Mapping[str, str], **attributes: Any) -> Iterator[Any]:
        """A request's span, continuing the caller's trace when its headers carry a W3C `traceparent`."""
        with self.tracer.start_as_current_span(name, context=self.propagator.extract(headers),
                                               kind=self._trace.SpanKind.SERVER, attributes=attributes) as span:
            yield span

    @contextlib.contextmanager
    def client_span(self, method: str, url: str) -> Iterator[OutgoingRequest]:
        """An outbound request's span; what it yields carries the `traceparent` to send."""
        parts = urlsplit(url)
        # Host and port only: a webhook's path or query may be its secret (Slack's are).
        attributes = {"http.request.method": method, "server.address": parts.hostname or "", "url.scheme": parts.scheme}
        if parts.port:
            attributes["server.port"] = parts.port
        with self.span(method, kind="CLIENT", **attributes) as span:
            outgoing = OutgoingRequest(span)
            self.inject(outgoing.headers)
            yield outgoing

    def detached_span(self, name: str, **attributes: Any) -> Any:
        """A child of the current span that the caller ends (`.end()`), never made current: for
        work that spans a generator's yields, where a current span could not be detached."""
        return self.tracer.start_span(name, attributes=attributes)

    def inject(self, headers: dict[str, str]) -> None:
        """Adds `traceparent` (and `tracestate`) of the current span to outgoing headers."""
        self.propagator.inject(headers)

    def trace_id(self) -> str:
        """The current trace id in hex, "" outside a span."""
        return _current_trace_id(self._trace)

    def flush(self, timeout_millis: int = 5000) -> bool:
        return self.provider.force_flush(timeout_millis)

    def shutdown(self) -> None:
        if logging.getLogRecordFactory() == self._record:
            logging.setLogRecordFactory(self._previous_factory)
        self.provider.shutdown()

    def _record(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        """A log record of any logger written inside a span carries its `trace_id` (none outside one)."""
        record = self._previous_factory(*args, **kwargs)
        trace_id = _current_trace_id(self._trace)
        if trace_id:
            record.trace_id = trace_id
        return record


class OutgoingRequest:
    """What an outbound request's span gives the code sending it: the headers to add, and
    where to note the answer's status."""

    def __init__(self, span: Any = None) -> None:
        self.headers: dict[str, str] = {}
        self._span = span

    def status(self, code: int) -> None:
        if self._span is not None:
            self._span.set_attribute("http.response.status_code", code)


def _current_trace_id(trace: Any) -> str:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""
