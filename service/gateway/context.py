"""What every route of one app shares: its settings, the job store, the rate limiter, the
Celery app it queues jobs with, its metrics, its event-stream slots and the body model it poses
downloaded meshes with.

:func:`create_app <service.gateway.app.create_app>` builds one :class:`Gateway` and keeps it in
``app.state``; routes get it with ``Depends(gateway)``.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import redis
from celery import Celery
from fastapi import Request

from service.gateway.frame_meshes import FrameBody
from service.gateway.metrics import GatewayMetrics
from service.jobs import JobStore, RateLimiter
from service.settings import ServiceSettings


class StreamSlot:
    """One open event stream's place; giving it back twice is harmless.

    It is also given back when it is garbage-collected: a streamed response whose client left
    before the stream began never runs its generator's ``finally``.
    """

    def __init__(self, slots: StreamSlots) -> None:
        self._release = weakref.finalize(self, slots._give_back)

    def release(self) -> None:
        """Give the place back (once; later calls do nothing)."""
        self._release()


class StreamSlots:
    """At most ``capacity`` event streams at once: each holds a thread of the pool while it is
    open (:meth:`JobStore.events <service.jobs.JobStore.events>` blocks on Redis)."""

    def __init__(self, capacity: int, metrics: GatewayMetrics) -> None:
        self.capacity = capacity
        self._metrics = metrics
        self._open = 0
        self._lock = threading.Lock()  # taken by the event loop and by the pool's threads

    @property
    def open(self) -> int:
        """Streams open now."""
        return self._open

    def acquire(self) -> StreamSlot | None:
        """A place for one more stream, or ``None`` when all are taken."""
        with self._lock:
            if self._open >= self.capacity:
                return None
            self._open += 1
            self._metrics.event_streams.inc()
        return StreamSlot(self)

    def _give_back(self) -> None:
        with self._lock:
            self._open -= 1
            self._metrics.event_streams.dec()


@dataclass(frozen=True)
class Gateway:
    """The services of one app."""

    settings: ServiceSettings
    redis: redis.Redis
    store: JobStore
    limiter: RateLimiter
    celery: Celery
    metrics: GatewayMetrics
    streams: StreamSlots
    body: FrameBody


def gateway(request: Request) -> Gateway:
    """The app's :class:`Gateway` (a FastAPI dependency)."""
    services: Gateway = request.app.state.gateway
    return services
