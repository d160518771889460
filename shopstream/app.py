"""The Litestar application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from litestar import Litestar, Response, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components
from litestar.plugins.prometheus import PrometheusController
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bus.bus import Bus
from bus.module import ContextModule
from contexts.edge.access import SECURITY_SCHEMES, caller
from contexts.edge.decoding import StrictBodies
from observability.exposition import registry, server_process
from observability.http import HttpMetrics
from observability.http_tracing import http_server_plugins
from observability.logging import configure_logging
from observability.tracing import configure_tracing, flush_tracing
from shopstream import __version__
from shopstream.auth import Authentication, Authenticator, LoopbackOnly, check_listener, serves_everyone
from shopstream.bootstrap import Messaging, modules_of
from shopstream.edge import MAX_BODY_BYTES, Edge
from shopstream.embedded import with_embedded_defaults
from shopstream.health import Drain, health, ready
from shopstream.openapi import complete_document
from shopstream.ops import OpsController
from shopstream.options import allow_every_method
from shopstream.problems import EXCEPTION_HANDLERS
from shopstream.ratelimit import Limiter, Rate, RateLimit
from shopstream.settings import Settings


def _bus(state: State) -> Bus:
    return state.messaging.bus  # type: ignore[no-any-return]


def _pools(state: State) -> Mapping[str, asyncpg.Pool]:
    return state.messaging.resources.pools  # type: ignore[no-any-return]


class Metrics(PrometheusController):
    """Prometheus text exposition of every ShopStream instrument (observability/metrics.py)."""

    tags = ["operations"]

    @get(media_type=CONTENT_TYPE_LATEST, operation_id="getMetrics", summary="Prometheus metrics")
    async def get(self) -> Response[bytes]:  # documented as the content type it is served with
        return Response(generate_latest(registry()), headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(
    settings: Settings | None = None,
    *,
    modules: Sequence[ContextModule] | None = None,
    run_workers: bool = False,
    route_handlers: Sequence[Any] = (),
) -> Litestar:
    """Build the API. Pools and clients open in the lifespan, inside the server's event loop;
    with `run_workers` the relays and consumers run in the same process (`shopstream serve`)."""
    settings = settings or Settings.from_env()
    check_listener(settings)  # SHOPSTREAM_AUTH=none on a public HOST: refused here too, not only by the CLI
    modules = modules or modules_of(settings)
    configure_logging(settings.log_level, settings.log_format)  # each server process, workers too
    configure_tracing(settings.traces_exporter, settings.otlp_traces_protocol or settings.otlp_protocol)
    drain = Drain()
    authenticator = Authenticator.from_settings(settings)  # keys parsed here, once
    limiter = Limiter(
        settings.redis_prefix, Rate.parse(settings.rate_limit_reads), Rate.parse(settings.rate_limit_writes)
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        stop_watching_signals = drain.on_shutdown_signals()
        resolved, servers = with_embedded_defaults(settings)
        messaging = await Messaging.open(resolved, modules)
        app.state.messaging = messaging
        app.state.resources = messaging.resources
        limiter.attach(messaging.resources.redis)
        supervisor = messaging.supervisor() if run_workers else None
        background = asyncio.create_task(supervisor.run()) if supervisor else None
        try:
            yield
        finally:
            drain.begin()
            stop_watching_signals()
            limiter.attach(None)
            if supervisor is not None and background is not None:
                supervisor.stop()
                await background
            await messaging.close()
            if servers is not None:
                servers.stop()
            flush_tracing()

    app = Litestar(
        route_handlers=[
            health,
            ready,
            Metrics,
            OpsController,
            *(h for m in modules for h in m.route_handlers),
            *route_handlers,
        ],
        lifespan=[lifespan, server_process],  # the second opens after the first, closes before it
        middleware=[
            HttpMetrics,
            DefineMiddleware(Authentication, authenticator=authenticator),
            *([RateLimit(limiter)] if limiter.enabled else []),
        ],
        state=State({"drain": drain}),
        logging_config=None,  # the process's own logging (configure_logging) stays in charge
        dependencies={
            "bus": Provide(_bus, sync_to_thread=False, use_cache=True),
            "pools": Provide(_pools, sync_to_thread=False, use_cache=True),
            "caller": Provide(caller, sync_to_thread=False),
        },
        plugins=[StrictBodies(), *http_server_plugins()],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        before_send=[allow_every_method],
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=OpenAPIConfig(
            title="ShopStream",
            version=__version__,
            description=" ".join(f"{m.name}: {m.description}" for m in modules if m.description)
            + " No text field may hold U+0000 (422).",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
            components=Components(security_schemes=SECURITY_SCHEMES),  # type: ignore[arg-type]
        ),
    )
    complete_document(
        app.openapi_schema, [m.name for m in modules]
    )  # built once here; /schema serves this document
    # With SHOPSTREAM_AUTH=none, also per connection: a server bound by other means than HOST (e.g.
    # `uvicorn --factory ... --host 0.0.0.0`) answers 403 to whatever reaches it from beyond loopback.
    app.asgi_handler = Edge(LoopbackOnly(app.asgi_handler) if serves_everyone(settings) else app.asgi_handler)
    return app
