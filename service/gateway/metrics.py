"""The gateway's Prometheus metrics, the middleware that counts every request, and the server
that exposes them on a port of their own (``gateway.metrics_host``, ``metrics_port``), away from
the API's port: an Ingress that routes the API to the world does not route them.

Each app has a registry of its own (not prometheus_client's global one), so that several apps
in one process (tests) do not register the same names twice. Labels stay few: the route is
its template (``/jobs/{job_id}``), never the path, so job ids do not make a series each.

- ``meshcast_gateway_requests_total{method, route, status}``
- ``meshcast_gateway_request_duration_seconds{method, route, status}``: until the response's
  last byte (an event stream counts its whole life);
- ``meshcast_gateway_jobs_created_total``: jobs accepted (202);
- ``meshcast_gateway_uploads_refused_total{code}``: uploads refused, by error code;
- ``meshcast_gateway_event_streams_open``: event streams open now;
- ``meshcast_gateway_uploads_in_progress``: uploads being received now;
- the process's own (CPU, memory, open files).
"""

from __future__ import annotations

import time
from http import HTTPStatus
from wsgiref.simple_server import WSGIServer

from fastapi import FastAPI
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    start_http_server,
)
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.settings import GatewaySettings

NAMESPACE = "meshcast_gateway"
# Seconds: requests answered from Redis take milliseconds, uploads of hundreds of MB minutes.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
UNMATCHED_ROUTE = "unmatched"  # a path no route serves: one label for all of them


class GatewayMetrics:
    """The metrics of one app, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "requests", "HTTP requests answered, by route and status",
            ["method", "route", "status"], namespace=NAMESPACE, registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "request_duration_seconds", "Time from request to the response's last byte",
            ["method", "route", "status"], namespace=NAMESPACE, registry=self.registry,
            buckets=LATENCY_BUCKETS_S,
        )  # fmt: skip
        self.jobs_created = Counter(
            "jobs_created", "Jobs accepted and queued", namespace=NAMESPACE,
            registry=self.registry,
        )  # fmt: skip
        self.uploads_refused = Counter(
            "uploads_refused", "Uploads refused, by error code", ["code"],
            namespace=NAMESPACE, registry=self.registry,
        )  # fmt: skip
        self.event_streams = Gauge(
            "event_streams_open", "Event streams (SSE) open now", namespace=NAMESPACE,
            registry=self.registry,
        )  # fmt: skip
        self.uploads = Gauge(
            "uploads_in_progress", "Uploads being received now", namespace=NAMESPACE,
            registry=self.registry,
        )  # fmt: skip


class MetricsMiddleware:
    """Counts and times every HTTP request (a plain ASGI middleware: it wraps streamed
    responses without buffering them, which Starlette's ``BaseHTTPMiddleware`` does not)."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = HTTPStatus.INTERNAL_SERVER_ERROR  # unless a response starts

        async def send_counting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counting)
        finally:
            # The router has put the matched route into the scope by now.
            route = scope.get("route")
            template = route.path if isinstance(route, BaseRoute) and hasattr(route, "path") else ""
            labels = {
                "method": scope["method"],
                "route": template or UNMATCHED_ROUTE,
                "status": str(int(status)),
            }
            self.metrics.requests.labels(**labels).inc()
            self.metrics.latency.labels(**labels).observe(time.perf_counter() - start)


def serve_metrics(
    app: FastAPI, settings: GatewaySettings, metrics: GatewayMetrics
) -> WSGIServer | None:
    """Start prometheus_client's server of ``metrics`` (a thread) where ``settings`` say, and
    note its URL in ``app.state.metrics_url``; ``None`` when no port is set. The caller shuts
    it down."""
    if settings.metrics_port is None:
        return None
    server, _ = start_http_server(
        settings.metrics_port, settings.metrics_host, registry=metrics.registry
    )
    app.state.metrics_url = f"http://{settings.metrics_host}:{server.server_port}/metrics"
    return server
