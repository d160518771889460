"""The spans of the messaging core: a command, a publish to a stream, the processing of an event.

Each helper returns a shared no-op context manager when tracing is off. The relay's and consumers'
polling runs with the client instrumentations suppressed (`background`), so an idle worker exports
nothing; their SQL and Redis calls are traced only inside a `send` or `process` span.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer

from observability import tracing
from observability.tracing import context_of

_NO_SPAN: AbstractContextManager[None] = nullcontext()


def _link_of(traceparent: str | None) -> Link | None:
    span_context = trace.get_current_span(context_of(traceparent)).get_span_context()
    return Link(span_context) if span_context.is_valid else None


def background() -> AbstractContextManager[Any]:
    """Around the relays' and consumers' loops: their polling creates no client spans."""
    if tracing.tracer() is None:
        return _NO_SPAN
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    return suppress_instrumentation()


def commanding(context: str, command: str, traceparent: str | None) -> AbstractContextManager[Span | None]:
    """The span of one command, a child of the request that sent it (None when tracing is off)."""
    if (tracer := tracing.tracer()) is None:
        return _NO_SPAN
    return _command_span(tracer, context, command, traceparent)


@contextmanager
def _command_span(tracer: Tracer, context: str, command: str, traceparent: str | None) -> Iterator[Span]:
    token = otel_context.attach(context_of(traceparent))
    try:
        with tracer.start_as_current_span(
            f"command {context}.{command}",
            attributes={"shopstream.context": context, "shopstream.command": command},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except Exception as exc:
                _record_fault(span, exc)
                raise
    finally:
        otel_context.detach(token)


def _record_fault(span: Span, exc: Exception) -> None:
    """A refusal below 500 (not found, conflict, invalid) is an answer; anything else is a fault."""
    if getattr(exc, "status", 500) >= 500:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


class EventTrace:
    """What a messaging span needs to know about one event."""

    __slots__ = ("event_id", "traceparent")

    def __init__(self, event_id: object, traceparent: str | None) -> None:
        self.event_id = str(event_id)
        self.traceparent = traceparent


@contextmanager
def _send_spans(tracer: Tracer, batches: Mapping[str, Sequence[EventTrace]]) -> Iterator[None]:
    spans = [_start_send(tracer, stream, messages) for stream, messages in batches.items()]
    # One stream: the Redis client span of the pipeline is the send span's child. Several: the one
    # pipeline belongs to none of them alone, so it stays untraced.
    token = (
        otel_context.attach(trace.set_span_in_context(spans[0], otel_context.Context()))
        if len(spans) == 1
        else None
    )
    try:
        yield
    except Exception as exc:
        for span in spans:
            _record_fault(span, exc)
        raise
    finally:
        if token is not None:
            otel_context.detach(token)
        for span in spans:
            span.end()


def _start_send(tracer: Tracer, stream: str, messages: Sequence[EventTrace]) -> Span:
    """A PRODUCER span linked to each event's trace; the child of that trace when it is only one."""
    traces = {m.traceparent for m in messages if m.traceparent}
    attributes: dict[str, Any] = {
        "messaging.system": "redis",
        "messaging.destination.name": stream,
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
    }
    if len(messages) == 1:
        attributes["messaging.message.id"] = messages[0].event_id
    else:
        attributes["messaging.batch.message_count"] = len(messages)
    return tracer.start_span(
        f"send {stream}",
        context=context_of(next(iter(traces))) if len(traces) == 1 else otel_context.Context(),
        kind=SpanKind.PRODUCER,
        attributes=attributes,
        links=[link for m in messages if (link := _link_of(m.traceparent)) is not None],
    )


def sending(batches: Mapping[str, Sequence[EventTrace]]) -> AbstractContextManager[None]:
    """Around one published batch: a `send {stream}` span per stream it writes to."""
    if (tracer := tracing.tracer()) is None or not batches:
        return _NO_SPAN
    return _send_spans(tracer, batches)


def processing(
    stream: str, group: str, event_id: object, traceparent: str | None
) -> AbstractContextManager[Span | None]:
    """A `process {stream}` CONSUMER span per event, continuing the trace the event carries."""
    if (tracer := tracing.tracer()) is None:
        return _NO_SPAN
    return _process_span(tracer, stream, group, str(event_id), traceparent)


@contextmanager
def _process_span(
    tracer: Tracer, stream: str, group: str, event_id: str, traceparent: str | None
) -> Iterator[Span]:
    token = otel_context.attach(context_of(traceparent))
    try:
        with tracer.start_as_current_span(
            f"process {stream}",
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "redis",
                "messaging.destination.name": stream,
                "messaging.operation.type": "process",
                "messaging.operation.name": "process",
                "messaging.consumer.group.name": group,
                "messaging.message.id": event_id,
            },
        ) as span:
            yield span
    finally:
        otel_context.detach(token)
