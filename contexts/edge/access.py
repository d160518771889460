"""Who is calling, and what routes let them do (SPEC §8). The composition root verifies the bearer
token once per request and leaves a `Principal` in the ASGI scope; routes declare who may call them
with `allow(...)` guards and check ownership of what they address themselves."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

import msgspec
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers import BaseRouteHandler
from litestar.openapi.spec import SecurityScheme

from bus.errors import Forbidden, Refusal
from contexts.edge.problems import PROBLEMS, problem

REALM = "shopstream"
SCHEME = "BearerToken"
SECURITY_SCHEMES = {
    SCHEME: SecurityScheme(
        type="http",
        scheme="bearer",
        bearer_format="JWT",
        description="A JWT whose `role` claim is admin, seller or customer; `sub` names the caller "
        "(a seller's id, a customer's external id). The /ops routes also take the admin token.",
    )
}
BEARER: list[dict[str, list[str]]] = [{SCHEME: []}]  # the `security` of a route that needs a token
# ... of a route open to anonymous callers whose answer depends on who calls (the storefront's reads)
BEARER_OPTIONAL: list[dict[str, list[str]]] = [{}, {SCHEME: []}]


class Role(StrEnum):
    ADMIN = "admin"
    SELLER = "seller"
    CUSTOMER = "customer"


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """The caller. `verified`: it showed a valid token; `refusal`: why the token it showed was not
    accepted (then it counts as anonymous)."""

    role: Role | None = None
    subject: str | None = None
    verified: bool = False
    refusal: str | None = None

    def acting_as(self, role: Role) -> str | None:
        """The caller's subject when it acts in `role` (and so only on its own); None for anyone else. A
        seller's id is a UUID, compared as stored ids are written (lower case, hyphens); a customer's
        external id is compared as given."""
        if self.role is not role or self.subject is None:
            return None
        if role is Role.SELLER:
            try:
                return str(uuid.UUID(self.subject))
            except ValueError:
                return self.subject
        return self.subject


ANONYMOUS = Principal()
EVERYONE = Principal(role=Role.ADMIN)  # SHOPSTREAM_AUTH=none: every caller may do everything


class Unauthenticated(Refusal):
    """No token, or one that is not accepted, on a route that needs one (401 + WWW-Authenticate)."""

    status = 401
    kind = "unauthenticated"

    def __init__(self, detail: str, *, invalid_token: bool = False, realm: str = REALM) -> None:
        super().__init__(detail)
        self.invalid_token = invalid_token
        self.realm = realm

    @property
    def problem_headers(self) -> dict[str, str]:
        challenge = f'Bearer realm="{self.realm}"'
        if self.invalid_token:  # RFC 6750 §3: no error code when no credentials were sent at all
            challenge += f', error="invalid_token", error_description="{self}"'
        return {"WWW-Authenticate": challenge}


def unauthenticated(principal: Principal, realm: str = REALM) -> Unauthenticated:
    if principal.refusal:
        return Unauthenticated(principal.refusal, invalid_token=True, realm=realm)
    return Unauthenticated("Send `Authorization: Bearer <token>`.", realm=realm)


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    principal = connection.scope.get("user")
    return principal if isinstance(principal, Principal) else ANONYMOUS


def caller(request: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The `caller` dependency of routes that check ownership."""
    return principal_of(request)


Caller = NamedDependency[Principal]


def allow(*roles: Role) -> Any:
    """A guard: callers in `roles` (and admins, always) pass; anonymous callers get 401, others 403."""
    allowed = {Role.ADMIN, *roles}
    names = " or ".join(sorted(allowed))

    # async, so that Litestar calls it in the event loop: a sync guard is run in a worker thread
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = principal_of(connection)
        if principal.role in allowed:
            return
        if not principal.verified:
            raise unauthenticated(principal)
        raise Forbidden(f"This needs the role {names}.")

    return guard


# The `responses` of a route that needs a token.
GUARDED = PROBLEMS | {
    401: problem("No bearer token, or one that is malformed, expired, or not for this service."),
    403: problem("The token's role may not do this, or what the path names is not the caller's own."),
}
