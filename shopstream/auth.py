"""Bearer tokens: verified once per request into the `Principal` the routes see (contexts/edge/access.py).

The accepted algorithm follows from the configured key, never from the token: HS256 with
`SHOPSTREAM_JWT_SECRET`, or RS256/ES256 with the public keys of `SHOPSTREAM_JWT_JWKS` (chosen by the
token's `kid`). So `alg: none` and algorithm confusion (an HS256 token "signed" with a public key)
cannot pass. Keys are parsed once at start-up; a request only checks a signature and the claims.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from contexts.edge.access import EVERYONE, Principal, Role
from shopstream.problems import PROBLEM_JSON, problem_body
from shopstream.settings import ConfigurationError, Settings

_REQUIRED = ["exp", "iss", "aud", "sub"]
_REMEMBERED = 4096  # verified tokens kept, oldest dropped first
_ROLES = {role.value: role for role in Role}
_REASONS: list[tuple[type[jwt.PyJWTError], str]] = [
    (jwt.ExpiredSignatureError, "The token has expired."),
    (jwt.ImmatureSignatureError, "The token is not valid yet."),
    (jwt.InvalidAudienceError, "The token is meant for another audience."),
    (jwt.InvalidIssuerError, "The token comes from an unexpected issuer."),
    (jwt.InvalidAlgorithmError, "The token's algorithm is not accepted."),
    (jwt.InvalidSignatureError, "The token's signature does not verify."),
]


class TokenRefused(Exception):
    """Why a bearer token is not accepted; safe to show (it never quotes the token)."""


class Keys:
    """The verification keys by `kid`, each with the one algorithm it accepts."""

    def __init__(self, by_kid: dict[str | None, tuple[Any, str]]) -> None:
        self.by_kid = by_kid

    @classmethod
    def shared_secret(cls, secret: str) -> Keys:
        return cls({None: (secret.encode(), "HS256")})

    @classmethod
    def from_jwks(cls, path: str) -> Keys:
        name = "SHOPSTREAM_JWT_JWKS"
        try:
            with open(path, encoding="utf-8") as file:
                document = json.load(file)
        except OSError as exc:
            raise ConfigurationError(
                f"configuration error: {name}: cannot read {path}: {exc.strerror}"
            ) from None
        except ValueError:
            raise ConfigurationError(f"configuration error: {name}: {path} is not JSON") from None
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list) or not entries:
            raise ConfigurationError(f'configuration error: {name}: {path} holds no "keys" list')
        by_kid: dict[str | None, tuple[Any, str]] = {}
        for entry in entries:
            if isinstance(entry, dict) and entry.get("use", "sig") != "sig":
                continue  # an encryption key never verifies a signature
            kid, key, algorithm = _public_key(name, entry)
            if kid in by_kid:
                raise ConfigurationError(f"configuration error: {name}: two keys share the kid {kid!r}")
            by_kid[kid] = (key, algorithm)
        if not by_kid:
            raise ConfigurationError(f"configuration error: {name}: {path} holds no signing key")
        if None in by_kid and len(by_kid) > 1:
            raise ConfigurationError(f"configuration error: {name}: with several keys, each needs a kid")
        return cls(by_kid)

    def for_token(self, header: dict[str, Any]) -> tuple[Any, str]:
        kid = header.get("kid")
        if len(self.by_kid) == 1 and (None in self.by_kid or kid is None):
            return next(iter(self.by_kid.values()))  # one key: a token need not name it
        found = self.by_kid.get(kid) if isinstance(kid, str) else None
        if found is None:
            raise TokenRefused("The token names no known key (kid).")
        return found


def _public_key(name: str, entry: Any) -> tuple[str | None, Any, str]:
    if not isinstance(entry, dict):
        raise ConfigurationError(f"configuration error: {name}: a key is not a JSON object")
    kid = entry.get("kid")
    if "d" in entry:
        raise ConfigurationError(
            f"configuration error: {name}: key {kid!r} is private; give public keys only"
        )
    kty = entry.get("kty")
    algorithm = {"RSA": "RS256", "EC": "ES256"}.get(kty) if isinstance(kty, str) else None
    if algorithm is None or entry.get("alg", algorithm) != algorithm:
        raise ConfigurationError(
            f"configuration error: {name}: key {kid!r} must be an RSA (RS256) or EC P-256 (ES256) public key"
        )
    try:
        key = jwt.PyJWK(entry, algorithm).key
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise ConfigurationError(f"configuration error: {name}: key {kid!r} is unusable: {exc}") from None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        raise ConfigurationError(f"configuration error: {name}: key {kid!r} is shorter than 2048 bits")
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name != "secp256r1":
        raise ConfigurationError(f"configuration error: {name}: key {kid!r} is not on the P-256 curve")
    return kid if isinstance(kid, str) else None, key, algorithm


class TokenVerifier:
    """Checks signature, `exp`, `nbf`, `iss` and `aud` (with a small clock leeway) and reads the role."""

    def __init__(
        self,
        keys: Keys,
        issuer: str,
        audience: str,
        leeway: float,
        max_lifetime: float = 86_400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.max_lifetime = max_lifetime
        self.clock = clock
        self._jwt = jwt.PyJWT(options={"require": _REQUIRED})
        # A client sends one token many times: once verified, only its validity window is checked again.
        self._verified: dict[str, tuple[Principal, float]] = {}

    def verify(self, token: str) -> Principal:
        known = self._verified.get(token)
        if known is None:
            return self._verify(token)
        principal, expires = known  # (`nbf` and `iat` passed once stay passed)
        if self.clock() >= expires + self.leeway:
            del self._verified[token]
            raise TokenRefused("The token has expired.")
        return principal

    def _verify(self, token: str) -> Principal:
        try:
            key, algorithm = self.keys.for_token(jwt.get_unverified_header(token))
            claims = self._jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
            )
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRefused(f"The token lacks the `{exc.claim}` claim.") from None
        except jwt.PyJWTError as exc:
            reason = next(
                (text for kind, text in _REASONS if isinstance(exc, kind)), "The token is malformed."
            )
            raise TokenRefused(reason) from None
        # A stolen token must not work for ever, whatever lifetime its issuer gave it.
        if float(claims["exp"]) > self.clock() + self.max_lifetime + self.leeway:
            raise TokenRefused("The token expires later than tokens may live here.")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise TokenRefused("The token's `sub` claim is empty.")
        role = claims.get("role")
        principal = Principal(
            role=_ROLES.get(role) if isinstance(role, str) else None, subject=subject, verified=True
        )
        if len(self._verified) >= _REMEMBERED:
            del self._verified[next(iter(self._verified))]  # the oldest
        self._verified[token] = (principal, float(claims["exp"]))  # a number: PyJWT checked it
        return principal


class Authenticator:
    """`Authorization` header → `Principal`. Without a verifier (SHOPSTREAM_AUTH=none) everyone is admin."""

    def __init__(self, verifier: TokenVerifier | None) -> None:
        self.verifier = verifier

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator:
        return cls(None if settings.auth == "none" else TokenVerifier(*_jwt_config(settings)))

    def identify(self, authorization: bytes | None) -> Principal:
        if self.verifier is None:
            return EVERYONE
        if authorization is None:
            return Principal()
        scheme, _, token = authorization.decode("latin-1").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer":
            return Principal()  # another scheme is as good as none (RFC 6750 §3.1)
        if not token or " " in token:
            return Principal(refusal="The bearer token is malformed.")
        try:
            return self.verifier.verify(token)
        except TokenRefused as exc:
            return Principal(refusal=str(exc))


def _jwt_config(settings: Settings) -> tuple[Keys, str, str, float, float]:
    if settings.jwt_secret and settings.jwt_jwks:
        raise ConfigurationError(
            "configuration error: set SHOPSTREAM_JWT_SECRET or SHOPSTREAM_JWT_JWKS, not both"
        )
    if not (settings.jwt_secret or settings.jwt_jwks):
        raise ConfigurationError(
            "configuration error: SHOPSTREAM_AUTH=jwt needs SHOPSTREAM_JWT_SECRET (HS256) or"
            " SHOPSTREAM_JWT_JWKS (RS256/ES256 public keys)"
        )
    for name, value in (
        ("SHOPSTREAM_JWT_ISSUER", settings.jwt_issuer),
        ("SHOPSTREAM_JWT_AUDIENCE", settings.jwt_audience),
    ):
        if not value:
            raise ConfigurationError(f"configuration error: SHOPSTREAM_AUTH=jwt needs {name}")
    keys = (
        Keys.shared_secret(settings.jwt_secret)
        if settings.jwt_secret
        else Keys.from_jwks(settings.jwt_jwks or "")
    )
    return (
        keys,
        settings.jwt_issuer or "",
        settings.jwt_audience or "",
        settings.jwt_leeway,
        settings.jwt_max_lifetime,
    )


class Authentication:
    """ASGI middleware: puts the caller's `Principal` in `scope["user"]` before the route's guards run."""

    def __init__(self, app: Any, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = [value for name, value in scope["headers"] if name == b"authorization"]
            if len(given) > 1:
                scope["user"] = Principal(refusal="Send one Authorization header.")
            else:
                scope["user"] = self.authenticator.identify(given[0] if given else None)
        await self.app(scope, receive, send)


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip().strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback  # ::ffff:127.0.0.1, as a dual-stack socket reports it
    return address.is_loopback


def serves_everyone(settings: Settings) -> bool:
    """SHOPSTREAM_AUTH=none without SHOPSTREAM_AUTH_ALLOW_PUBLIC: every caller is admin, so only this
    machine may call."""
    return settings.auth == "none" and not settings.auth_allow_public


def check_listener(settings: Settings) -> None:
    """`serve`, `api` and `create_app` refuse to serve everyone as admin beyond this machine unless told to."""
    if serves_everyone(settings) and not is_loopback(settings.host):
        raise ConfigurationError(
            f"configuration error: SHOPSTREAM_AUTH=none lets anyone act as admin, so it is allowed only on"
            f" a loopback HOST (not {settings.host}): set SHOPSTREAM_AUTH=jwt, or SHOPSTREAM_AUTH_ALLOW_PUBLIC=1"
            f" behind a gateway that checks callers"
        )
    if settings.auth == "jwt":
        _jwt_config(settings)


def arrived_on_loopback(server: Any) -> bool:
    """Whether a connection reached a loopback address of this machine (ASGI `scope["server"]`, the
    socket's own address, never a header). A Unix socket (its path, or nothing) is local by nature; a
    host name comes only from in-process transports (test clients), which no network can reach."""
    return True if not server else _reached_locally(str(server[0]))


@functools.lru_cache(maxsize=64)  # a server listens on a few addresses: judged once each
def _reached_locally(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return True
    return is_loopback(host)


class LoopbackOnly:
    """ASGI: with SHOPSTREAM_AUTH=none every caller is admin, so a request that reached a non-loopback
    address is refused (403) whatever the server was told to bind. HOST is checked at start, but a
    server started by other means (`uvicorn --factory shopstream.app:create_app --host 0.0.0.0`) binds
    what its own options say; each connection's own address cannot lie."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan" or arrived_on_loopback(scope.get("server")):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps(
            problem_body(
                403,
                "SHOPSTREAM_AUTH=none serves only connections to a loopback address of this machine; the"
                " operator sets SHOPSTREAM_AUTH=jwt, or SHOPSTREAM_AUTH_ALLOW_PUBLIC=1 behind a gateway"
                " that checks callers.",
                kind="loopback-only",
            )
        ).encode()
        headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 403, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def mint(
    settings: Settings,
    *,
    role: str,
    subject: str,
    ttl: int,
    private_key: str | None = None,
    kid: str | None = None,
) -> str:
    """A token for local use and tests: HS256 with the configured secret, or RS256/ES256 with a PEM
    private key whose public half is in the JWKS."""
    if not (settings.jwt_issuer and settings.jwt_audience):
        raise ConfigurationError(
            "configuration error: minting needs SHOPSTREAM_JWT_ISSUER and SHOPSTREAM_JWT_AUDIENCE"
        )
    if ttl < 1:
        raise ConfigurationError("configuration error: --ttl must be at least 1 second")
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer, "aud": settings.jwt_audience, "sub": subject, "role": role,
        "iat": now, "nbf": now, "exp": now + ttl, "jti": str(uuid.uuid4()),
    }  # fmt: skip
    if private_key is None:
        if not settings.jwt_secret:
            raise ConfigurationError(
                "configuration error: minting needs SHOPSTREAM_JWT_SECRET, or --private-key for RS256/ES256"
            )
        return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        with open(private_key, "rb") as file:
            key = load_pem_private_key(file.read(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigurationError(f"configuration error: --private-key {private_key}: {exc}") from None
    algorithm = (
        "RS256"
        if isinstance(key, rsa.RSAPrivateKey)
        else "ES256"
        if isinstance(key, ec.EllipticCurvePrivateKey)
        else None
    )
    if algorithm is None:
        raise ConfigurationError(f"configuration error: --private-key {private_key}: not an RSA or EC key")
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid} if kid else None)  # type: ignore[arg-type]
