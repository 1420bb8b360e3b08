"""``HEAD`` on every ``GET`` route: the same status and headers, no body (RFC 9110, 9.3.2).

FastAPI's routes answer only the methods they name (Starlette's own add ``HEAD`` to ``GET``, but
FastAPI's do not), so a ``HEAD`` was 405. :class:`HeadAsGet` runs a ``HEAD`` request as ``GET``
(marked :data:`HEAD_REQUEST` in its scope) and passes on the response's start (status,
``Content-Length``, ``Content-Type``, ``Accept-Ranges``, ...) with an empty body in place of
the body. The OpenAPI document lists the ``GET`` operations alone: ``HEAD`` is HTTP's, the
same on each.

A streamed body would still be begun: a stored file's first chunk read from Redis, an event
stream opened. :class:`StreamedBody`, the streamed responses' class, begins none of it on a
``HEAD``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from starlette.background import BackgroundTask
from starlette.responses import ContentStream, StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEAD_REQUEST = "meshcast.head"  # a key of the scope: a HEAD request, run as GET


class HeadAsGet:
    """An ASGI middleware: ``HEAD`` answered as ``GET`` without the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        body_sent = False

        async def headers_only(message: Message) -> None:
            nonlocal body_sent
            if message["type"] == "http.response.start":
                await send(message)
            elif message["type"] == "http.response.body" and not body_sent:
                body_sent = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await self.app({**scope, "method": "GET", HEAD_REQUEST: True}, receive, headers_only)


class StreamedBody(StreamingResponse):
    """A streamed response that, on a ``HEAD``, sends its status and headers alone: its
    iterator is never started (a stored file is not read, an event stream not subscribed to),
    and ``on_head`` gives back what the route took for the body (an event stream's place)."""

    def __init__(
        self,
        content: ContentStream,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
        on_head: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(content, status_code, headers, media_type, background)
        self.on_head = on_head

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not scope.get(HEAD_REQUEST):
            await super().__call__(scope, receive, send)
            return
        if self.on_head is not None:  # before the answer: its client may ask again at once
            self.on_head()
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        await send({"type": "http.response.body", "body": b"", "more_body": False})
