"""The Litestar application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin

from shopstream import __version__
from shopstream.bootstrap import Resources
from shopstream.edge import MAX_BODY_BYTES, Edge
from shopstream.embedded import with_embedded_defaults
from shopstream.health import health, ready
from shopstream.problems import EXCEPTION_HANDLERS
from shopstream.settings import Settings


def create_app(settings: Settings | None = None, *, route_handlers: Sequence[Any] = ()) -> Litestar:
    """Build the API; pools and clients open in the lifespan, inside the server's event loop."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        resolved, servers = with_embedded_defaults(settings)
        resources = Resources(resolved)
        await resources.open()
        app.state.resources = resources
        try:
            yield
        finally:
            await resources.close()
            if servers is not None:
                servers.stop()

    app = Litestar(
        route_handlers=[health, ready, *route_handlers],
        lifespan=[lifespan],
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
