"""The outermost ASGI layer: a correlation id for every request, and oversized bodies refused unread.

It wraps Litestar's own handler stack, so it also sees requests that match no route (Litestar's
middleware runs only for matched routes): a 2 MiB POST to an unknown path still answers 413.
"""

from __future__ import annotations

import os
import re
from typing import Any

import msgspec

from observability.logging import correlation_id
from shopstream.problems import PROBLEM_JSON, problem_body

MAX_BODY_BYTES = 1024 * 1024
_VALID_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
_HEADER = b"x-correlation-id"


class Edge:
    def __init__(self, app: Any, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = declared = None
        for name, value in scope["headers"]:
            if name == _HEADER:
                given = value
            elif name == b"content-length":
                declared = value
        cid = given.decode() if given and _VALID_ID.match(given) else os.urandom(16).hex()
        token = correlation_id.set(cid)
        id_header = (_HEADER, cid.encode())

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            if declared is not None and declared.isdigit() and int(declared) > self.max_body:
                await self._refuse(send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            correlation_id.reset(token)

    async def _refuse(self, send: Any) -> None:
        body = msgspec.json.encode(
            problem_body(413, f"The request body exceeds {self.max_body} bytes.", kind="body-too-large")
        )
        headers = [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
