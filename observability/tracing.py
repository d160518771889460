"""Tracing helpers: W3C `traceparent` in and out of the current OpenTelemetry context."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_propagator = TraceContextTextMapPropagator()
tracer = trace.get_tracer("shopstream")


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def consuming(name: str, traceparent: str | None) -> Iterator[trace.Span]:
    """A CONSUMER span that continues the trace carried by a message."""
    parent = _propagator.extract({"traceparent": traceparent}) if traceparent else None
    token = otel_context.attach(parent) if parent is not None else None
    try:
        with tracer.start_as_current_span(name, kind=SpanKind.CONSUMER) as span:
            yield span
    finally:
        if token is not None:
            otel_context.detach(token)
