"""Start `shopstream serve` on a free port, run Schemathesis against its /schema (every check, every
phase, stateful included) once per role, stop the server; exit non-zero on any failure.

PostgreSQL and Redis: DATABASE_URL and REDIS_URL when both are set (a scratch database and Redis
prefix on them, removed afterwards), else the embedded servers in a temporary directory. The server
runs with SHOPSTREAM_AUTH=jwt and a fresh secret; each run sends a token of its role.

    python -m fuzz.run [--max-examples N] [--roles admin,seller,customer] [--seed S] [-- schemathesis args]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CONFIG = Path(__file__).with_name("schemathesis.toml")
START_TIMEOUT = 120.0
_SUBJECTS = {"admin": "fuzz-admin", "seller": str(uuid.uuid4()), "customer": "crm-10042"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def backing_servers(data_dir: str) -> Iterator[dict[str, str]]:
    """Settings naming the PostgreSQL and Redis to use: a scratch database on DATABASE_URL's server
    and a scratch prefix on REDIS_URL, or nothing (the server starts embedded ones in `data_dir`)."""
    database_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if not (database_url and redis_url):
        yield {"SHOPSTREAM_DATA_DIR": data_dir}
        return
    from bench.common import admin, with_database

    run_id = secrets.token_hex(4)
    database = f"fuzz_{run_id}"
    asyncio.run(admin(database_url, f'CREATE DATABASE "{database}"'))
    try:
        yield {
            "DATABASE_URL": with_database(database_url, database),
            "REDIS_URL": redis_url,
            "SHOPSTREAM_REDIS_PREFIX": f"fuzz-{run_id}",
            "SHOPSTREAM_DATA_DIR": data_dir,
        }
    finally:
        asyncio.run(admin(database_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        from redis import Redis

        client = Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"fuzz-{run_id}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def server_env(settings: dict[str, str], port: int, secret: str) -> dict[str, str]:
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith("DATABASE_URL") and not k.startswith(("SHOPSTREAM_", "OTEL_")) and k != "REDIS_URL"
    }
    return (
        inherited
        | settings
        | {
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "LOG_LEVEL": "WARNING",
            "SHOPSTREAM_AUTH": "jwt",
            "SHOPSTREAM_JWT_SECRET": secret,
            "SHOPSTREAM_JWT_ISSUER": "shopstream-fuzz",
            "SHOPSTREAM_JWT_AUDIENCE": "shopstream",
        }
    )


def wait_until_ready(server: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"shopstream serve exited with {server.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(
        f"shopstream serve was not ready within {START_TIMEOUT:.0f}s:\n{log.read_text()[-4000:]}"
    )


def token(role: str, env: dict[str, str]) -> str:
    argv = [str(BIN / "shopstream"), "token", "--role", role, "--sub", _SUBJECTS[role], "--ttl", "86400"]
    return subprocess.run(argv, env=env, check=True, capture_output=True, text=True).stdout.strip()


def schemathesis(url: str, role: str, bearer: str, args: argparse.Namespace, workdir: str) -> int:
    argv = [
        str(BIN / "schemathesis"), "--config-file", str(CONFIG), "run", f"{url}/schema/openapi.json",
        "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", str(args.max_examples),
        "--no-color", *(["--seed", str(args.seed)] if args.seed is not None else []), *args.rest,
    ]  # fmt: skip
    print(f"\n== schemathesis as {role}: {args.max_examples} examples per operation", flush=True)
    env = os.environ | {
        "SCHEMATHESIS_HOOKS": "fuzz.hooks",
        "PYTHONPATH": str(ROOT),
        "SHOPSTREAM_FUZZ_TOKEN": bearer,
    }
    # Run in the scratch directory: Schemathesis keeps its own files (.schemathesis/) where it runs.
    return subprocess.run(argv, cwd=workdir, env=env, check=False).returncode


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=int(os.environ.get("FUZZ_MAX_EXAMPLES", 100)))
    parser.add_argument("--roles", default=os.environ.get("FUZZ_ROLES", "admin"))
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("rest", nargs="*", help="more schemathesis options (after --)")
    args = parser.parse_args(argv)
    roles = [r.strip() for r in args.roles.split(",") if r.strip()]
    if unknown := set(roles) - _SUBJECTS.keys():
        parser.error(f"unknown roles: {', '.join(sorted(unknown))}")
    with tempfile.TemporaryDirectory(prefix="fuzz-") as data_dir, backing_servers(data_dir) as settings:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = server_env(settings, port, secrets.token_urlsafe(32))
        log = Path(data_dir) / "serve.log"
        with log.open("wb") as sink:
            server = subprocess.Popen(
                [str(BIN / "shopstream"), "serve"], cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT
            )
        try:
            wait_until_ready(server, url, log)
            failed = [
                role for role in roles if schemathesis(url, role, token(role, env), args, data_dir) != 0
            ]
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        if failed:
            print(f"\nfuzz: failures as {', '.join(failed)}; server log: {log.read_text()[-2000:]}")
            return 1
        print(f"\nfuzz: no failures as {', '.join(roles)}")
        return 0


if __name__ == "__main__":
    sys.exit(main())
