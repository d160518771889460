"""Assertions on the HTTP contract of commands: RFC 9457 problems and the accepted answer."""

from __future__ import annotations

import uuid
from typing import Any

import httpx


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    """The response is a problem of this status; with `field`, its `errors` name that field."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body
    return body


def assert_accepted(response: httpx.Response, version: int) -> None:
    """A command on an existing aggregate: 200 with its new version, also as the ETag."""
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "version": version}
    assert response.headers["etag"] == f'"{version}"'


def assert_created(response: httpx.Response, id_field: str, version: int, location: str | None = None) -> str:
    """A command that made an aggregate or sub-entity: 201 with its new id and version, the version also
    as the ETag; with `location`, where it is read. Returns the new id."""
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {id_field, "version"}, body
    assert body["version"] == version
    assert is_uuid(body[id_field])
    assert response.headers["etag"] == f'"{version}"'
    if location is not None:
        assert response.headers["location"] == location
    return str(body[id_field])


def is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False
