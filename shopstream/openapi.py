"""What the OpenAPI document says beyond what Litestar derives from the routes: the headers every
answer carries (ETag, Location, Retry-After), the contexts a `context` parameter names, and the links from each creating route to the routes
that take the id it returns. Run once on the built document (`create_app`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from litestar.openapi.spec import (
    Link,
    OpenAPI,
    OpenAPIHeader,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    Schema,
)

_METHODS = ("get", "put", "post", "delete", "patch")
_PATH_PARAMETER = re.compile(r"{([^}:]+)(?::[^}]*)?}")
_ETAG = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.STRING, pattern=r'^"[0-9]+"$'),
    description='The aggregate\'s version as a strong ETag, e.g. "7": send it as `If-Match`.',
    required=True,
)
_LOCATION = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.STRING), description="Where the new resource is read.", required=True
)
_RETRY_AFTER = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.INTEGER, minimum=0),
    description="Seconds to wait before retrying.",
    required=True,
)
_WWW_AUTHENTICATE = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.STRING), description="The scheme and realm to authenticate with."
)


def complete_document(document: OpenAPI, contexts: Sequence[str]) -> None:
    operations = list(_operations(document))
    for _, _, operation in operations:  # a `context` parameter takes the name of a context served
        for parameter in operation.parameters or ():
            if isinstance(parameter, Parameter) and parameter.name == "context" and parameter.schema:
                parameter.schema.enum = list(contexts)  # type: ignore[union-attr]
    for _, _, operation in operations:
        for status, response in (operation.responses or {}).items():
            if isinstance(response, OpenAPIResponse):
                _document_headers(document, status, response)
    _link_creators(document, operations)


def _operations(document: OpenAPI) -> Any:
    for path, item in (document.paths or {}).items():
        for method in _METHODS:
            if (operation := getattr(item, method, None)) is not None:
                yield path, method, operation


def _component(document: OpenAPI, response: OpenAPIResponse) -> Schema | None:
    for media in (response.content or {}).values():
        schema = media.schema
        if isinstance(schema, Reference) and document.components:
            schema = (document.components.schemas or {}).get(schema.ref.rsplit("/", 1)[-1])
        if isinstance(schema, Schema):
            return schema
    return None


def _document_headers(document: OpenAPI, status: str, response: OpenAPIResponse) -> None:
    headers = dict(response.headers or {})
    if status.startswith("2"):
        component = _component(document, response)
        if component is not None and "version" in (component.properties or {}):
            headers.setdefault("ETag", _ETAG)  # every read of an aggregate and every command answer
        if status == "201":
            headers.setdefault("Location", _LOCATION)
    elif status in ("429", "503"):
        headers.setdefault("Retry-After", _RETRY_AFTER)
    elif status == "401":
        headers.setdefault("WWW-Authenticate", _WWW_AUTHENTICATE)
    response.headers = headers or None


def _takes_header(operation: Operation, name: str) -> bool:
    return any(
        getattr(p, "param_in", None) == "header" and getattr(p, "name", None) == name
        for p in operation.parameters or ()
    )


def _link_creators(document: OpenAPI, operations: list[tuple[str, str, Operation]]) -> None:
    """A 201 whose body holds `<thing>_id` links to every operation whose path takes `<thing>_id`,
    the creator's own path ids passed on as they were and its ETag as `If-Match`."""
    for path, _, creator in operations:
        created = (creator.responses or {}).get("201")
        if not isinstance(created, OpenAPIResponse):
            continue
        component = _component(document, created)
        new_ids = [name for name in (component.properties or {}) if name.endswith("_id")] if component else []
        given = set(_PATH_PARAMETER.findall(path))
        links: dict[str, Link | Reference] = dict(created.links or {})
        for new_id in new_ids:
            for target_path, _, target in operations:
                taken = set(_PATH_PARAMETER.findall(target_path))
                if new_id not in taken or not taken <= given | {new_id} or not target.operation_id:
                    continue
                parameters = {name: f"$request.path.{name}" for name in sorted(taken - {new_id})}
                parameters[new_id] = f"$response.body#/{new_id}"
                if _takes_header(target, "If-Match"):  # the version the creation left the aggregate at
                    parameters["header.If-Match"] = "$response.header.ETag"
                links[target.operation_id] = Link(
                    operation_id=target.operation_id,
                    parameters=parameters,
                    description=f"`{new_id}` of the new resource",
                )
        created.links = links or None
