"""Tracing: one trace follows a command from the HTTP request to every consumer of its events."""

from __future__ import annotations

import uuid

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from observability import tracing
from observability.http_tracing import http_server_plugins
from shopstream.bootstrap import product_modules
from shopstream.settings import ConfigurationError, Settings
from tests.apps import app_client, eventually, own_connection
from tests.messaging.helpers import wait_until

pytestmark = pytest.mark.anyio

# Every consumer of identity's events: its own read models and the catalogue's customer tiers.
IDENTITY_CONSUMERS = {
    projection.name
    for module in product_modules()
    for projection in module.projections
    if module.source_of(projection) == "identity"
}
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _registration() -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    return {"external_id": f"ext-{tag}", "email": f"{tag}@example.com", "first_name": "Ada", "last_name": "L"}


def _trace_id(span: ReadableSpan) -> str:
    return format(span.context.trace_id, "032x")


def _joins(span: ReadableSpan, trace_id: str) -> bool:
    return _trace_id(span) == trace_id or any(
        format(link.context.trace_id, "032x") == trace_id for link in span.links
    )


def _processed_by(exporter: InMemorySpanExporter, trace_id: str) -> set[str]:
    return {
        str(span.attributes["messaging.consumer.group.name"])
        for span in exporter.get_finished_spans()
        if span.kind == SpanKind.CONSUMER and _trace_id(span) == trace_id and span.attributes
    }


async def test_one_trace_joins_request_command_sql_publish_and_every_consumer(context_settings, spans):
    settings = await context_settings("tracing")
    async with app_client(settings) as client:
        response = await client.post("/customers", json=_registration())
        assert response.status_code == 201, response.text
        customer_id = response.json()["customer_id"]
        await eventually(client, f"/customers/{customer_id}", 1)
        server = next(s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER)
        trace_id = _trace_id(server)

        async def every_consumer_processed() -> bool:
            return _processed_by(spans, trace_id) >= IDENTITY_CONSUMERS

        await wait_until(every_consumer_processed)
    finished = spans.get_finished_spans()
    assert server.name == "POST /customers"
    command = next(s for s in finished if s.name == "command identity.RegisterCustomer")
    assert _trace_id(command) == trace_id
    assert command.parent is not None and command.parent.span_id == server.context.span_id
    assert command.attributes is not None and command.attributes["shopstream.command.outcome"] == "ok"
    sql = [
        s for s in finished if s.kind == SpanKind.CLIENT and s.attributes and s.attributes.get("db.system")
    ]
    assert any(_trace_id(s) == trace_id and s.attributes["db.system"] == "postgresql" for s in sql)
    sends = [s for s in finished if s.kind == SpanKind.PRODUCER and _joins(s, trace_id)]
    assert sends and all(s.name.startswith("send ") for s in sends)
    assert sends[0].attributes is not None
    assert sends[0].attributes["messaging.system"] == "redis"
    assert sends[0].attributes["messaging.operation.type"] == "send"
    assert sends[0].attributes["messaging.destination.name"] == sends[0].name.removeprefix("send ")
    send_ids = {s.context.span_id for s in sends}
    redis = [s for s in finished if s.attributes and s.attributes.get("db.system") == "redis"]
    assert any(s.parent is not None and s.parent.span_id in send_ids for s in redis)
    assert _processed_by(spans, trace_id) == IDENTITY_CONSUMERS
    async with own_connection(settings) as conn:
        traceparent = await conn.fetchval(
            "SELECT headers->>'traceparent' FROM identity.outbox WHERE aggregate_id = $1", customer_id
        )
    assert traceparent is not None and traceparent.split("-")[1] == trace_id


async def test_an_incoming_traceparent_continues_the_callers_trace(context_settings, spans):
    settings = await context_settings("traceparent")
    caller = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"
    async with app_client(settings) as client:
        created = await client.post("/customers", json=_registration(), headers={"traceparent": caller})
        customer_id = created.json()["customer_id"]
        changed = await client.put(
            f"/customers/{customer_id}/profile", json={"first_name": "Grace"}, headers={"traceparent": caller}
        )
        assert changed.status_code == 200, changed.text
    servers = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert {_trace_id(s) for s in servers} == {CALLER_TRACE}
    assert [s.name for s in servers] == ["POST /customers", "PUT /customers/{customer_id}/profile"]
    assert servers[1].attributes is not None
    assert servers[1].attributes["http.route"] == "/customers/{customer_id}/profile"


async def test_span_names_never_hold_raw_paths_and_probes_are_not_traced(context_settings, spans):
    settings = await context_settings("routes")
    async with app_client(settings) as client:
        missing = uuid.uuid4()
        assert (await client.get(f"/customers/{missing}")).status_code == 404
        assert (await client.get(f"/nowhere/{missing}")).status_code == 404
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200
    names = [s.name for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert names == ["GET /customers/{customer_id}", "GET"]
    assert not any(str(missing) in s.name for s in spans.get_finished_spans())


async def test_an_email_address_in_a_query_never_reaches_a_span(context_settings, spans):
    settings = await context_settings("private_query")
    email = f"private.{uuid.uuid4().hex[:10]}@example.com"
    async with app_client(settings) as client:
        assert (await client.get(f"/customers?{httpx.QueryParams(email=email)}")).status_code == 404
        assert (await client.get(f"/customers?limit=1&email={email}&external_id=x")).status_code == 422
        assert (await client.post("/customers/lookup", json={"email": email})).status_code == 404
    servers = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert [s.name for s in servers] == ["GET /customers", "GET /customers", "POST /customers/lookup"]
    assert servers[0].attributes is not None and servers[1].attributes is not None
    assert servers[0].attributes["http.url"].endswith("/customers?email=REDACTED")
    assert servers[1].attributes["http.url"].endswith("?limit=1&email=REDACTED&external_id=x")
    local_part = email.split("@")[0]
    for span in spans.get_finished_spans():
        for name, value in (span.attributes or {}).items():
            assert local_part not in str(value), (span.name, name, value)


def test_without_otel_traces_exporter_nothing_is_configured():
    settings = Settings.from_env({})
    assert settings.traces_exporter == "none"
    assert tracing.configure_tracing(settings.traces_exporter) is None
    assert tracing.tracer_provider() is None
    assert tracing.current_traceparent() is None
    assert tracing.current_trace_ids() is None
    assert http_server_plugins() == []
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    assert not AsyncPGInstrumentor().is_instrumented_by_opentelemetry
    assert not RedisInstrumentor().is_instrumented_by_opentelemetry


def test_an_unknown_exporter_fails_configuration_naming_the_variable():
    with pytest.raises(ConfigurationError, match="OTEL_TRACES_EXPORTER='bogus'"):
        Settings.from_env({"OTEL_TRACES_EXPORTER": "bogus"})
    with pytest.raises(ConfigurationError, match="OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"):
        Settings.from_env({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "smoke"})


def test_the_standard_exporter_values_are_accepted():
    for value in ("none", "console", "otlp", "otlp,console"):
        assert Settings.from_env({"OTEL_TRACES_EXPORTER": value}).traces_exporter == value


def test_current_trace_ids_name_the_current_span(spans):
    provider = tracing.tracer_provider()
    assert provider is not None
    with provider.get_tracer("test").start_as_current_span("work") as span:
        ids = tracing.current_trace_ids()
        traceparent = tracing.current_traceparent()
    context = span.get_span_context()
    assert ids == (format(context.trace_id, "032x"), format(context.span_id, "016x"))
    assert traceparent is not None and traceparent.startswith(f"00-{ids[0]}-{ids[1]}-")
