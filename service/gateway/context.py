"""What every route of one app shares: its settings, the job store, the rate limiter, the
Celery app it queues jobs with, its metrics, its places for event streams and uploads, and the
body model it poses downloaded meshes with.

:func:`create_app <service.gateway.app.create_app>` builds one :class:`Gateway` and keeps it in
``app.state``; routes get it with ``Depends(gateway)``.
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter
from dataclasses import dataclass
from enum import Enum

import redis
from celery import Celery
from fastapi import Request
from prometheus_client import Gauge

from service.gateway.frame_meshes import FrameBody
from service.gateway.metrics import GatewayMetrics
from service.jobs import JobStore, RateLimiter
from service.settings import ServiceSettings


class Slot:
    """One place taken in :class:`Slots`; giving it back twice is harmless.

    It is also given back when it is garbage-collected: a streamed response whose client left
    before the stream began never runs its generator's ``finally``.
    """

    def __init__(self, slots: Slots, owner: str) -> None:
        self._release = weakref.finalize(self, slots._give_back, owner)

    def release(self) -> None:
        """Give the place back (once; later calls do nothing)."""
        self._release()


class Slots:
    """At most ``capacity`` of something at once (event streams, uploads in progress), and
    ``per_owner`` of one API key, so that one client cannot take every place; ``gauge`` counts
    the places taken."""

    def __init__(self, capacity: int, per_owner: int, gauge: Gauge) -> None:
        self.capacity = capacity
        self.per_owner = per_owner
        self._gauge = gauge
        self._by_owner: Counter[str] = Counter()
        self._lock = threading.Lock()  # taken by the event loop and by the pool's threads

    @property
    def taken(self) -> int:
        """Places taken now."""
        return self._by_owner.total()

    def acquire(self, owner: str) -> Slot | SlotRefusal:
        """A place for one more of ``owner``'s, or why there is none."""
        with self._lock:
            if self._by_owner.total() >= self.capacity:
                return SlotRefusal.GATEWAY_FULL
            if self._by_owner[owner] >= self.per_owner:
                return SlotRefusal.OWNER_FULL
            self._by_owner[owner] += 1
            self._gauge.inc()
        return Slot(self, owner)

    def _give_back(self, owner: str) -> None:
        with self._lock:
            self._by_owner[owner] -= 1
            if self._by_owner[owner] <= 0:
                del self._by_owner[owner]
            self._gauge.dec()


class SlotRefusal(Enum):
    """Why :meth:`Slots.acquire` found no place."""

    GATEWAY_FULL = "gateway"
    OWNER_FULL = "owner"


@dataclass(frozen=True)
class Gateway:
    """The services of one app."""

    settings: ServiceSettings
    redis: redis.Redis
    store: JobStore
    limiter: RateLimiter
    celery: Celery
    metrics: GatewayMetrics
    streams: Slots  # event streams open
    uploads: Slots  # uploads in progress
    body: FrameBody


def gateway(request: Request) -> Gateway:
    """The app's :class:`Gateway` (a FastAPI dependency)."""
    services: Gateway = request.app.state.gateway
    return services
