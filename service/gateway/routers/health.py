"""``/healthz`` (the process answers), ``/readyz`` (jobs would be processed).

Neither takes an API key: probes call them, and they tell nothing about anyone's jobs.
Prometheus's metrics are on a port of their own (:func:`~service.gateway.metrics.serve_metrics`).
"""

from __future__ import annotations

import logging
from typing import Annotated

import redis
from fastapi import APIRouter, Depends
from kombu.exceptions import OperationalError

from service.gateway.context import Gateway, gateway
from service.gateway.errors import ApiError, ErrorCode, error_responses
from service.gateway.schemas import Health, Readiness

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    response_model=Health,
    responses=error_responses(),
    summary="The process is alive",
)
def healthz() -> Health:
    """Answers while the process runs (a liveness probe: no Redis, no workers)."""
    return Health()


@router.get(
    "/readyz",
    response_model=Readiness,
    responses=error_responses(ErrorCode.NOT_READY),
    summary="Redis answers and at least one worker is alive",
)
def readyz(services: Annotated[Gateway, Depends(gateway)]) -> Readiness:
    """Ready when Redis answers and a worker answers Celery's ping within
    `worker_ping_timeout_s`: a job sent now would be processed. With
    `gateway.readyz_requires_worker` off (a cluster whose workers scale to zero), ready when
    Redis answers."""
    try:
        services.redis.ping()
    except (redis.ConnectionError, redis.TimeoutError) as error:
        logger.warning("readyz: Redis does not answer: %s", error)
        raise ApiError(
            ErrorCode.NOT_READY, f"Redis does not answer ({type(error).__name__})"
        ) from error
    if not services.settings.gateway.readyz_requires_worker:
        return Readiness(workers=None)
    timeout_s = services.settings.gateway.worker_ping_timeout_s
    try:
        # A connection of its own: one pooled from before a Redis restart is dead, and the
        # first probe after it would fail on it. A probe every few seconds can afford to dial.
        with services.celery.connection_for_write() as connection:
            replies = services.celery.control.ping(timeout=timeout_s, connection=connection) or []
    except (OperationalError, redis.ConnectionError, redis.TimeoutError) as error:
        raise ApiError(
            ErrorCode.NOT_READY, f"the job queue does not answer ({type(error).__name__})"
        ) from error
    workers = sorted(name for reply in replies for name in reply)
    if not workers:
        raise ApiError(
            ErrorCode.NOT_READY,
            f"no worker answered within {timeout_s:g} s: jobs would wait in the queue; "
            "start one with `meshcast worker`",
        )
    return Readiness(workers=workers)
