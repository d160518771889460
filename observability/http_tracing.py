"""HTTP server spans through Litestar's own OpenTelemetry plugin, named `{method} {route template}`,
with personal data (`PERSONAL_QUERY_PARAMETERS`) scrubbed from the URL they record."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from litestar.config.app import AppConfig
from litestar.plugins import InitPlugin
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from litestar.types import ASGIApp, Receive, Scope, Send
from opentelemetry import trace
from opentelemetry.util.http import (
    OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS,
    get_custom_headers,
)

from observability.privacy import scrub_query
from observability.tracing import tracer_provider

# Probes and scrapes would bury the requests worth seeing.
_UNTRACED = [r"^/health$", r"^/ready$", r"^/metrics$"]
# Credentials never become span attributes, even if OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_* asks for
# every header: these are always redacted, besides any the operator names.
_SECRET_HEADERS = ["authorization", "cookie", "set-cookie", "x-api-key"]


def http_server_plugins() -> list[Any]:
    """A SERVER span per request that continues an incoming `traceparent`; none when tracing is off."""
    provider = tracer_provider()
    if provider is None:
        return []
    config = OpenTelemetryConfig(
        tracer_provider=provider,
        scope_span_details_extractor=_method_only,
        exclude=_UNTRACED,
        exclude_spans=["receive", "send"],
        server_request_hook_handler=_without_personal_data,
        http_capture_headers_sanitize_fields=[
            *_SECRET_HEADERS,
            *get_custom_headers(OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS),
        ],
    )
    return [OpenTelemetryPlugin(config), _RouteNamedSpans()]


_URL_ATTRIBUTES = ("http.url", "url.full")


def _without_personal_data(span: Any, scope: Any) -> None:
    """The instrumentation records the full URL (`http.url`, `url.full`, `url.query`) before the app
    runs; this hook, called right after, rewrites those attributes with personal values replaced."""
    query = scope.get("query_string") or b""
    if not query or not span.is_recording():
        return
    raw = query.decode("latin-1")
    scrubbed = scrub_query(raw)
    if scrubbed == raw:
        return
    recorded = getattr(span, "attributes", None) or {}
    for name in _URL_ATTRIBUTES:
        if name in recorded:
            span.set_attribute(name, f"{str(recorded[name]).split('?', 1)[0]}?{unquote(scrubbed)}")
    if "url.query" in recorded:
        span.set_attribute("url.query", scrubbed)


def _method_only(scope: Any) -> tuple[str, dict[str, Any]]:
    # The plugin starts the span before routing; a request that matches no route keeps this name,
    # so raw paths never become span names.
    return str(scope.get("method", "HTTP")), {}


class _RouteNamedSpans(InitPlugin):
    """Renames the server span once the router has matched the request's route template."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.middleware.insert(0, _name_by_route)
        return app_config


def _name_by_route(app: ASGIApp) -> ASGIApp:
    async def named(scope: Scope, receive: Receive, send: Send) -> None:
        template = scope.get("path_template")
        if template and scope["type"] == "http":
            span = trace.get_current_span()
            span.update_name(f"{scope.get('method')} {template}")
            span.set_attribute("http.route", template)
        await app(scope, receive, send)

    return named
