"""The gateway's FastAPI app: :func:`create_app`.

Blocking work (every Redis call, probing an upload) runs in the thread pool: the job store's
client is synchronous (see :mod:`service.jobs.store` for why), so routes are plain ``def``
functions, which FastAPI runs there, except the upload, which reads its body on the event loop
and hands each Redis write to the pool. Event streams hold a thread each while open: the pool
gets :data:`REQUEST_THREADS` besides ``max_event_streams``, so that open streams never starve
other requests.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

import anyio.to_thread
import redis
from fastapi import FastAPI

from service.gateway.context import Gateway, Slots
from service.gateway.docs import install_docs
from service.gateway.errors import install_error_handlers
from service.gateway.frame_meshes import FrameBody
from service.gateway.head import HeadAsGet
from service.gateway.metrics import GatewayMetrics, MetricsMiddleware, serve_metrics
from service.gateway.routers import downloads, events, health, jobs
from service.gateway.web import install_web
from service.jobs import JobStore, Keys, RateLimiter
from service.queue import celery_app
from service.scratch_folders import UPLOAD_PREFIX, sweep_orphan_folders
from service.settings import ServiceSettings, resolve_api_keys

logger = logging.getLogger(__name__)

REQUEST_THREADS = 40  # anyio's default pool, kept for requests besides the event streams
# A Redis that does not connect or answer this long is an error (503), not a hung request.
REDIS_TIMEOUT_S = 5.0

DESCRIPTION = """
Upload a video; get every tracked person's SMPL body per frame: parameters (JSON, NPZ),
meshes (OBJ, PLY per person and frame; an animated GLB per person) and a preview video.

Every route under `/jobs` takes an API key, `Authorization: Bearer <key>`, and sees only the
jobs made with it. Errors are JSON, `{"error": {"code": "...", "message": "..."}}`: the code is
stable, the message says what to do.
"""


def create_app(settings: ServiceSettings, body: FrameBody) -> FastAPI:
    """The gateway for ``settings``: its routes, error handlers and metrics.

    ``body`` poses the meshes it serves (:func:`~service.gateway.frame_meshes.load_frame_body`
    loads the bundle's, once per process, before the app is made: a missing bundle stops
    ``meshcast gateway`` at start-up, never a download). Nothing connects until a request
    comes (Redis and the broker are dialled lazily), so the app starts, and ``/healthz``
    answers, while Redis is still down; ``/readyz`` says so. The keys of
    ``gateway.api_keys_file`` are read here, once.

    Raises:
        FileNotFoundError: ``gateway.api_keys_file`` is missing.
        ValueError: an entry of it is not a key.
    """
    settings = resolve_api_keys(settings)
    client = redis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        socket_timeout=REDIS_TIMEOUT_S,
    )
    metrics = GatewayMetrics()
    services = Gateway(
        settings=settings,
        redis=client,
        store=JobStore(client, settings.store),
        limiter=RateLimiter(client, Keys(settings.store.prefix)),
        celery=celery_app(settings),
        metrics=metrics,
        streams=Slots(
            settings.gateway.max_event_streams,
            settings.gateway.max_event_streams_per_key,
            metrics.event_streams,
        ),
        uploads=Slots(
            settings.gateway.upload.max_concurrent,
            settings.gateway.upload.max_concurrent_per_key,
            metrics.uploads,
        ),
        body=body,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = anyio.to_thread.current_default_thread_limiter()
        pool.total_tokens = REQUEST_THREADS + settings.gateway.max_event_streams
        if not settings.gateway.api_keys:
            logger.warning("no API keys are configured: every request to /jobs is refused")
        # A gateway killed mid-upload left its upload's file: removed as the next one starts.
        sweep_orphan_folders(UPLOAD_PREFIX)
        metrics_server = serve_metrics(app, settings.gateway, metrics)
        try:
            yield
        finally:
            if metrics_server is not None:
                metrics_server.shutdown()
                metrics_server.server_close()
            services.celery.close()
            client.close()

    app = FastAPI(
        title="meshcast",
        version=version("meshcast"),
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served from a package instead of a CDN: install_docs
        redoc_url=None,
    )
    app.state.gateway = services
    install_error_handlers(app)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(HeadAsGet)  # outermost: the metrics count a HEAD as the GET it runs
    for module in (jobs, events, downloads, health):
        app.include_router(module.router)
    install_docs(app)
    install_web(app, settings.gateway.upload)
    return app
