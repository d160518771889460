"""The processes beside the API's event loop: `shopstream worker` (the relays and consumers), and
under `shopstream serve --workers N` the API's processes plus one more that runs the worker."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
from multiprocessing.connection import wait
from types import TracebackType
from typing import Any

from shopstream.bootstrap import Messaging
from shopstream.settings import ConfigurationError, Settings

STOP_TIMEOUT = 10.0  # seconds a stopping supervisor gets to finish its batches before it is killed
# Seconds a server process may take to answer the parent's health ping: one that starts while the
# machine is busy (a restart under load) can take several just to import, and must not be killed for it.
HEALTHCHECK_TIMEOUT = 30

_log = logging.getLogger("shopstream.serve")


class SupervisorProcess:
    """Runs `shopstream worker` (every context) in a child process for the span of a `with` block.

    If the child dies while the block runs, the whole server stops (SIGTERM to this process) rather
    than serve commands whose events nobody relays; `stopped_cleanly` then reads False."""

    def __init__(self, settings: Settings) -> None:
        # spawn, as uvicorn does: the child starts clean, not as a copy of a process that holds threads
        self._process = multiprocessing.get_context("spawn").Process(
            target=_supervise, args=(settings,), name="shopstream-supervisor", daemon=True
        )
        self._lock = threading.Lock()  # one thread at a time may reap the child
        self._leaving = False
        self.stopped_cleanly = True

    def __enter__(self) -> SupervisorProcess:
        self._process.start()
        threading.Thread(target=self._watch, name="supervisor-watch", daemon=True).start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        with self._lock:
            self._leaving = True
        process = self._process
        if not wait([process.sentinel], 0):
            process.terminate()  # SIGTERM: the supervisor stops its tasks and closes its pools
        if not wait([process.sentinel], STOP_TIMEOUT):
            _log.error("the relays and consumers did not stop within %.0fs: killed", STOP_TIMEOUT)
            process.kill()
            self.stopped_cleanly = False
        process.join()
        if process.exitcode not in (0, -signal.SIGTERM):
            self.stopped_cleanly = False

    def _watch(self) -> None:
        wait([self._process.sentinel])
        with self._lock:
            if self._leaving:
                return
            code = self._process.exitcode
        if code != 0:  # 0: stopped by a signal sent to it alone
            _log.error("the relays and consumers exited (code %s): stopping", code)
            self.stopped_cleanly = False
            os.kill(os.getpid(), signal.SIGTERM)


def _supervise(settings: Settings) -> None:
    from observability.logging import configure_logging
    from observability.tracing import configure_tracing, flush_tracing
    from shopstream import eventloop

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent too, which stops us
    configure_logging(settings.log_level, settings.log_format)
    configure_tracing(settings.traces_exporter, settings.otlp_traces_protocol or settings.otlp_protocol)
    try:
        eventloop.run(run_worker(settings, None))
    finally:
        flush_tracing()


async def run_worker(settings: Settings, context: str | None, metrics_port: int = 0) -> None:
    """`shopstream worker`: the relays and consumers of every context, or of one, until SIGTERM or
    Ctrl-C; with `metrics_port`, its own /metrics too."""
    from observability import exposition

    messaging = await Messaging.open(settings)
    stop_metrics = None
    try:
        if metrics_port:
            try:
                stop_metrics = exposition.serve(settings.host, metrics_port)
            except OSError as exc:
                raise ConfigurationError(
                    f"--metrics-port {metrics_port} on {settings.host} cannot be served ({exc.strerror}): another"
                    " process holds it; give each worker its own --metrics-port, or 0 for none"
                ) from None
            print(f"  metrics:    http://{settings.host}:{metrics_port}/metrics", flush=True)
        supervisor = messaging.supervisor(None if context is None else [context])
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, supervisor.stop)
        async with exposition.server_process():  # under `serve --workers N`: into the shared metrics
            await supervisor.run()
    finally:
        if stop_metrics is not None:
            stop_metrics()
        await messaging.close()


def run_server_processes(workers: int, options: dict[str, Any]) -> None:
    """uvicorn's multi-process server (`uvicorn.run(..., workers=N)`), except that the parent lets go
    of the listening socket as soon as it stops: the server processes close their own copies when
    their shutdown begins, so a connection made meanwhile is refused at once rather than queued
    unanswered and reset when the parent exits."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    class ServerProcesses(Multiprocess):
        def terminate_all(self) -> None:
            for sock in self.sockets:
                sock.close()
            super().terminate_all()

    config = uvicorn.Config(
        "shopstream.app:create_app",
        factory=True,
        workers=workers,
        timeout_worker_healthcheck=HEALTHCHECK_TIMEOUT,
        **options,
    )
    ServerProcesses(config, sockets=[config.bind_socket()]).run()
