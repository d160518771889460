"""The Litestar application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.plugins.prometheus import PrometheusController

from bus.bus import Bus
from bus.module import ContextModule
from contexts.http import StrictBodies
from observability.exposition import server_process
from observability.http import HttpMetrics
from observability.http_tracing import http_server_plugins
from observability.logging import configure_logging
from observability.tracing import configure_tracing, flush_tracing
from shopstream import __version__
from shopstream.bootstrap import PRODUCT_MODULES, Messaging
from shopstream.edge import MAX_BODY_BYTES, Edge
from shopstream.embedded import with_embedded_defaults
from shopstream.health import Drain, health, ready
from shopstream.ops import OpsController
from shopstream.problems import EXCEPTION_HANDLERS
from shopstream.settings import Settings


def _bus(state: State) -> Bus:
    return state.messaging.bus  # type: ignore[no-any-return]


def _pools(state: State) -> Mapping[str, asyncpg.Pool]:
    return state.messaging.resources.pools  # type: ignore[no-any-return]


class Metrics(PrometheusController):
    """Prometheus text exposition of every ShopStream instrument (observability/metrics.py)."""

    tags = ["operations"]


def create_app(
    settings: Settings | None = None,
    *,
    modules: Sequence[ContextModule] = PRODUCT_MODULES,
    run_workers: bool = False,
    route_handlers: Sequence[Any] = (),
) -> Litestar:
    """Build the API. Pools and clients open in the lifespan, inside the server's event loop;
    with `run_workers` the relays and consumers run in the same process (`shopstream serve`)."""
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)  # each server process, workers too
    configure_tracing(settings.traces_exporter, settings.otlp_traces_protocol or settings.otlp_protocol)
    drain = Drain()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        stop_watching_signals = drain.on_shutdown_signals()
        resolved, servers = with_embedded_defaults(settings)
        messaging = await Messaging.open(resolved, modules)
        app.state.messaging = messaging
        app.state.resources = messaging.resources
        supervisor = messaging.supervisor() if run_workers else None
        background = asyncio.create_task(supervisor.run()) if supervisor else None
        try:
            yield
        finally:
            drain.begin()
            stop_watching_signals()
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
        middleware=[HttpMetrics],
        state=State({"drain": drain}),
        logging_config=None,  # the process's own logging (configure_logging) stays in charge
        dependencies={
            "bus": Provide(_bus, sync_to_thread=False, use_cache=True),
            "pools": Provide(_pools, sync_to_thread=False, use_cache=True),
        },
        plugins=[StrictBodies(), *http_server_plugins()],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=OpenAPIConfig(
            title="ShopStream",
            version=__version__,
            description="Customer identity and product catalogue of an online shop.",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
        ),
    )
    app.asgi_handler = Edge(app.asgi_handler)
    return app
