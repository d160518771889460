"""Bearer tokens for the access tests: good ones, and each kind of bad one, made by hand where PyJWT
would refuse to make them (`alg: none`, an HS256 token keyed with a public key)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt

SECRET = "test-jwt-secret-0123456789abcdefghij"  # 36 characters
ISSUER = "https://auth.example.test/"
AUDIENCE = "shopstream-test"


def claims(role: str | None, sub: str | None, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "iat": now,
        "nbf": now,
        "exp": now + 86_400,  # a day: module-level tokens outlive any test run
    }
    if role is not None:
        body["role"] = role
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def hs256(role: str | None, sub: str | None, secret: str = SECRET, **overrides: Any) -> str:
    return jwt.encode(claims(role, sub, **overrides), secret, algorithm="HS256")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], body: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}"


def alg_none(role: str, sub: str) -> str:
    return _unsigned({"alg": "none", "typ": "JWT"}, claims(role, sub)) + "."


def hmac_keyed_with(key: bytes, role: str, sub: str, kid: str | None = None) -> str:
    """An HS256 token whose HMAC key is `key` (e.g. a public key's PEM): the algorithm-confusion attack."""
    header: dict[str, Any] = {"alg": "HS256", "typ": "JWT"} | ({"kid": kid} if kid else {})
    signing_input = _unsigned(header, claims(role, sub))
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
