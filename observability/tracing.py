"""Tracing setup: the tracer provider chosen by the standard `OTEL_*` variables, and W3C
`traceparent` in and out of the current context.

With `OTEL_TRACES_EXPORTER` unset or `none` nothing is configured: no provider, no asyncpg or Redis
instrumentation, and the spans of `observability.spans` are not even created.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_propagator = TraceContextTextMapPropagator()
_provider: trace.TracerProvider | None = None
_tracer: Tracer | None = None

# `otlp` follows OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL; the other names are the SDK's entry points.
_OTLP_BY_PROTOCOL = {"http/protobuf": "otlp_proto_http", "grpc": "otlp_proto_grpc"}


def configure_tracing(exporters: str = "none", protocol: str | None = None) -> trace.TracerProvider | None:
    """Once per process, at start: a provider exporting to `exporters` (the value of
    OTEL_TRACES_EXPORTER, comma-separated). Sampler, resource, endpoints and batching follow the
    SDK's own `OTEL_*` variables. A later call keeps what the first one installed."""
    names = [n.strip() for n in exporters.split(",") if n.strip() and n.strip() != "none"]
    if _provider is not None or not names:
        return _provider
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    given = OTELResourceDetector().detect().attributes  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
    service = given.get("service.name") or "shopstream"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    for name in names:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name, protocol)()))
    trace.set_tracer_provider(provider)
    install(provider)
    return provider


def _exporter(name: str, protocol: str | None) -> Any:
    entry = _OTLP_BY_PROTOCOL[protocol or "http/protobuf"] if name == "otlp" else name
    found = entry_points(group="opentelemetry_traces_exporter", name=entry)
    if not found:
        raise ValueError(f"no trace exporter {name!r} is installed")
    return next(iter(found)).load()


def install(provider: trace.TracerProvider) -> None:
    """Trace with `provider`: ShopStream's own spans, asyncpg and Redis client spans."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    global _provider, _tracer
    uninstall()
    _provider, _tracer = provider, provider.get_tracer("shopstream")
    AsyncPGInstrumentor().instrument(tracer_provider=provider)
    RedisInstrumentor().instrument(tracer_provider=provider)


def uninstall() -> None:
    """Stop tracing in this process (tests install a provider of their own and remove it after)."""
    global _provider, _tracer
    if _provider is None:
        return
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    AsyncPGInstrumentor().uninstrument()
    RedisInstrumentor().uninstrument()
    _provider = _tracer = None


def flush_tracing(timeout_seconds: float = 5.0) -> None:
    """Export the spans still batched. A process that multiprocessing started leaves through
    `os._exit`, which skips the SDK's own exit hook: server and supervisor processes call this last."""
    if _provider is not None:
        _provider.force_flush(int(timeout_seconds * 1000))  # type: ignore[attr-defined]


def tracer_provider() -> trace.TracerProvider | None:
    """The provider in use, or None when tracing is off."""
    return _provider


def tracer() -> Tracer | None:
    """ShopStream's own tracer, or None when tracing is off."""
    return _tracer


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


def current_trace_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span as lowercase hex, for log lines; None outside a trace."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")


def context_of(traceparent: str | None) -> otel_context.Context:
    # A fresh base context: it drops the background suppression, so client spans resume inside.
    return _propagator.extract({"traceparent": traceparent} if traceparent else {}, otel_context.Context())
