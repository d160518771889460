"""`OPTIONS` answers `Allow` with every method of the path, as the OpenAPI document lists them.

Litestar builds the automatic OPTIONS handler of a path with the first of its routes and keeps it
when later handlers of the same path are merged in, so `Allow` missed methods (GET on /categories).
This `before_send` hook puts the merged route's methods in instead; 405 answers are right already.
"""

from __future__ import annotations

from typing import Any

from litestar.routes import HTTPRoute

_ALLOW = b"allow"
_TABLE = "allow_by_handler"  # in the application's state, made on the first OPTIONS request


def _allow_by_handler(app: Any) -> dict[int, bytes]:
    table: dict[int, bytes] = {}
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            allow = ", ".join(sorted(route.methods)).encode()
            table.update((id(handler), allow) for handler in route.route_handlers)
    return table


async def allow_every_method(message: Any, scope: Any) -> None:
    if message["type"] != "http.response.start" or scope.get("method") != "OPTIONS":
        return
    app = scope.get("litestar_app")
    handler = scope.get("route_handler")
    if app is None or handler is None:
        return
    if (table := app.state.get(_TABLE)) is None:
        table = app.state[_TABLE] = _allow_by_handler(app)
    if (allow := table.get(id(handler))) is None:
        return
    headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != _ALLOW]
    message["headers"] = [*headers, (_ALLOW, allow)]
