"""The error contract: every failure becomes an RFC 9457 problem+json response.

Litestar's problem-details plugin converts exceptions one to one; the contract needs more (a
validation failure splits into 400 or 422 depending on what failed, field names are pulled out of
msgspec's messages, a 500 is logged with its correlation id, an outage of PostgreSQL or Redis is a
503 logged once per outage), so the mapping is written here once.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from bus import errors, outages
from observability.logging import correlation_id

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("shopstream.errors")
outage_log = outages.OutageLog(log)

_NOT_AN_OBJECT = ("Expected `object`", "Expected an object")


class Problem(HTTPException):
    """An HTTP error with a problem type, a title and optional extension members."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail=detail, status_code=status, headers=headers)
        self.kind = kind
        self.title = title
        self.extensions = extensions


def problem_body(
    status: int, detail: str, kind: str | None = None, title: str | None = None
) -> dict[str, Any]:
    phrase = HTTPStatus(status).phrase
    return {
        "type": f"urn:shopstream:problem:{kind}" if kind else "about:blank",
        "title": title or phrase,
        "status": status,
        "detail": detail,
    }


def problem_response(
    status: int,
    detail: str,
    *,
    kind: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response[dict[str, Any]]:
    body = problem_body(status, detail, kind, title) | extensions
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def field_errors(extra: Any) -> list[dict[str, str]]:
    """Turn Litestar's validation messages into `{"field", "message"}` entries."""
    entries = []
    for item in extra if isinstance(extra, list) else []:
        message = str(item.get("message", "invalid"))
        field = str(item.get("key", ""))
        message, path = errors.split_msgspec_path(message)
        field = path or field
        if field == "data":
            field = ""
        entries.append({"field": field, "message": message, "source": str(item.get("source", "body"))})
    return entries


def _is_unreadable_body(errors: list[dict[str, str]]) -> bool:
    """Body absent, not JSON, or JSON but not an object: the client sent no usable document."""
    return any(
        e["source"] == "body"
        and not e["field"]
        and (e["message"].startswith(_NOT_AN_OBJECT) or e["message"] == "'data'")
        for e in errors
    )


def on_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if isinstance(exc, Problem):
        return problem_response(
            exc.status_code, exc.detail, kind=exc.kind, title=exc.title, headers=exc.headers, **exc.extensions
        )
    if isinstance(exc, ValidationException):
        errors = field_errors(exc.extra)
        if _is_unreadable_body(errors):
            return problem_response(400, "The request body must be a JSON object.", kind="malformed-body")
        return problem_response(
            422, "The request is invalid; see `errors`.", kind="validation", errors=errors
        )
    status = exc.status_code
    detail = exc.detail or HTTPStatus(status).description
    if status == 400 and "JSON" in detail:
        return problem_response(400, "The request body is not valid JSON.", kind="malformed-body")
    if status >= 500:
        return on_unexpected(request, exc)
    return problem_response(status, detail, headers=exc.headers)


def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if (service := outages.unavailable(exc)) is not None:  # raised by a read, not by a command
        unavailable = errors.Unavailable(service)
        unavailable.__cause__ = exc
        return on_unavailable(request, unavailable)
    cid = correlation_id.get()
    log.error(
        "unhandled error on %s %s (correlation id %s)", request.method, request.url.path, cid, exc_info=exc
    )
    return problem_response(
        500,
        f"An unexpected error occurred. Quote correlation id {cid} when reporting it.",
        correlation_id=cid,
    )


def on_recursion(request: Request[Any, Any, Any], exc: RecursionError) -> Response[Any]:
    """msgspec gives up on JSON nested deeper than its recursion limit: a malformed body, not a fault."""
    if "deserializing" in str(exc):
        return problem_response(400, "The request body is nested too deeply.", kind="malformed-body")
    return on_unexpected(request, exc)


def on_refusal(request: Request[Any, Any, Any], exc: errors.Refusal) -> Response[Any]:
    """Domain and bus refusals carry their own status and problem kind."""
    headers = exc.problem_headers or None
    detail = str(exc) or HTTPStatus(exc.status).description
    extensions: dict[str, Any] = exc.problem_extensions
    return problem_response(exc.status, detail, kind=exc.kind, headers=headers, **extensions)


def on_unavailable(request: Request[Any, Any, Any], exc: errors.Unavailable) -> Response[Any]:
    """503 + Retry-After. The log gets a line per outage, and one per command whose outcome it hid."""
    if isinstance(exc, errors.OutcomeUnknown):
        log.warning(
            "%s %s: outcome unknown, the connection to %s broke while committing (correlation id %s): %s",
            request.method, request.url.path, exc.service, correlation_id.get(), exc.__cause__,
        )  # fmt: skip
    outage_log.failed(exc.service, exc.__cause__)
    headers = {"Retry-After": str(exc.retry_after)}
    return problem_response(exc.status, str(exc), kind=exc.kind, headers=headers, service=exc.service)


EXCEPTION_HANDLERS: dict[type[Exception], Any] = {
    HTTPException: on_http_exception,
    Exception: on_unexpected,
    RecursionError: on_recursion,
    errors.Refusal: on_refusal,
    errors.Unavailable: on_unavailable,
}
