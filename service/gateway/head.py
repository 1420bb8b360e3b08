"""``HEAD`` on every ``GET`` route: the same status and headers, no body (RFC 9110, 9.3.2).

FastAPI's routes answer only the methods they name (Starlette's own add ``HEAD`` to ``GET``, but
FastAPI's do not), so a ``HEAD`` was 405. :class:`HeadAsGet` runs a ``HEAD`` request as ``GET``
and sends the response's start (status, ``Content-Length``, ``Content-Type``, ``Accept-Ranges``,
...) with an empty body; at the first piece of the body it stops the response, so that a
stored file's download reads nothing more from Redis than its size.
"""

from __future__ import annotations

import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _BodyDropped(BaseException):
    """Raised into the response at its first body: the rest of it is not wanted. A
    ``BaseException``, so that no error handler of the app takes it for a failure."""


class HeadAsGet:
    """An ASGI middleware: ``HEAD`` answered as ``GET`` without the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.start":
                await send(message)
                return
            if message["type"] == "http.response.body":
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                raise _BodyDropped

        with contextlib.suppress(_BodyDropped):
            await self.app({**scope, "method": "GET"}, receive, headers_only)
