"""The `shopstream` command: serve, api, worker, migrate, status, dlq, projections, keys."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec

from bus.conformance import NonConformingContext
from observability.spans import background
from shopstream import __version__, eventloop
from shopstream.bootstrap import Messaging, prepare
from shopstream.embedded import EmbeddedServers, with_embedded_defaults
from shopstream.migrate import MigrationError
from shopstream.processes import SupervisorProcess, run_server_processes, run_worker
from shopstream.settings import ConfigurationError, Settings


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shopstream", description=__doc__)
    parser.add_argument("--version", action="version", version=f"shopstream {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="API, relays and consumers on every core (migrates first)")
    serve.add_argument(
        "--workers",
        type=int,
        default=_cores(),
        help="API processes, beside one more for the relays and consumers; 1 runs everything in one"
        f" process (default: the cores this process may use, here {_cores()})",
    )
    api = commands.add_parser("api", help="the HTTP API only")
    api.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    worker = commands.add_parser("worker", help="relays and consumers only; run as many as you like")
    worker.add_argument(
        "--context", help="only this context (one of SHOPSTREAM_CONTEXTS; default: every one)"
    )
    worker.add_argument(
        "--metrics-port", type=int, default=9100, help="serve /metrics on this port (0: off; default 9100)"
    )
    commands.add_parser("migrate", help="apply pending database migrations")
    status = commands.add_parser("status", help="outbox backlog, streams, consumer groups, lag, dead letters")
    status.add_argument("--json", action="store_true", help="one JSON document, for scripts")
    dlq = commands.add_parser("dlq", help="dead letters").add_subparsers(dest="action", required=True)
    listing = dlq.add_parser("list", help="list dead letters")
    listing.add_argument("--consumer")
    for action in ("replay", "drop"):
        dlq.add_parser(action, help=f"{action} one dead letter").add_argument("id", type=int)
    projections = commands.add_parser("projections", help="read models").add_subparsers(
        dest="action", required=True
    )
    projections.add_parser(
        "rebuild",
        help="rebuild one projection from the event log into shadow tables, then swap them in (resumes"
        " a rebuild that was stopped)",
    ).add_argument("name")
    projections.add_parser(
        "status", help="each projection's version, events applied, lag and rebuild in progress"
    ).add_argument("--json", action="store_true", help="one JSON document, for scripts")
    keys = commands.add_parser("keys", help="keys of personal data").add_subparsers(
        dest="action", required=True
    )
    keys.add_parser(
        "rotate",
        help="re-wrap every customer's data key under the first key of SHOPSTREAM_DATA_KEY (unset: under a"
        " new key put first in the key file of SHOPSTREAM_DATA_DIR); the services keep running",
    )
    token = commands.add_parser(
        "token", help="print a bearer token (HS256 with SHOPSTREAM_JWT_SECRET, or --private-key)"
    )
    token.add_argument("--role", required=True, choices=["admin", "seller", "customer"])
    token.add_argument("--sub", required=True, help="a seller's id, or a customer's external_id")
    token.add_argument("--ttl", type=int, default=3600, help="seconds it stays valid (default 3600)")
    token.add_argument("--private-key", help="PEM file of an RSA or EC P-256 key: sign RS256/ES256")
    token.add_argument("--kid", help="the key's id in the JWKS (with --private-key)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.command == "token":
            from shopstream.auth import mint

            print(
                mint(
                    settings,
                    role=args.role,
                    subject=args.sub,
                    ttl=args.ttl,
                    private_key=args.private_key,
                    kid=args.kid,
                )
            )
            return 0
        if args.command == "worker" and args.context not in (None, *settings.context_names):
            raise ConfigurationError(f"--context must be one of {', '.join(settings.context_names)}")
        if args.command in ("serve", "api"):
            from shopstream.auth import check_listener

            check_listener(settings)  # before anything starts: one line saying why not
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        return 2
    from observability.logging import configure_logging
    from observability.tracing import configure_tracing

    configure_logging(settings.log_level, settings.log_format)
    configure_tracing(settings.traces_exporter, settings.otlp_traces_protocol or settings.otlp_protocol)
    settings, servers = with_embedded_defaults(settings)
    try:
        if args.command == "status":  # reads only: it migrates nothing
            from shopstream.status import status

            return status(settings, as_json=args.json)
        with background():  # start-up housekeeping, not a request: no traces of its statements
            applied = eventloop.run(prepare(settings))
        if args.command == "migrate":
            print(f"applied {len(applied)} migration(s)" + "".join(f"\n  {name}" for name in applied))
            return 0
        if args.command in ("serve", "api"):
            _print_banner(settings, servers, args.command)
            return _serve(settings, workers=max(1, args.workers), run_workers=args.command == "serve")
        if args.command == "worker":
            _print_banner(settings, servers, "worker")
            eventloop.run(run_worker(settings, args.context, args.metrics_port))
            return 0
        return eventloop.run(_with_messaging(settings, _OPERATIONS[(args.command, args.action)], args))
    except (ConfigurationError, MigrationError, NonConformingContext, OSError) as exc:
        print(f"shopstream: {exc}", file=sys.stderr)
        return 1
    finally:
        if servers is not None:
            servers.stop()


def _serve(settings: Settings, workers: int, run_workers: bool) -> int:
    """One process, or `workers` API processes (plus, for `serve`, one running the relays and
    consumers) sharing the listening socket, the servers and the metrics directory."""
    import uvicorn

    options: dict[str, Any] = {
        "host": settings.host, "port": settings.port, "log_level": settings.log_level.lower(),
        "access_log": False, "lifespan": "on", "timeout_graceful_shutdown": 10,
    }  # fmt: skip
    if workers > 1:
        # Server processes start fresh: they read the resolved URLs from the environment.
        os.environ["DATABASE_URL"] = settings.database_url or ""
        os.environ["REDIS_URL"] = settings.redis_url or ""
        from observability.exposition import shared_between_processes

        with shared_between_processes():  # one scrape sees every process, none twice
            if not run_workers:
                run_server_processes(workers, options)
                return 0
            with SupervisorProcess(settings) as supervisor:
                run_server_processes(workers, options)
            return 0 if supervisor.stopped_cleanly else 1
    from shopstream.app import create_app

    app = create_app(settings, run_workers=run_workers)
    gc.collect()
    gc.freeze()  # what start-up built lives for good: keep it out of every later collection
    uvicorn.run(app, **options)
    return 0


async def _with_messaging(
    settings: Settings, operation: Callable[[Messaging, argparse.Namespace], Awaitable[int]], args: Any
) -> int:
    messaging = await Messaging.open(settings)
    try:
        return await operation(messaging, args)
    finally:
        await messaging.close()


async def _dlq_list(messaging: Messaging, args: argparse.Namespace) -> int:
    from bus import deadletters

    pools = {id(p): p for p in messaging.resources.pools.values()}.values()
    letters = [letter for pool in pools for letter in await deadletters.listing(pool, args.consumer)]
    for letter in letters:
        print(msgspec.json.encode(letter).decode())
    if not letters:
        print("no dead letters", file=sys.stderr)
    return 0


async def _dlq_resolve(messaging: Messaging, args: argparse.Namespace) -> int:
    from bus import deadletters

    action = deadletters.replay if args.action == "replay" else deadletters.drop
    for pool in {id(p): p for p in messaging.resources.pools.values()}.values():
        try:
            print(msgspec.json.encode(await action(pool, messaging.inboxes, args.id)).decode())
            return 0
        except deadletters.DeadLetterNotFound:
            continue
    print(f"shopstream: no dead letter {args.id}", file=sys.stderr)
    return 1


async def _rebuild(messaging: Messaging, args: argparse.Namespace) -> int:
    from bus.rebuild import Rebuild, RebuildBusy
    from shopstream.progress import ProgressLine

    inbox = messaging.inboxes.get(args.name)
    if inbox is None:
        print(
            f"shopstream: no projection {args.name!r}; known: {', '.join(messaging.inboxes) or 'none'}",
            file=sys.stderr,
        )
        return 1
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):  # stop after the batch in hand; a later run resumes
        loop.add_signal_handler(sig, stopping.set)
    owner = messaging.owners[args.name]
    rebuild = Rebuild(
        messaging.pool_of(owner),
        inbox,
        on_progress=ProgressLine(sys.stderr),
        stopping=stopping,
        lock_dsn=messaging.direct_url_of(owner),
    )
    try:
        done = await rebuild.run()
    except RebuildBusy as exc:
        print(f"shopstream: {exc}", file=sys.stderr)
        return 1
    if not done.swapped:
        print(f"stopped {args.name} after {done.done} event(s); run it again to resume", file=sys.stderr)
        return 1
    print(f"rebuilt {args.name} v{done.version}: {done.done} event(s) replayed")
    return 0


async def _projections_status(messaging: Messaging, args: argparse.Namespace) -> int:
    from bus.versions import status

    found = [await status(messaging.pool_of(messaging.owners[n]), i) for n, i in messaging.inboxes.items()]
    if args.json:
        print(msgspec.json.format(msgspec.json.encode(found), indent=2).decode())
        return 0
    print(f"{'projection':<28} {'version':>7} {'live':>5} {'applied':>10} {'lag':>8}  rebuild")
    for p in found:
        rebuild = "-"
        if p.rebuild is not None:
            share = p.rebuild.done / p.rebuild.total if p.rebuild.total else 1.0
            rebuild = f"v{p.rebuild.version} {p.rebuild.done:,}/{p.rebuild.total:,} ({share:.0%})"
        print(f"{p.name:<28} {p.version:>7} {p.live_version:>5} {p.applied:>10,} {p.lag:>8,}  {rebuild}")
    return 0


async def _rotate_keys(messaging: Messaging, args: argparse.Namespace) -> int:
    from shopstream.datakeys import add_key_to_file, keyring_of

    settings = messaging.resources.settings
    keyring = keyring_of(settings) if settings.data_key else add_key_to_file(settings)
    for name, module in messaging.modules.items():
        if module.sealing is None:
            continue
        async with messaging.pool_of(name).acquire() as conn:
            count = await module.sealing(keyring).rotate(conn)
        print(f"{name}: {count} data key(s) re-wrapped; every data key is wrapped by {keyring.current}")
    return 0


_OPERATIONS: dict[tuple[str, str], Callable[[Messaging, argparse.Namespace], Awaitable[int]]] = {
    ("keys", "rotate"): _rotate_keys,
    ("dlq", "list"): _dlq_list,
    ("dlq", "replay"): _dlq_resolve,
    ("dlq", "drop"): _dlq_resolve,
    ("projections", "rebuild"): _rebuild,
    ("projections", "status"): _projections_status,
}


def _print_banner(settings: Settings, servers: EmbeddedServers | None, command: str) -> None:
    base = f"http://{settings.host}:{settings.port}"
    embedded = f" (embedded, data in {servers.data_dir})" if servers else ""
    where = f": {base}  docs: {base}/schema" if command != "worker" else ""
    print(f"ShopStream {__version__} {command}{where}", flush=True)
    print(f"  PostgreSQL: {_without_password(settings.database_url)}{embedded}", flush=True)
    print(f"  Redis:      {_without_password(settings.redis_url)}{embedded}", flush=True)
    if command != "worker":
        print(f"  Access:     {_access(settings)}", flush=True)


def _access(settings: Settings) -> str:
    if settings.auth == "none":
        return "SHOPSTREAM_AUTH=none: every caller acts as admin"
    keys = f"JWKS {settings.jwt_jwks}" if settings.jwt_jwks else "HS256 secret"
    return f"bearer JWT ({keys}), iss {settings.jwt_issuer}, aud {settings.jwt_audience}"


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
