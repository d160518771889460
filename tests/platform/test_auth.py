"""Access-control configuration (SPEC §8): the auth settings, the start-up refusal of an open listener,
token verification with a shared secret or a JWKS file, and `shopstream token`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from contexts.edge.access import EVERYONE, Principal, Role
from shopstream.app import create_app
from shopstream.auth import (
    Authenticator,
    Keys,
    TokenRefused,
    TokenVerifier,
    arrived_on_loopback,
    check_listener,
    is_loopback,
    mint,
)
from shopstream.settings import ConfigurationError, Settings
from tests.tokens import AUDIENCE, ISSUER, SECRET, alg_none, claims, hmac_keyed_with, hs256

SHOPSTREAM = str(Path(sys.executable).with_name("shopstream"))
JWT = {"SHOPSTREAM_AUTH": "jwt", "SHOPSTREAM_JWT_ISSUER": ISSUER, "SHOPSTREAM_JWT_AUDIENCE": AUDIENCE}


def _identify(authenticator: Authenticator, token: str):
    return authenticator.identify(f"Bearer {token}".encode())


class TestSettings:
    def test_auth_is_off_by_default_and_on_loopback(self):
        settings = Settings.from_env({})
        assert settings.auth == "none" and not settings.auth_allow_public
        assert settings.jwt_leeway == 30.0
        assert Authenticator.from_settings(settings).identify(None) == EVERYONE

    def test_the_jwt_secret_is_masked_in_repr_and_errors(self):
        settings = Settings.from_env({"SHOPSTREAM_JWT_SECRET": SECRET})
        assert SECRET not in repr(settings) and "<hidden>" in repr(settings)
        short = "only-twenty-chars-xx"
        with pytest.raises(ConfigurationError) as refused:
            Settings.from_env({"SHOPSTREAM_JWT_SECRET": short})
        assert "SHOPSTREAM_JWT_SECRET" in str(refused.value) and short not in str(refused.value)
        assert "\n" not in str(refused.value)

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("SHOPSTREAM_AUTH", "basic"),
            ("SHOPSTREAM_AUTH_ALLOW_PUBLIC", "perhaps"),
            ("SHOPSTREAM_JWT_LEEWAY", "-1"),
        ],
    )
    def test_bad_values_name_the_variable(self, name, value):
        with pytest.raises(ConfigurationError, match=name):
            Settings.from_env({name: value})

    def test_mode_is_case_insensitive(self):
        assert Settings.from_env({"SHOPSTREAM_AUTH": "JWT"}).auth == "jwt"

    @pytest.mark.parametrize(
        ("environ", "named"),
        [
            ({**JWT}, "SHOPSTREAM_JWT_SECRET"),
            ({**JWT, "SHOPSTREAM_JWT_SECRET": SECRET, "SHOPSTREAM_JWT_JWKS": "/x"}, "not both"),
            ({**JWT, "SHOPSTREAM_JWT_SECRET": SECRET, "SHOPSTREAM_JWT_ISSUER": ""}, "SHOPSTREAM_JWT_ISSUER"),
            (
                {**JWT, "SHOPSTREAM_JWT_SECRET": SECRET, "SHOPSTREAM_JWT_AUDIENCE": ""},
                "SHOPSTREAM_JWT_AUDIENCE",
            ),
            ({**JWT, "SHOPSTREAM_JWT_JWKS": "/no/such/jwks.json"}, "SHOPSTREAM_JWT_JWKS"),
        ],
    )
    def test_jwt_needs_a_key_an_issuer_and_an_audience(self, environ, named):
        with pytest.raises(ConfigurationError, match=named) as refused:
            Authenticator.from_settings(Settings.from_env(environ))
        assert "\n" not in str(refused.value)


class TestListener:
    @pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST"])
    def test_loopback_hosts(self, host):
        assert is_loopback(host)
        check_listener(Settings(host=host))

    @pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "shop.example.com"])
    def test_auth_none_refuses_a_public_listener(self, host):
        assert not is_loopback(host)
        with pytest.raises(ConfigurationError, match="SHOPSTREAM_AUTH"):
            check_listener(Settings(host=host))

    def test_a_public_listener_with_auth_none_can_be_forced_or_use_jwt(self):
        check_listener(Settings(host="0.0.0.0", auth_allow_public=True))
        check_listener(
            Settings(host="0.0.0.0", auth="jwt", jwt_secret=SECRET, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
        )

    @pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5"])
    def test_the_app_factory_refuses_auth_none_on_a_public_host_too(self, host):
        with pytest.raises(ConfigurationError, match="SHOPSTREAM_AUTH=none") as refused:
            create_app(Settings(host=host))
        assert "\n" not in str(refused.value)
        create_app(Settings(host=host, auth_allow_public=True))

    @pytest.mark.parametrize(
        ("server", "local"),
        [
            (("127.0.0.1", 8000), True),
            (("127.3.2.1", 8000), True),
            (("::1", 8000), True),
            (("::ffff:127.0.0.1", 8000), True),
            (("192.0.2.2", 8000), False),
            (("10.0.0.5", 8000), False),
            (("::ffff:192.0.2.2", 8000), False),
            (("fd00::2", 8000), False),
            (("/run/shopstream.sock", None), True),  # a Unix socket
            (None, True),
            (("testserver.local", 80), True),  # an in-process test transport
        ],
    )
    def test_a_connection_is_judged_by_the_address_it_reached(self, server, local):
        assert arrived_on_loopback(server) is local

    @pytest.mark.parametrize("command", ["api", "serve"])
    def test_serve_and_api_refuse_to_start_with_one_line(self, command, tmp_path):
        environ = {
            k: v for k, v in os.environ.items() if not k.startswith(("SHOPSTREAM_", "DATABASE", "REDIS"))
        }
        environ |= {"HOST": "0.0.0.0", "SHOPSTREAM_DATA_DIR": str(tmp_path)}
        done = subprocess.run([SHOPSTREAM, command], env=environ, capture_output=True, text=True, timeout=60)
        assert done.returncode != 0
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert "SHOPSTREAM_AUTH=none" in lines[0] and "0.0.0.0" in lines[0]
        assert "SHOPSTREAM_AUTH=jwt" in lines[0] and "SHOPSTREAM_AUTH_ALLOW_PUBLIC" in lines[0]
        assert not list(tmp_path.iterdir())  # nothing was started


class TestSharedSecret:
    @pytest.fixture
    def authenticator(self) -> Authenticator:
        return Authenticator.from_settings(
            Settings(auth="jwt", jwt_secret=SECRET, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
        )

    def test_a_good_token_names_role_and_subject(self, authenticator):
        principal = _identify(authenticator, hs256("seller", "s-1"))
        assert (principal.role, principal.subject, principal.verified) == (Role.SELLER, "s-1", True)

    def test_an_unknown_role_is_verified_but_has_no_role(self, authenticator):
        principal = _identify(authenticator, hs256("superuser", "x"))
        assert principal.verified and principal.role is None

    def test_the_clock_leeway_is_honoured(self, authenticator):
        assert _identify(authenticator, hs256("admin", "a", exp=int(claims(None, "a")["iat"]) - 10)).verified

    @pytest.mark.parametrize(
        ("token", "reason"),
        [
            (hs256("admin", "a", secret="another-secret-0123456789abcdefghijkl"), "signature"),
            (hs256("admin", "a", exp=1), "expired"),
            (hs256("admin", "a", nbf=4_000_000_000), "not valid yet"),
            (hs256("admin", "a", aud="someone-else"), "audience"),
            (hs256("admin", "a", iss="https://evil.example/"), "issuer"),
            (hs256("admin", "a", exp=None), "`exp`"),
            (hs256("admin", None), "`sub`"),
            (alg_none("admin", "a"), "algorithm"),
            ("not.a.jwt", "malformed"),
            ("x" * 5000, "malformed"),
        ],
    )
    def test_bad_tokens_are_refused_with_a_reason(self, authenticator, token, reason):
        principal = _identify(authenticator, token)
        assert not principal.verified and principal.role is None
        assert reason in (principal.refusal or "")

    def test_a_remembered_token_still_expires(self):
        now = [float(int(time.time()))]
        verifier = TokenVerifier(Keys.shared_secret(SECRET), ISSUER, AUDIENCE, 30, clock=lambda: now[0])
        token = hs256("admin", "a", exp=int(now[0]) + 300)
        assert verifier.verify(token).verified
        now[0] += 300 + 29
        assert verifier.verify(token).role is Role.ADMIN  # remembered, and still within the leeway
        now[0] += 1
        with pytest.raises(TokenRefused, match="expired"):
            verifier.verify(token)

    def test_a_token_living_longer_than_allowed_is_refused(self):
        now = float(int(time.time()))
        verifier = TokenVerifier(
            Keys.shared_secret(SECRET), ISSUER, AUDIENCE, 30, max_lifetime=3600, clock=lambda: now
        )
        assert verifier.verify(hs256("admin", "a", exp=int(now) + 3600)).verified
        with pytest.raises(TokenRefused, match="later than tokens may live"):
            verifier.verify(hs256("admin", "a", exp=int(now) + 3600 + 31))
        with pytest.raises(TokenRefused, match="later than tokens may live"):
            verifier.verify(hs256("admin", "a", exp=10**12))

    def test_a_sellers_id_is_compared_as_stored_and_a_customers_as_given(self):
        seller = Principal(role=Role.SELLER, subject="4F8E2A10-5C3B-4D6E-9F7A-1B2C3D4E5F60", verified=True)
        assert seller.acting_as(Role.SELLER) == "4f8e2a10-5c3b-4d6e-9f7a-1b2c3d4e5f60"
        customer = Principal(role=Role.CUSTOMER, subject="CRM-4F8E2A10-5C3B", verified=True)
        assert customer.acting_as(Role.CUSTOMER) == "CRM-4F8E2A10-5C3B"

    def test_other_schemes_count_as_no_token(self, authenticator):
        assert authenticator.identify(b"Basic b3BzOnRva2Vu").refusal is None
        assert authenticator.identify(b"Bearer two words").refusal


def _pem(public_key) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    entries = [
        json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key())) | {"kid": "r1", "use": "sig"},
        json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key())) | {"kid": "e1"},
    ]
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps({"keys": entries}))
    return rsa_key, ec_key, str(path)


class TestJwks:
    @pytest.fixture
    def authenticator(self, keys) -> Authenticator:
        return Authenticator.from_settings(
            Settings(auth="jwt", jwt_jwks=keys[2], jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
        )

    def test_rs256_and_es256_tokens_are_chosen_by_kid(self, keys, authenticator):
        rsa_key, ec_key, _ = keys
        by_rsa = jwt.encode(claims("customer", "c-1"), rsa_key, algorithm="RS256", headers={"kid": "r1"})
        by_ec = jwt.encode(claims("admin", "a-1"), ec_key, algorithm="ES256", headers={"kid": "e1"})
        assert _identify(authenticator, by_rsa).role is Role.CUSTOMER
        assert _identify(authenticator, by_ec).role is Role.ADMIN

    def test_a_key_signing_under_another_kid_is_refused(self, keys, authenticator):
        wrong = jwt.encode(claims("admin", "a"), keys[0], algorithm="RS256", headers={"kid": "e1"})
        assert not _identify(authenticator, wrong).verified

    def test_unknown_or_missing_kid_is_refused(self, keys, authenticator):
        unknown = jwt.encode(claims("admin", "a"), keys[0], algorithm="RS256", headers={"kid": "r9"})
        assert "kid" in (_identify(authenticator, unknown).refusal or "")
        nameless = jwt.encode(claims("admin", "a"), keys[0], algorithm="RS256")
        assert not _identify(authenticator, nameless).verified

    def test_hs256_keyed_with_the_public_key_is_refused(self, keys, authenticator):
        for kid in ("r1", "e1", None):
            for key in (keys[0].public_key(), keys[1].public_key()):
                confused = hmac_keyed_with(_pem(key), "admin", "a", kid=kid)
                assert not _identify(authenticator, confused).verified

    def test_alg_none_is_refused(self, authenticator):
        assert not _identify(authenticator, alg_none("admin", "a")).verified

    def test_a_single_key_needs_no_kid(self, keys, tmp_path):
        entry = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(keys[0].public_key()))
        path = tmp_path / "one.json"
        path.write_text(json.dumps({"keys": [entry]}))
        one = Authenticator.from_settings(
            Settings(auth="jwt", jwt_jwks=str(path), jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
        )
        assert _identify(one, jwt.encode(claims("admin", "a"), keys[0], algorithm="RS256")).verified

    @pytest.mark.parametrize("problem", ["private", "weak", "symmetric", "not-json", "empty"])
    def test_unusable_key_files_are_refused_at_start(self, tmp_path, problem):
        if problem == "private":
            text = jwt.algorithms.RSAAlgorithm.to_jwk(
                rsa.generate_private_key(public_exponent=65537, key_size=2048)
            )
            document = json.dumps({"keys": [json.loads(text)]})
        elif problem == "weak":
            weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
            document = json.dumps({"keys": [json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(weak))]})
        elif problem == "symmetric":
            document = json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})
        else:
            document = "{" if problem == "not-json" else '{"keys": []}'
        path = tmp_path / "jwks.json"
        path.write_text(document)
        settings = Settings(auth="jwt", jwt_jwks=str(path), jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
        with pytest.raises(ConfigurationError, match="SHOPSTREAM_JWT_JWKS"):
            Authenticator.from_settings(settings)

    def test_mint_signs_with_a_private_key(self, keys, authenticator, tmp_path):
        pem = tmp_path / "key.pem"
        pem.write_bytes(
            keys[1].private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        settings = Settings(jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
        token = mint(settings, role="seller", subject="s-2", ttl=60, private_key=str(pem), kid="e1")
        assert _identify(authenticator, token).subject == "s-2"


def test_shopstream_token_prints_only_a_token_that_verifies():
    environ = os.environ | {
        "SHOPSTREAM_JWT_SECRET": SECRET,
        "SHOPSTREAM_JWT_ISSUER": ISSUER,
        "SHOPSTREAM_JWT_AUDIENCE": AUDIENCE,
    }
    done = subprocess.run(
        [SHOPSTREAM, "token", "--role", "customer", "--sub", "crm-7", "--ttl", "120"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert done.stdout.count("\n") == 1 and token.count(".") == 2
    settings = Settings(auth="jwt", jwt_secret=SECRET, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    principal = _identify(Authenticator.from_settings(settings), token)
    assert (principal.role, principal.subject) == (Role.CUSTOMER, "crm-7")
    payload = jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUDIENCE)
    assert payload["exp"] - payload["iat"] == 120
