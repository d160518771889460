"""How a process shows its metrics: its own registry, or — under `api --workers N` — the files that
all server processes write to one directory (Prometheus multiprocess mode), so that one scrape of
any of them sees every process and none is counted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import glob
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server

from observability.metrics import db_pools

SHARED_DIR = "PROMETHEUS_MULTIPROC_DIR"
RECORD_EVERY = 5.0  # seconds between a server process's writes of its pool gauges
HEADER = 8  # bytes at the start of a metrics file saying how much of it is written


class SharedFiles(multiprocess.MultiProcessCollector):
    """prometheus_client's collector of the shared directory, minus a race it has
    (prometheus/client_python#1199): a process creates its file and sizes it afterwards, so a scrape
    in between found 0 bytes and failed whole. A file without its header holds nothing yet."""

    def collect(self) -> Any:
        files = [f for f in glob.glob(os.path.join(self._path, "*.db")) if _has_header(f)]
        return self.merge(files, accumulate=True)


def _has_header(file: str) -> bool:
    try:
        return os.path.getsize(file) >= HEADER
    except FileNotFoundError:  # a dead process's live gauges, withdrawn since the glob
        return False


@functools.cache
def registry() -> CollectorRegistry:
    """What a scrape of this process shows: every server process's files, or this process alone."""
    if not shared():
        return REGISTRY
    merged = CollectorRegistry()
    SharedFiles(merged)  # type: ignore[no-untyped-call]
    return merged


def shared() -> bool:
    return bool(os.environ.get(SHARED_DIR))


@contextlib.contextmanager
def shared_between_processes() -> Iterator[Path]:
    """A fresh directory for the server processes started inside the block, removed after them.
    The processes must start after this (prometheus_client picks its mode when it is imported)."""
    path = Path(tempfile.mkdtemp(prefix="shopstream-metrics-"))
    os.environ[SHARED_DIR] = str(path)
    try:
        yield path
    finally:
        os.environ.pop(SHARED_DIR, None)
        shutil.rmtree(path, ignore_errors=True)


@contextlib.asynccontextmanager
async def server_process(_app: Any = None) -> AsyncIterator[None]:
    """Lifespan of one of several server processes: drop what dead ones left, keep the pool gauges
    written, and withdraw this process's live gauges when it stops."""
    if not shared():
        yield
        return
    forget_dead_processes()
    recording = asyncio.create_task(_record_pools())
    try:
        yield
    finally:
        recording.cancel()
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def forget_dead_processes() -> None:
    """A killed server process leaves its live gauges behind; its counters rightly stay."""
    for file in Path(os.environ[SHARED_DIR]).glob("gauge_live*_*.db"):
        pid = int(file.stem.rsplit("_", 1)[1])
        if not _alive(pid):
            multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _record_pools() -> None:
    while True:
        db_pools.record()
        await asyncio.sleep(RECORD_EVERY)


def serve(host: str, port: int) -> Callable[[], None]:
    """Serve `/metrics` of this process on its own listener (`shopstream worker --metrics-port`);
    return the function that stops it."""
    server, thread = start_http_server(port, addr=host)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return stop
