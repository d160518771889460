"""An HTTP/1.1 load generator for the pipeline benchmark: open loop (paced) or closed loop.

Open loop: request i is due at start + i / rate, whether or not earlier ones were answered; a due
request goes out on an idle keep-alive connection, on a new one while fewer than `max_connections`
are open, or else waits for the first connection to free up. Its latency counts from when it was due,
so a server that falls behind shows it in the latency instead of slowing the generator down
(no coordinated omission). Closed loop: `connections` connections each send their next request as
soon as the previous one is answered, for a fixed time.

Raw asyncio protocols on the running loop (uvloop in the benchmark): parsing is the status line and
Content-Length, all the benchmark's servers send.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec

Body = Callable[[int], bytes]  # request number -> JSON body


class LoadResult(msgspec.Struct, frozen=True):
    planned_rate: float | None  # requests/s asked for (None: closed loop)
    sent: int
    ok: int  # 2xx answers
    failed: int  # other answers, broken connections, unanswered at the end
    seconds: float  # from the first request due to the last answer
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        """2xx answers per second."""
        return self.ok / self.seconds if self.seconds > 0 else 0.0


def due_times(rate: float, seconds: float) -> list[float]:
    """Offsets (s) at which the requests of an open-loop run are due: evenly spaced at `rate`."""
    return [i / rate for i in range(int(rate * seconds))]


def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-int(share * 1000) * len(sorted_values) // 1000))  # ceil without float drift
    return sorted_values[min(rank, len(sorted_values)) - 1]


def request_bytes(method: str, host: str, path: str, body: bytes | None) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + (body or b"")


class _Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self, answered: Callable[[_Connection, int | None], None]) -> None:
        self.answered = answered
        self.transport: Any = None
        self.buffer = b""
        self.busy = False
        self.due = 0.0  # when the request in flight was due
        self.closed = False

    def connection_made(self, transport: Any) -> None:  # uvloop's TCP transport is no asyncio.Transport
        self.transport = transport

    def send(self, payload: bytes, due: float) -> None:
        assert self.transport is not None
        self.busy, self.due = True, due
        self.transport.write(payload)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].decode("latin-1")
        length = 0
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if len(self.buffer) < end + 4 + length:
            return
        self.buffer = self.buffer[end + 4 + length :]
        self.busy = False
        self.answered(self, int(head.split(" ", 2)[1]))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.busy:
            self.busy = False
            self.answered(self, None)


class _Run:
    """Bookkeeping of one run: connections, the queue of due requests, answers and latencies."""

    def __init__(self, host: str, port: int, request: Callable[[int], bytes], max_connections: int) -> None:
        self.host, self.port = host, port
        self.request = request
        self.max_connections = max_connections
        self.loop = asyncio.get_running_loop()
        self.idle: list[_Connection] = []
        self.opened = 0
        self.queue: deque[tuple[int, float]] = deque()  # (request number, due) waiting for a connection
        self.in_flight = 0
        self.ok = self.failed = self.sent = 0
        self.latencies: list[float] = []
        self.last_answer = 0.0
        self.all_answered = asyncio.Event()
        self.closed_loop_until: float | None = None
        self.next_number = 0

    def answered(self, conn: _Connection, status: int | None) -> None:
        now = time.perf_counter()
        self.in_flight -= 1
        self.last_answer = now
        if status is not None and 200 <= status < 300:
            self.ok += 1
            self.latencies.append(now - conn.due)
        else:
            self.failed += 1
        if conn.closed:
            self.opened -= 1
        elif self.closed_loop_until is not None and now < self.closed_loop_until:
            self._send(conn, self._take_number(), now)
        elif self.queue:
            number, due = self.queue.popleft()
            self._send(conn, number, due)
        else:
            self.idle.append(conn)
        if self.in_flight == 0 and not self.queue:
            self.all_answered.set()

    def _take_number(self) -> int:
        self.next_number += 1
        return self.next_number - 1

    def _send(self, conn: _Connection, number: int, due: float) -> None:
        self.in_flight += 1
        self.sent += 1
        self.all_answered.clear()
        conn.send(self.request(number), due)

    async def _open(self) -> _Connection:
        self.opened += 1
        try:
            _, conn = await self.loop.create_connection(
                lambda: _Connection(self.answered), self.host, self.port
            )
        except OSError:
            self.opened -= 1
            raise
        return conn

    async def dispatch(self, number: int, due: float) -> None:
        """Send request `number` now, or queue it behind the busy connections."""
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed:
                self._send(conn, number, due)
                return
            self.opened -= 1
        if self.opened < self.max_connections:
            try:
                conn = await self._open()
            except OSError:
                self.failed += 1
                return
            self._send(conn, number, due)
        else:
            self.queue.append((number, due))

    def close(self) -> None:
        for conn in self.idle:
            if conn.transport is not None:
                conn.transport.close()

    def result(self, planned_rate: float | None, started: float) -> LoadResult:
        unanswered = self.in_flight + len(self.queue)
        self.latencies.sort()
        return LoadResult(
            planned_rate=planned_rate,
            sent=self.sent + len(self.queue),
            ok=self.ok,
            failed=self.failed + unanswered,
            seconds=max(self.last_answer - started, 1e-9),
            p50_ms=percentile(self.latencies, 0.50) * 1000,
            p99_ms=percentile(self.latencies, 0.99) * 1000,
        )


def requester(method: str, host: str, path: str, body: Body | None) -> Callable[[int], bytes]:
    if body is None:
        fixed = request_bytes(method, host, path, None)
        return lambda _number: fixed
    return lambda number: request_bytes(method, host, path, body(number))


async def paced(
    host: str,
    port: int,
    path: str,
    body: Body | None,
    rate: float,
    seconds: float,
    *,
    method: str = "POST",
    max_connections: int = 256,
    grace: float = 5.0,
) -> LoadResult:
    """Open loop: `rate` requests/s for `seconds`, then up to `grace` seconds for the last answers."""
    run = _Run(host, port, requester(method, f"{host}:{port}", path, body), max_connections)
    offsets = due_times(rate, seconds)
    started = time.perf_counter()
    for number, offset in enumerate(offsets):
        due = started + offset
        wait = due - time.perf_counter()
        if wait > 0.0005:
            await asyncio.sleep(wait)
        await run.dispatch(number, due)
    if run.in_flight or run.queue:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.all_answered.wait(), grace)
    run.close()
    return run.result(rate, started)


async def closed_loop(
    host: str,
    port: int,
    path: str,
    body: Body | None,
    connections: int,
    seconds: float,
    *,
    method: str = "GET",
    first_number: int = 0,
) -> LoadResult:
    """`connections` connections, each sending its next request on the previous one's answer."""
    run = _Run(host, port, requester(method, f"{host}:{port}", path, body), connections)
    run.next_number = first_number
    started = time.perf_counter()
    run.closed_loop_until = started + seconds
    for _ in range(connections):
        await run.dispatch(run._take_number(), time.perf_counter())
    await asyncio.sleep(seconds)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run.all_answered.wait(), 5.0)
    run.close()
    return run.result(None, started)


async def total(
    host: str, port: int, path: str, body: Body, count: int, connections: int, *, method: str = "POST"
) -> LoadResult:
    """Closed loop until exactly `count` requests were answered (to fill a backlog)."""
    run = _Run(host, port, requester(method, f"{host}:{port}", path, body), connections)
    started = time.perf_counter()
    for number in range(count):
        run.queue.append((number, started))
    for _ in range(min(connections, count)):
        number, due = run.queue.popleft()
        await run.dispatch(number, due)
    await run.all_answered.wait()
    run.close()
    return run.result(None, started)
