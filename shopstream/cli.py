"""The `shopstream` command: serve, api, migrate."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

from shopstream import __version__
from shopstream.bootstrap import migration_plan
from shopstream.embedded import EmbeddedServers, with_embedded_defaults
from shopstream.migrate import MigrationError, migrate_all
from shopstream.settings import ConfigurationError, Settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shopstream", description=__doc__)
    parser.add_argument("--version", action="version", version=f"shopstream {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="API and background workers in one process (migrates first)")
    api = commands.add_parser("api", help="the HTTP API only")
    api.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    commands.add_parser("migrate", help="apply pending database migrations")
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        return 2
    from observability.logging import configure_logging

    configure_logging(settings.log_level)
    settings, servers = with_embedded_defaults(settings)
    try:
        applied = asyncio.run(migrate_all(migration_plan(settings)))
        if args.command == "migrate":
            print(f"applied {len(applied)} migration(s)" + "".join(f"\n  {name}" for name in applied))
            return 0
        _print_banner(settings, servers, args.command)
        _serve(settings, workers=getattr(args, "workers", 1))
        return 0
    except (ConfigurationError, MigrationError, OSError) as exc:
        print(f"shopstream: {exc}", file=sys.stderr)
        return 1
    finally:
        if servers is not None:
            servers.stop()


def _serve(settings: Settings, workers: int) -> None:
    import uvicorn

    options = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level.lower(),
        "loop": "auto",
        "http": "auto",
        "access_log": False,
        "lifespan": "on",
    }
    if workers > 1:
        # Workers are fresh processes: they read the resolved URLs from the environment.
        os.environ["DATABASE_URL"] = settings.database_url or ""
        os.environ["REDIS_URL"] = settings.redis_url or ""
        uvicorn.run("shopstream.app:create_app", factory=True, workers=workers, **options)  # type: ignore[arg-type]
        return
    from shopstream.app import create_app

    uvicorn.run(create_app(settings), **options)  # type: ignore[arg-type]


def _print_banner(settings: Settings, servers: EmbeddedServers | None, command: str) -> None:
    base = f"http://{settings.host}:{settings.port}"
    embedded = f" (embedded, data in {servers.data_dir})" if servers else ""
    print(f"ShopStream {__version__} {command}: {base}  docs: {base}/schema", flush=True)
    print(f"  PostgreSQL: {_without_password(settings.database_url)}{embedded}", flush=True)
    print(f"  Redis:      {_without_password(settings.redis_url)}{embedded}", flush=True)


def _without_password(url: str | None) -> str:
    if not url:
        return "-"
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


if __name__ == "__main__":
    raise SystemExit(main())
