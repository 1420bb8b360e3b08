"""uvicorn for the gateway: its limits from the settings, and its own answers in the API's shape.

uvicorn answers some requests before the app sees them: one that is not HTTP/1.1, or whose
request line and headers pass ``server.max_header_bytes`` (400), and any past
``server.max_connections`` connections or requests at once (503). It answers them in plain
text; :class:`GatewayProtocol` answers them as every other error
(:class:`~service.gateway.errors.ErrorResponse`), with the codes ``malformed_request`` and
``gateway_busy``.

uvicorn has no timeout on a request's headers: a client that sends them slowly holds its
connection (and counts against ``max_connections``) until it stops. In a cluster the ingress
controller bounds that (nginx: ``client_header_timeout``, 60 s by default); the body's timeouts
are the gateway's own (``upload.read_timeout_s``).
"""

from __future__ import annotations

from typing import Any

import h11
import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from service.gateway.errors import ErrorCode, error_json
from service.settings import GatewaySettings

BUSY_RETRY_AFTER_S = 5
JSON_TYPE = b"application/json"


class GatewayProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, answering its own errors in the API's JSON shape."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn's own check answers in plain text: the app is wrapped to check the same
        # counts and answer in JSON instead.
        self._max_connections = self.limit_concurrency
        self.limit_concurrency = None
        self.app = self._refusing_when_busy(self.app)

    def send_400_response(self, msg: str) -> None:
        """A request h11 cannot parse, answered as ``malformed_request`` (uvicorn's ``msg`` is
        always "Invalid HTTP request received.")."""
        body = error_json(
            ErrorCode.MALFORMED_REQUEST,
            "the request is not valid HTTP/1.1, or its request line and headers pass "
            f"{self.config.h11_max_incomplete_event_size} bytes",
        ).body
        headers = [
            (b"content-type", JSON_TYPE),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=bytes(body)),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()

    def _refusing_when_busy(self, app: ASGIApp) -> ASGIApp:
        """``app``, but a request past ``max_connections`` connections or requests (this one
        included) is answered ``gateway_busy`` and its connection closed."""

        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            limit = self._max_connections
            if limit is not None and max(len(self.connections), len(self.tasks)) > limit:
                response = error_json(
                    ErrorCode.GATEWAY_BUSY,
                    f"the gateway serves {limit} connections, the most it takes at once: try "
                    "again in a moment",
                    {"Retry-After": str(BUSY_RETRY_AFTER_S), "Connection": "close"},
                )
                await response(scope, receive, send)
                return
            await app(scope, receive, send)

        return guarded


def server_config(app: FastAPI, settings: GatewaySettings, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration of the gateway ``app``: address and limits from ``settings``
    (``options`` may override any of uvicorn's own, e.g. ``port``)."""
    server = settings.server
    chosen: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "http": GatewayProtocol,
        "limit_concurrency": server.max_connections,
        "timeout_keep_alive": server.keep_alive_s,
        "h11_max_incomplete_event_size": server.max_header_bytes,
        "timeout_graceful_shutdown": server.graceful_shutdown_s,
    }
    return uvicorn.Config(app, **(chosen | options))
