"""A backing service that goes away on demand: a TCP relay in front of the real PostgreSQL or Redis,
run in a thread of its own (the app under test has its own event loop, and a request through the
test client blocks the test's). `cut()` drops every relayed connection and refuses new ones, as a
server that stopped does; `restore()` listens again on the same port."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Iterator
from typing import TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

T = TypeVar("T")


class CuttableRelay:
    def __init__(self, url: str) -> None:
        self.upstream = url
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="cuttable-relay", daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    # -- the test's side -----------------------------------------------------------------------

    def start(self) -> CuttableRelay:
        self._thread.start()
        self._call(self._listen())
        return self

    def url(self) -> str:
        """The upstream URL with its host and port replaced by the relay's."""
        parts = urlsplit(self.upstream)
        scheme = "redis" if parts.scheme == "unix" else parts.scheme
        user = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
        path = parts.path if parts.scheme != "unix" else ""
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "host"]
        if parts.scheme == "unix":
            db = dict(parse_qsl(parts.query)).get("db", "0")
            path, query = f"/{db}", []
        netloc = f"{user}@127.0.0.1:{self.port}" if user else f"127.0.0.1:{self.port}"
        return urlunsplit((scheme, netloc, path, urlencode(query), ""))

    def cut(self) -> None:
        self._call(self._cut())

    def restore(self) -> None:
        self._call(self._listen())

    def stop(self) -> None:
        self._call(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        """The service is away inside the block and back after it."""
        self.cut()
        try:
            yield
        finally:
            self.restore()

    def _call(self, work: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(10)  # type: ignore[arg-type]

    # -- the relay's own loop ------------------------------------------------------------------

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
            self.port = self._server.sockets[0].getsockname()[1]

    async def _cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await self._open_upstream()
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        parts = urlsplit(self.upstream)
        if parts.scheme == "unix":
            return await asyncio.open_unix_connection(parts.path)
        socket_dir = dict(parse_qsl(parts.query)).get("host", "")
        if socket_dir.startswith("/"):  # PostgreSQL over its Unix socket (the embedded server)
            return await asyncio.open_unix_connection(f"{socket_dir}/.s.PGSQL.{parts.port or 5432}")
        return await asyncio.open_connection(parts.hostname, parts.port)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while chunk := await source.read(65536):
                sink.write(chunk)
                await sink.drain()
        except (OSError, RuntimeError):
            pass
        finally:
            self._writers.discard(sink)
            sink.close()
