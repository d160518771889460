"""The write routes of the contexts as the app itself reports them, and a valid request to each: the ids
in its path from the routes that create them, its body from the examples of its OpenAPI document."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient

from shopstream.app import create_app

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The operator's routes act on dead letters, which failures make, not requests.
OPERATOR_TAG = "operations"

# The commands that bring a new aggregate into the state a command needs, by operation id.
PRECONDITIONS: dict[str, tuple[str, ...]] = {
    "reactivateAccount": ("suspendAccount",),
    "erasePersonalData": ("closeAccount",),
    "discontinueProduct": ("activateProduct",),
    "archiveProduct": ("activateProduct", "discontinueProduct"),
    "activateVariant": ("deactivateVariant",),
    "activateCategory": ("deactivateCategory",),
}
# Body fields that name aggregates or sub-entities, by operation id: their value, from the ids made for the
# route (a field whose kind is made by a creating route gets one made first). Without those ids the
# field keeps its example, which names nothing.
REFERENCES: dict[str, dict[str, Callable[[dict[str, Any]], Any]]] = {
    "changeProductCategory": {"category_id": lambda ids: ids["category_id"]},
    "reorderProductImages": {"image_ids": lambda ids: ids["image_ids"][::-1]},
    "moveCategory": {"parent_category_id": lambda ids: ids["parent_category_id"]},
}
# Body fields that must name an aggregate of their own, besides the route's (a category's new parent): the
# field and the id its aggregate's creator answers with. `Routes.target` makes one, kept in the ids.
FRESH: dict[str, dict[str, str]] = {
    "moveCategory": {"parent_category_id": "category_id"},
}
# Fields whose example is the value a new aggregate already has, so the example would change nothing.
CHANGES: dict[str, dict[str, Any]] = {
    "updateAddress": {"city": "Paris"},
    "changeVariantPrice": {"base_price": "29.99"},
}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    operation_id: str
    context: str
    operation: dict[str, Any] | None
    body: dict[str, Any] | None
    creates: str | None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(re.findall(r"{(\w+)}", self.path))


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        resolved: dict[str, Any] = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        return resolved
    return schema


def _json_schema(document: dict[str, Any], part: dict[str, Any] | None) -> dict[str, Any] | None:
    if part is None or "application/json" not in part.get("content", {}):
        return None
    return resolve(document, part["content"]["application/json"]["schema"])


def _route(document: dict[str, Any], method: str, path: str, handler: Any) -> Route:
    tags = list(handler.resolve_tags())
    operation = document["paths"].get(path, {}).get(method.lower())
    if operation is None:  # the OpenAPI tests name it; the other tests still send it requests
        return Route(method, path, handler.handler_name, tags[0] if tags else "", None, None, None)
    created = _json_schema(document, operation["responses"].get("201"))
    new_ids = sorted(set(created["properties"]) - {"version"}) if created else []
    return Route(
        method=method,
        path=path,
        operation_id=operation["operationId"],
        context=tags[0] if tags else "",
        operation=operation,
        body=_json_schema(document, operation.get("requestBody")),
        creates=new_ids[0] if len(new_ids) == 1 else None,
    )


def runs_a_command(handler: Any) -> bool:
    """Commands run only through the `commands` dependency (If-Match, Idempotency-Key, the bus)."""
    return "commands" in handler.parsed_fn_signature.parameters


def write_routes(app: Litestar, document: dict[str, Any], *, queries: bool = False) -> list[Route]:
    """Every POST, PUT, PATCH and DELETE route the app serves for its contexts that runs a command; with
    `queries`, those that run none instead: reads sent as POST to keep their input out of the URL."""
    found = [
        _route(document, method, route.path_format, handler)
        for route in app.routes
        for handler in getattr(route, "route_handlers", ())
        if OPERATOR_TAG not in handler.resolve_tags() and runs_a_command(handler) != queries
        for method in sorted(handler.http_methods & WRITE_METHODS)
    ]
    return sorted(found, key=lambda r: (r.context, r.path, r.method))


# --- bodies ----------------------------------------------------------------------------------------


def members(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """A property's schema and the alternatives it allows (`anyOf`, `oneOf`), nested ones included."""
    found = [schema]
    for key in ("anyOf", "oneOf"):
        for member in schema.get(key, ()):
            found.extend(members(member))
    return found


def types_of(schema: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for member in members(schema):
        kind = member.get("type")
        found.update(kind if isinstance(kind, list) else [kind] if kind else [])
    return found


def example_of(schema: dict[str, Any]) -> Any:
    for member in members(schema):
        if member.get("examples"):
            return member["examples"][0]
    return None


def refers(value: Any) -> bool:
    """The value is an id, so the field names another aggregate: its example names none that exists."""
    try:
        return isinstance(value, str) and bool(uuid.UUID(value))
    except ValueError:
        return False


def _fits(text: str, schema: dict[str, Any]) -> bool:
    return any(
        member.get("type") == "string"
        and len(text) <= member.get("maxLength", len(text))
        and re.search(member.get("pattern", ""), text) is not None
        for member in members(schema)
    )


def fresh(value: Any, schema: dict[str, Any], token: str) -> Any:
    """An example text made unique with `token` where the field still accepts it (SKUs, e-mails and
    external ids are unique); any other value as it is."""
    if not isinstance(value, str) or any("enum" in m or "format" in m for m in members(schema)):
        return value
    for candidate in (f"{token}-{value}", f"{value}-{token}"):
        if _fits(candidate, schema):
            return candidate
    return value


def _referred(route: Route, name: str, ids: dict[str, Any] | None) -> Any:
    try:
        return REFERENCES[route.operation_id][name](ids or {})
    except KeyError:
        return None


def body_of(
    route: Route, token: str | None = None, ids: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """A valid body for the route: every field its document gives an example for, texts made unique;
    no reference to another aggregate but those of `REFERENCES`, taken from `ids` (the ids made for
    the route)."""
    if route.body is None:
        return None
    token = token or uuid.uuid4().hex[:10]
    properties: dict[str, Any] = route.body.get("properties", {})
    body: dict[str, Any] = {}
    for name, schema in properties.items():
        value = CHANGES.get(route.operation_id, {}).get(name, example_of(schema))
        if name in REFERENCES.get(route.operation_id, {}):
            body[name] = _referred(route, name, ids) or value
        elif value is not None and not refers(value):
            body[name] = fresh(value, schema, token)
    missing = set(route.body.get("required", ())) - body.keys()
    assert not missing, f"{route}: the OpenAPI document gives no example for {sorted(missing)}"
    return body


def another_body(route: Route, body: dict[str, Any], ids: dict[str, Any] | None = None) -> dict[str, Any]:
    """Another body for the route: other unique texts, else another enum member, a number one higher,
    a list reversed, or null where the field takes it."""
    assert route.body is not None
    other = body_of(route, ids=ids) or {}
    for name, schema in route.body["properties"].items():
        if other != body or name not in other:
            continue
        if name in FRESH.get(route.operation_id, {}):
            other[name] = None  # naming no aggregate: a root, for a category's parent
            continue
        choices = [v for m in members(schema) for v in m.get("enum", ()) if v != other[name]]
        if choices:
            other[name] = choices[0]
        elif isinstance(other[name], int) and not isinstance(other[name], bool):
            other[name] += 1
        elif isinstance(other[name], list) and len(other[name]) > 1:
            other[name] = other[name][::-1]
        elif "null" in types_of(schema):
            other[name] = None
    assert other != body, f"{route}: no field of its body can take another value"
    return other


# --- sending requests ------------------------------------------------------------------------------


@dataclass
class Target:
    """Ids for a route's path, and the version of the aggregate it acts on (0 before it exists)."""

    ids: dict[str, Any]  # an id per kind for the path; under the kind's plural, every one made
    version: int = 0
    location: str | None = None


async def send(
    client: AsyncTestClient,
    route: Route,
    ids: dict[str, Any],
    body: Any = ...,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """The route's request with these path ids, with its example body unless one is given."""
    return await client.request(
        route.method,
        route.path.format(**ids),
        json=body_of(route, ids=ids) if body is ... else body,
        headers=headers,
    )


class Routes:
    """The app's write routes, and aggregates made through them for any route to act on."""

    def __init__(self, app: Litestar) -> None:
        self.document = app.openapi_schema.to_schema()
        self.all = write_routes(app, self.document)
        self.queries = write_routes(app, self.document, queries=True)
        self.by_id = {r.operation_id: r for r in self.all}
        self.creators = {r.creates: r for r in self.all if r.creates}

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        return resolve(self.document, schema)

    def children(self, creator: Route) -> list[Route]:
        return [r for r in self.creators.values() if r.params == (*creator.params, creator.creates)]

    async def _create(self, client: AsyncTestClient, creator: Route, target: Target) -> None:
        # Every sub-entity twice, and the path names the second: the first of a kind can be protected
        # (the default address, the last address).
        for _ in range(1 if not creator.params else 2):
            answer = await send(client, creator, target.ids)
            assert answer.status_code == 201, f"{creator}: {answer.text}"
            assert creator.creates is not None
            target.ids[creator.creates] = answer.json()[creator.creates]
            target.ids.setdefault(f"{creator.creates}s", []).append(answer.json()[creator.creates])
            target.version = answer.json()["version"]
            if not creator.params:
                target.location = answer.headers["location"]
            for child in self.children(creator):
                await self._create(client, child, target)

    async def target(self, client: AsyncTestClient, route: Route) -> Target:
        """New aggregates for the route's path, with every sub-entity, in the state the route needs."""
        target = Target(ids={})
        for field in REFERENCES.get(route.operation_id, {}):
            if field in self.creators and field not in route.params:
                await self._create(client, self.creators[field], target)
        for param in route.params:
            if param not in target.ids:
                assert param in self.creators, f"{route}: no write route creates {param}"
                await self._create(client, self.creators[param], target)
        for name, kind in FRESH.get(route.operation_id, {}).items():
            answer = await send(client, self.creators[kind], {})
            assert answer.status_code == 201, f"{name} of {route}: {answer.text}"
            target.ids[name] = answer.json()[kind]
        for operation_id in PRECONDITIONS.get(route.operation_id, ()):
            answer = await send(client, self.by_id[operation_id], target.ids)
            assert answer.status_code in (200, 201), f"{operation_id} before {route}: {answer.text}"
            target.version = answer.json()["version"]
        return target

    async def everything(self, client: AsyncTestClient) -> dict[str, Any]:
        """One aggregate of each kind with its sub-entities: ids for every route's path."""
        target = Target(ids={})
        for creator in self.creators.values():
            if not creator.params:
                await self._create(client, creator, target)
        return target.ids


@cache
def app_routes() -> Routes:
    """The write routes of the app every test runs."""
    return Routes(create_app())
